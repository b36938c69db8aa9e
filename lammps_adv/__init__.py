"""lammps-adv: adversarial directions of physical models, measured in LAMMPS runs.

Kept import-light on purpose: ``import lammps`` calls our ``lammps.plugins`` entry point,
which imports this package. The layers and what each owns: docs/architecture.md.
"""
__version__ = "0.1.0"
