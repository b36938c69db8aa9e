"""Backend: any ASE calculator (rank 0)."""
from __future__ import annotations

from ase import Atoms

from lammps_adv.calculators.base import Calculator
from lammps_adv.core.errors import CalculatorError


class AseCalculator(Calculator):
    """Any ASE calculator (rank 0), e.g. GFN-xTB through tblite. Periodic in 3D."""

    def __init__(self, spec: str, calculator_factory, description: str, comm=None):
        super().__init__(comm)
        self.spec = spec
        self.description = description
        self._factory = calculator_factory
        self.calc = None
        self._atoms = None               # the configuration compute last saw (for the stress)

    def compute(self, positions, cell):
        if self.calc is None:
            self.calc = self._factory()
        atoms = Atoms(self.symbols, positions=positions, cell=cell, pbc=True)
        atoms.calc = self.calc
        self._atoms = atoms
        return atoms.get_potential_energy(), atoms.get_forces()

    def compute_stress(self, positions, cell):
        if "stress" not in getattr(self.calc, "implemented_properties", ()):
            raise CalculatorError(f"{type(self.calc).__name__} does not compute the stress")
        return self._atoms.get_stress(voigt=False)
