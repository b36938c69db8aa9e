"""Snapshots of a running LAMMPS instance, gathered onto rank 0 in atom-ID order.

What the recorder needs of one force evaluation: atom IDs, types, positions, the driving
model's total forces, the kinetic energy (for the temperature), the cell and the time.
The pure helpers (sorting by ID, checks of the atom set, temperature, cell) take plain
arrays and are tested without LAMMPS.
"""
from __future__ import annotations

import numpy as np

from lammps_adv.core.errors import RecorderError
from lammps_adv.lammps.structures import cell_of  # noqa: F401 (used here, re-exported)

WIDTH = 11     # id, type, x, y, z, fx, fy, fz, vx, vy, vz


# ----------------------------------------------------------------------- pure helpers
def sort_by_id(rows: np.ndarray, cached=None):
    """Rows [id, ...] sorted by atom ID; ``cached`` = (ids, order) of an earlier call is
    reused while LAMMPS keeps the atom order. Returns (sorted rows, (ids, order))."""
    ids = rows[:, 0]
    if cached is not None and len(cached[0]) == len(ids) and np.array_equal(cached[0], ids):
        order = cached[1]
    else:
        order = np.argsort(ids, kind="stable")
        sid = ids[order]
        if len(sid) > 1 and np.any(sid[1:] == sid[:-1]):
            raise RecorderError("duplicate atom IDs")
        cached = (ids.copy(), order)
    return rows[order], cached


def check_atom_set(types, previous, step: int, natoms: int) -> None:
    """Atoms must neither be lost nor change type during a recording."""
    if previous is None:
        return
    if len(types) != len(previous):
        raise RecorderError(f"atoms lost or added during the recording: {len(previous)} atoms "
                            f"before, {len(types)} at step {step} (LAMMPS counts {natoms})")
    if not np.array_equal(types, previous):
        raise RecorderError(f"atom types changed during the recording at step {step}")


def temperature(mv2: float, natoms: int, mvv2e: float, boltz: float) -> float:
    """Kinetic temperature (K) with 3N - 3 degrees of freedom."""
    dof = 3 * natoms - 3
    return 0.0 if dof <= 0 else mv2 * mvv2e / (dof * boltz)


# ----------------------------------------------------------------------- from LAMMPS
class Gatherer:
    """Gathers snapshots of ``lmp`` on ``comm`` (collective calls) onto rank 0."""

    def __init__(self, lmp, comm):
        self.lmp = lmp
        self.comm = comm
        self._order = None

    def gatherv(self, local: np.ndarray):
        comm = self.comm
        if comm.Get_size() == 1:
            return local
        counts = comm.gather(local.size, root=0)
        if comm.Get_rank() == 0:
            buf = np.empty(sum(counts))
            comm.Gatherv(local, (buf, counts), root=0)
            return buf
        comm.Gatherv(local, None, root=0)
        return None

    def types(self):
        """Atom types in atom-ID order (rank 0; None elsewhere)."""
        lmp = self.lmp
        nlocal = int(lmp.extract_global("nlocal"))
        tag = np.asarray(lmp.numpy.extract_atom("id")[:nlocal], dtype=np.float64)
        typ = np.asarray(lmp.numpy.extract_atom("type")[:nlocal], dtype=np.float64)
        data = self.gatherv(np.column_stack([tag, typ]).reshape(-1))
        if data is None:
            return None
        data = data.reshape(-1, 2)
        return data[np.argsort(data[:, 0]), 1].astype(np.int64)

    def snapshot(self, step: int, nlocal: int, tag, x, half_kick: bool):
        """Collective. Rank 0 gets {types, pos, f_app, vel (A/ps, at time t in MD), cell,
        origin, time, temperature, natoms}; other ranks None. half_kick: MD after setup, where velocity Verlet holds
        v(t - dt/2) at post_force (kicked to v(t) with F(t) for the temperature)."""
        lmp = self.lmp
        ftot = lmp.numpy.extract_atom("f")[:nlocal]
        typ = lmp.numpy.extract_atom("type")[:nlocal]
        local = np.empty((nlocal, WIDTH))
        local[:, 0] = tag[:nlocal]
        local[:, 1] = typ
        local[:, 2:5] = x[:nlocal]
        local[:, 5:8] = ftot
        mv2 = 0.0
        if nlocal:
            if lmp.extract_setting("rmass_flag"):
                m = lmp.numpy.extract_atom("rmass")[:nlocal]
            else:
                m = lmp.numpy.extract_atom("mass")[typ]
            vv = lmp.numpy.extract_atom("v")[:nlocal]
            if half_kick:
                half = 0.5 * float(lmp.extract_global("dt")) * float(lmp.extract_global("ftm2v"))
                vv = vv + (half / m)[:, None] * ftot
            mv2 = float(m @ np.einsum("ij,ij->i", vv, vv))
            local[:, 8:11] = vv
        data = self.gatherv(local.reshape(-1))
        if self.comm.Get_size() > 1:
            mv2 = self.comm.reduce(mv2, root=0)
        if self.comm.Get_rank() != 0:
            return None
        rows, self._order = sort_by_id(data.reshape(-1, WIDTH), self._order)
        boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
        dt = float(lmp.extract_global("dt"))
        natoms = int(lmp.get_natoms())
        return {"types": rows[:, 1].astype(np.int64), "pos": rows[:, 2:5] - np.asarray(boxlo),
                "f_app": rows[:, 5:8], "vel": rows[:, 8:11],
                "cell": cell_of(boxlo, boxhi, xy, yz, xz),
                "time": float(lmp.extract_global("atime"))
                + (step - int(lmp.extract_global("atimestep"))) * dt,
                "natoms": natoms, "dt": dt,
                "temperature": temperature(mv2, natoms, float(lmp.extract_global("mvv2e")),
                                           float(lmp.extract_global("boltz")))}
