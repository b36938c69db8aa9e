"""lammps-adv's models as ASE calculators, the other way round from the ``ase:`` backend: any
spec (or ``Calculator``) drives ASE's optimizers and MD.

    from ase.optimize import BFGS
    from lammps_adv.calculators import ase_calculator
    atoms.calc = ase_calculator("torchscript:gnn_bks_dsf")   # or "bks-dsf", "xtb:GFN1", ...
    BFGS(atoms).run(fmax=0.01)

Energy (eV, also as ``free_energy``) and forces (eV/A) of periodic cells (pbc in all three
directions); positions are wrapped into the cell before evaluation (the energy does not
change). Results are cached per configuration by both ASE and the wrapped calculator.
"""
from __future__ import annotations

from ase.calculators.calculator import Calculator as AseBase
from ase.calculators.calculator import all_changes

from lammps_adv.core.errors import CalculatorError


class LammpsAdvCalculator(AseBase):
    """An ASE calculator backed by a lammps-adv ``Calculator`` (``ase_calculator(spec)``
    makes one from a spec string)."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if not atoms.pbc.all():
            raise CalculatorError(f"{self.model.spec} through ASE needs a periodic cell "
                                  f"(pbc True in x, y and z), got pbc {atoms.pbc.tolist()}")
        energy, forces = self.model.evaluate(atoms.get_positions(wrap=True), atoms.cell[:],
                                             symbols=atoms.get_chemical_symbols())
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}
