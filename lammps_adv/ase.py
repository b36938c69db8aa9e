"""lammps-adv models as ASE calculators, under the name ASE users look for:

    from lammps_adv.ase import ase_calculator
    atoms.calc = ase_calculator("torchscript:gnn_bks_dsf")     # any spec, or a Calculator

The implementation is ``lammps_adv.calculators.for_ase`` (energy and forces; docs/potentials.md,
"ASE, both ways").
"""
from lammps_adv.calculators import ase_calculator  # noqa: F401
from lammps_adv.calculators.for_ase import LammpsAdvCalculator  # noqa: F401
