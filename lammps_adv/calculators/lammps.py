"""Backend: a potential of the LAMMPS snippet catalogue in a private LAMMPS instance."""
from __future__ import annotations

import numpy as np
from ase import Atoms

from lammps_adv.calculators.base import Calculator
from lammps_adv.core.errors import CalculatorError, PotentialError
from lammps_adv.io.files import file_sha256
from lammps_adv.lammps.snippets import get as get_snippet
from lammps_adv.lammps.structures import lammps_cell
from lammps_adv.lammps.system import LammpsSystem


def lower_triangular(c: np.ndarray) -> bool:
    """Whether a cell (rows a, b, c) is in LAMMPS' form: a along x, b in the xy plane."""
    return abs(c[0, 1]) <= 1e-9 * abs(c[0, 0]) and abs(c[0, 2]) <= 1e-9 * abs(c[0, 0]) \
        and abs(c[1, 2]) <= 1e-9 * abs(c[1, 1])


def lammps_box(cell) -> tuple:
    """(lx, ly, lz, xy, xz, yz) of a cell given as rows a, b, c in LAMMPS' lower-triangular
    form (a along x, b in the xy plane)."""
    c = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    if not lower_triangular(c):
        raise CalculatorError("cell is not in LAMMPS' lower-triangular form (rotate it first)")
    return tuple(float(v) for v in (c[0, 0], c[1, 1], c[2, 2], c[1, 0], c[2, 0], c[2, 1]))


def lammps_rotation(cell) -> np.ndarray | None:
    """The rotation Q that takes a cell (rows a, b, c) into LAMMPS' lower-triangular form
    (``cell @ Q``: a along x, b in the xy plane; ``structures.lammps_cell``), or None when it
    is in that form already."""
    c = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    if np.linalg.det(c) <= 0:
        raise CalculatorError("the cell is left-handed (det < 0); LAMMPS needs a right-handed one")
    return None if lower_triangular(c) else lammps_cell(c)[1]


def wrap_positions(positions, cell) -> np.ndarray:
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    frac = np.asarray(positions, dtype=np.float64) @ np.linalg.inv(cell)
    frac -= np.floor(frac)
    frac[frac >= 1.0] = 0.0
    return frac @ cell


class LammpsCalculator(Calculator):
    """A potential of the catalogue in a private LAMMPS instance (collective).

    Built lazily on the first evaluation (a ``LammpsSystem`` with atom IDs 1..N in the
    caller's atom order); per evaluation the box is updated when it changed, positions are
    scattered and ``run 0`` computes energy and forces.
    """
    collective = True

    def __init__(self, spec: str, comm=None):
        super().__init__(comm)
        try:
            self.potential = get_snippet(spec)
        except PotentialError as exc:
            raise CalculatorError(str(exc)) from None
        self.spec = spec
        self.description = self.potential.description
        self.species = tuple(self.potential.species)
        self.system = None
        self._box = None
        self._rotation = None            # of the configuration compute last saw

    def hashes(self) -> dict:
        return {str(self.potential.snippet): file_sha256(self.potential.snippet)}

    def _build(self, positions, cell, box):
        self.close()
        atoms = Atoms(self.symbols, positions=positions, cell=cell, pbc=True)
        self.system = LammpsSystem(atoms, self.potential, comm=self.comm)
        self.system.set_cell(cell)       # the exact box (the data file holds 12 decimals)
        # single points rebuild the neighbour list every time: a small skin is cheapest
        self.system.lmp.command("neighbor 1.0 bin")
        self.system.track_stress()       # the virial of every run 0, for compute_stress
        if self.system.natoms != len(self.symbols):
            raise CalculatorError(f"{self.spec}: LAMMPS created {self.system.natoms} of "
                                  f"{len(self.symbols)} atoms")
        self._box = box

    def compute(self, positions, cell):
        # any cell: rotated into LAMMPS' frame, forces and stress rotated back
        self._rotation = rot = lammps_rotation(cell)
        if rot is not None:
            positions, cell = np.asarray(positions) @ rot, np.asarray(cell) @ rot
        box = lammps_box(cell)
        x = wrap_positions(positions, cell)
        tri = any(abs(t) > 0 for t in box[3:])
        if self.system is None or tri != any(abs(t) > 0 for t in self._box[3:]):
            self._build(x, cell, box)
        elif box != self._box:
            self.system.set_cell(cell)   # no remap: positions are scattered next
            self._box = box
        self.system.set_positions(x)
        energy, forces = self.system.energy_forces()
        return energy, (forces if rot is None else forces @ rot.T)

    def compute_stress(self, positions, cell):
        s = self.system.stress()         # of the run 0 that compute just did
        rot = self._rotation
        return s if rot is None else rot @ s @ rot.T

    def close(self) -> None:
        if self.system is not None:
            self.system.close()
            self.system = None
