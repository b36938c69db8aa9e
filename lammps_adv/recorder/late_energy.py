"""The minimizer's energy, which arrives after the recorder's callback has returned.

During a minimization ``fix external`` calls the recorder at every force evaluation, line
searches included (several with the same step number); the minimizer evaluates
``thermo_pe`` right after the callback returns (``Min::energy_force``), for the same
configuration, with no cache in between. So the record of an evaluation is held until the
next callback, or until the command returns, and completed with the value of ``thermo_pe``
read through a pointer to its scalar. (``compute pe`` caches per step, so reading a compute
inside the callback would be stale.) ``thermo_pe`` includes energies of fixes with
``fix_modify energy yes``; ``mismatch`` tells when it disagrees with pair+bonded+kspace.
"""
from __future__ import annotations

import ctypes

from lammps_adv.core.errors import RecorderError


class LateEnergy:
    def __init__(self, lmp):
        self.lmp = lmp
        self._ptr = None
        self._check = None      # pair+bonded+kspace at the first evaluation of the stage
        self.pending = None     # the held record (rank 0), True elsewhere

    def arm(self, first_energy: float) -> None:
        """First evaluation of a minimization: find thermo_pe's scalar."""
        lib = self.lmp.lib
        self._check = first_energy
        lib.lammps_extract_compute.restype = ctypes.POINTER(ctypes.c_double)
        ptr = lib.lammps_extract_compute(self.lmp.lmp, b"thermo_pe", 0, 0)
        if not ptr:
            raise RecorderError("cannot read the minimizer's energy (compute thermo_pe)")
        self._ptr = ptr

    def disarm(self) -> None:
        """The fix or the instance's computes are gone (clear, replicate)."""
        self._ptr = None
        self.pending = None

    def hold(self, record) -> None:
        self.pending = record

    def release(self):
        """(held record, energy, mismatch or None); the record is None when nothing was
        held or on ranks other than 0."""
        rec, self.pending = self.pending, None
        if self._ptr is None or rec is None:
            return None, None, None
        energy = float(self._ptr[0])
        mismatch = None
        if rec is not True and self._check is not None and rec["ev"] == 0:
            if abs(self._check - energy) > 1e-8 * max(1.0, abs(energy)):
                mismatch = (energy, self._check)
            self._check = None
        return (None if rec is True else rec), energy, mismatch
