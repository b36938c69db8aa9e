"""Backend: any ASE calculator (rank 0)."""
from __future__ import annotations

from ase import Atoms

from lammps_adv.calculators.base import Calculator


class AseCalculator(Calculator):
    """Any ASE calculator (rank 0), e.g. GFN-xTB through tblite. Periodic in 3D."""

    def __init__(self, spec: str, calculator_factory, description: str, comm=None):
        super().__init__(comm)
        self.spec = spec
        self.description = description
        self._factory = calculator_factory
        self.calc = None

    def compute(self, positions, cell):
        if self.calc is None:
            self.calc = self._factory()
        atoms = Atoms(self.symbols, positions=positions, cell=cell, pbc=True)
        atoms.calc = self.calc
        return atoms.get_potential_energy(), atoms.get_forces()
