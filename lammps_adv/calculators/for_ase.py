"""lammps-adv's models as ASE calculators, the other way round from the ``ase:`` backend: any
spec (or ``Calculator``) drives ASE's optimizers and MD.

    from ase.optimize import BFGS
    from lammps_adv.calculators import ase_calculator
    atoms.calc = ase_calculator("torchscript:gnn_bks_dsf")   # or "bks-dsf", "xtb:GFN1", ...
    BFGS(atoms).run(fmax=0.01)

Energy (eV, also as ``free_energy``), forces (eV/A) and, where the backend gives it (LAMMPS
potentials, TorchScript models, ASE calculators that have it), the stress (eV/A^3, ASE's
Voigt order xx yy zz yz xz xy and sign) of periodic cells (pbc in all three directions);
positions are wrapped into the cell before evaluation (the energy does not change). Results
are cached per configuration by both ASE and the wrapped calculator.
"""
from __future__ import annotations

from ase.calculators.calculator import Calculator as AseBase
from ase.calculators.calculator import PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from lammps_adv.core.errors import CalculatorError


class LammpsAdvCalculator(AseBase):
    """An ASE calculator backed by a lammps-adv ``Calculator`` (``ase_calculator(spec)``
    makes one from a spec string)."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        if model.has_stress:
            self.implemented_properties = [*self.implemented_properties, "stress"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if not atoms.pbc.all():
            raise CalculatorError(f"{self.model.spec} through ASE needs a periodic cell "
                                  f"(pbc True in x, y and z), got pbc {atoms.pbc.tolist()}")
        stress = "stress" in properties
        if stress and not self.model.has_stress:
            raise PropertyNotImplementedError(f"{self.model.spec} gives no stress")
        out = self.model.evaluate(atoms.get_positions(wrap=True), atoms.cell[:],
                                  symbols=atoms.get_chemical_symbols(), stress=stress)
        self.results = {"energy": out[0], "free_energy": out[0], "forces": out[1]}
        if stress:
            self.results["stress"] = full_3x3_to_voigt_6_stress(out[2])
