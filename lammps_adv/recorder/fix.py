"""The recording fix: installed in LAMMPS, removed, and which element each atom is.

``fix <id> all external pf/callback 1 1`` calls the recorder at every force evaluation;
``fix_modify energy no virial no`` keeps it from adding anything. A private ``compute pe``
(tallied every ``every`` steps by a ``fix ave/time``) gives the driving model's energy of
exactly the recorded configuration in MD.
"""
from __future__ import annotations

import ctypes

from lammps_adv.core.errors import CalculatorError, RecorderError
from lammps_adv.lammps.elements import type_elements
from lammps_adv.parallel.mpi import on_root
from lammps_adv.recorder.snapshot import check_atom_set


class RecordingFix:
    def __init__(self, lmp, comm, fix_id: str, every: int, species, calculator, gatherer):
        self.lmp, self.comm, self.id, self.every = lmp, comm, fix_id, every
        self.species, self.calculator, self.gatherer = species, calculator, gatherer
        self.installed = False
        self.symbols = self.species_source = None
        self._types = self._type_elements = None
        self._last_tally = None       # reader of the step of the last energy tally

    def box_exists(self) -> bool:
        return bool(self.lmp.extract_setting("box_exist"))

    def present(self) -> bool:
        return self.installed and self.lmp.has_id("fix", self.id)

    def attach(self, callback) -> None:
        """Install the fix (the box must exist; idempotent)."""
        lmp, fid = self.lmp, self.id
        if self.present():
            return
        if not self.box_exists():
            raise RecorderError("the recorder needs a simulation box: attach it after "
                                "read_data / create_box / read_restart")
        if lmp.extract_global("units") != "metal":
            raise RecorderError(f"the recorder works in metal units (eV, A, ps); the deck "
                                f"uses units {lmp.extract_global('units')}")
        self._type_elements = self.symbols = None
        if lmp.get_natoms() > 0:      # else (create_box) masses and labels come later
            self.resolve_elements()
        lmp.commands_list([f"fix {fid} all external pf/callback 1 1",
                           f"fix_modify {fid} energy no virial no",
                           f"compute {fid}_pe all pe pair bond angle dihedral improper kspace",
                           f"fix {fid}_e all ave/time 1 1 {self.every} c_{fid}_pe"])
        lmp.set_fix_external_callback(fid, callback)
        self.installed = True

    def resolve_elements(self) -> None:
        """The element of every atom type and atom, checked against the calculator
        (collective; once per box, at the first force evaluation at the latest)."""
        try:
            self._type_elements, self.species_source = type_elements(
                self.lmp, self.species, self.comm)
            types = self.gatherer.types()
            self._types = None
            self.symbols = on_root(self.comm, lambda: self.symbols_for(types, None, 0, False))
            self.calculator.setup(self.symbols)
        except CalculatorError as exc:
            source = self.species_source
            raise RecorderError(f"{exc} (elements from {source})" if source else str(exc)) from None

    def detach(self) -> None:
        """Remove the fixes (e.g. before ``replicate``)."""
        if self.box_exists():
            for kind, name in (("fix", f"{self.id}_e"), ("fix", self.id),
                               ("compute", f"{self.id}_pe")):
                if self.lmp.has_id(kind, name):
                    self.lmp.command(("unfix " if kind == "fix" else "uncompute ") + name)
        self.installed = False

    def energy(self) -> float:
        """The driving model's potential energy as last tallied (eV)."""
        return self.lmp.extract_compute(f"{self.id}_pe", 0, 0)

    def energy_tallied(self, step: int) -> bool:
        if self._last_tally is None:
            self._last_tally = self._tally_reader()
        return int(self._last_tally()) == step

    def _tally_reader(self):
        """How to read the step whose energy was last tallied: extract_global (LAMMPS 2022+)
        or, for LAMMPS 2021, the compat library's function (lammps_adv.lammps.engine)."""
        lmp = self.lmp
        if lmp.extract_global("eflag_global") is not None:
            return lambda: lmp.extract_global("eflag_global")
        fn = lmp.lib.lammps_adv_eflag_global
        fn.restype, fn.argtypes = ctypes.c_int64, [ctypes.c_void_p]
        return lambda: fn(lmp.lmp)

    def symbols_for(self, types, step, natoms, started: bool):
        """Rank 0: the element of every atom; errors when atoms were lost or changed."""
        check_atom_set(types, self._types if started else None, step, natoms)
        if self._types is None or len(types) != len(self._types) or (types != self._types).any():
            missing = sorted(set(types.tolist()) - set(self._type_elements))
            if missing:
                raise RecorderError(f"atom types {missing} have no element")
            self.symbols = [self._type_elements[int(t)] for t in types]
            self.calculator.check_species(self.symbols)
            self._types = types
        return self.symbols
