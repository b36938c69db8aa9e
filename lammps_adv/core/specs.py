"""The one registry of model specs: the grammar of spec strings and the catalogue of models.

A spec string names a model, never a backend:

  bks | bks:ewald       BKS + Saika-Voivod 30-6 core, Coulomb by Ewald (potentials/bks.lmp)
  bks:pppm              the same with PPPM
  bks-dsf               JAX MD's BKS form: DSF Coulomb, r^-24 core (potentials/bks_dsf.lmp)
  lammps:FILE           a LAMMPS snippet file that sets pair_style/pair_coeff (types 1=Si, 2=O)
  torchscript:FILE.pt   a TorchScript model of the model contract (docs/plugin.md)
  torchscript:NAME      a shipped TorchScript model by its name (``torchscript:gnn_bks_dsf``);
                        a path that exists wins over a name
  xtb:GFN1 | xtb:GFN2[:accuracy=A][:etemp=K][:maxiter=N]
                        GFN-xTB through tblite
  ase:MODULE:CLASS[:NAME=VALUE]...
                        an ASE calculator class, built with these keyword arguments (each
                        VALUE a Python literal, else a string)
  labels:FILE.h5        energies and forces stored in a dataset file

``parse(spec)`` turns a spec string into a ``ModelSpec(kind, target, options, text)``;
nothing else in the package splits spec strings. Each backend turns a parsed spec into what
it runs: ``lammps_adv.lammps.snippets`` into LAMMPS commands (kinds bks, bks-dsf, lammps,
torchscript), ``lammps_adv.calculators.registry`` into a calculator (every kind).

One model, two backends: ``torchscript:`` runs through the plugin's ``pair_style
torchscript`` wherever it drives LAMMPS (a run, a melt-quench, a ``LammpsSystem``) and
in-process in PyTorch as a calculator (``get_calculator``: a reference or an approximate
model evaluated on given configurations, no LAMMPS instance). Both evaluate the same model
contract and agree to round-off (tests/integration/test_spec_backends.py).

Pure code: files are neither read nor checked here. Shipped models live in the io layer,
above this one, so ``model_file`` takes its lookup (``lammps_adv.io.resources.shipped_model``)
as an argument.
"""
from __future__ import annotations

import difflib

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from lammps_adv.core.errors import PotentialError, UnknownSpecError

# kinds whose target is a file of the user's (or, for torchscript, a shipped model's name)
FILE_KINDS = {"lammps": "lammps:FILE", "torchscript": "torchscript:FILE.pt or torchscript:NAME",
              "labels": "labels:FILE.h5"}
XTB_METHODS = ("GFN1", "GFN2")
XTB_OPTIONS = {"accuracy": float, "etemp": float, "maxiter": int}   # name -> value type


@dataclass(frozen=True)
class Entry:
    """One line of the catalogue: a spec (or a placeholder pattern such as lammps:FILE) and
    what it is. A named LAMMPS potential also names its snippet (a file of the package's
    ``potentials/`` folder) and the LAMMPS index variables set before it is included."""
    spec: str
    kind: str
    description: str
    snippet: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)


_BKS = "BKS silica + Saika-Voivod 30-6 core, {} Coulomb, 10 A cutoff"
_NAMED = {e.spec: e for e in (
    Entry("bks", "bks", _BKS.format("Ewald"), "bks.lmp", {"bks_kspace": "ewald"}),
    Entry("bks:ewald", "bks", _BKS.format("Ewald"), "bks.lmp", {"bks_kspace": "ewald"}),
    Entry("bks:pppm", "bks", _BKS.format("PPPM"), "bks.lmp", {"bks_kspace": "pppm"}),
    Entry("bks-dsf", "bks-dsf", "BKS-DSF (JAX MD / Carre 2016): DSF Coulomb alpha 0.25, "
          "8 A cutoff, r^-24 core", "bks_dsf.lmp"),
)}
_REFERENCE_ONLY = "reference only, cannot drive LAMMPS"
_PLACEHOLDERS = (
    Entry("lammps:FILE", "lammps", "any LAMMPS snippet file that sets pair_style/pair_coeff "
          "(types 1 = Si, 2 = O)"),
    Entry("torchscript:FILE.pt", "torchscript", "a TorchScript model file: pair_style "
          "torchscript of the lammps-adv plugin in LAMMPS, PyTorch in-process as a calculator "
          "(types 1 = Si, 2 = O)"),
    Entry("torchscript:NAME", "torchscript", "a shipped TorchScript model by name (listed "
          "below); an existing file of that path wins"),
)
_CALCULATORS = (
    Entry("xtb:GFN1", "xtb", f"GFN1-xTB through tblite, options :accuracy=A :etemp=K "
          f":maxiter=N ({_REFERENCE_ONLY})"),
    Entry("xtb:GFN2", "xtb", f"GFN2-xTB through tblite, options as xtb:GFN1 ({_REFERENCE_ONLY})"),
    Entry("ase:MODULE:CLASS", "ase", "any ASE calculator class, keyword arguments as "
          ":NAME=VALUE, e.g. ase:ase.calculators.lj:LennardJones:sigma=2.0:rc=6 "
          f"({_REFERENCE_ONLY})"),
    Entry("labels:FILE.h5", "labels", "energies and forces stored in a dataset file, for its "
          f"configurations only ({_REFERENCE_ONLY})"),
)
KINDS = tuple(dict.fromkeys(e.kind for e in (*_NAMED.values(), *_PLACEHOLDERS, *_CALCULATORS)))


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec string.

    kind: bks, bks-dsf, lammps, torchscript, xtb, ase or labels; target: what the kind
    names (the Coulomb solver of bks: ewald, pppm or empty; the file or shipped name; the
    xtb method GFN1 or GFN2; the ASE module); options: xtb's options by name (typed), ase's
    ``class`` and ``kwargs``; text: the spec as written."""
    kind: str
    target: str
    options: Mapping[str, object]
    text: str

    @property
    def potential(self) -> Entry | None:
        """The catalogue entry of a named LAMMPS potential (bks, bks:pppm, bks-dsf)."""
        return _NAMED.get(self.text)

    def __str__(self) -> str:
        return self.text


def catalogue(shipped: Mapping[str, str] | None = None) -> list[Entry]:
    """Every entry, placeholders included, and ``torchscript:NAME`` of each shipped model
    given as {name: what it is}; builds nothing."""
    models = [Entry(f"torchscript:{name}", "torchscript",
                    f"shipped TorchScript model {name}" + (f": {what}" if what else ""))
              for name, what in sorted((shipped or {}).items())]
    return [*_NAMED.values(), *_PLACEHOLDERS, *models, *_CALCULATORS]


def names(kinds=KINDS) -> list[str]:
    """Specs and placeholders of the catalogue whose kind is among ``kinds``."""
    return [e.spec for e in catalogue() if e.kind in kinds]


def parse(spec) -> ModelSpec:
    """The ModelSpec of a spec string; a one-line PotentialError for a malformed one
    (UnknownSpecError for one that names no kind of the catalogue)."""
    if isinstance(spec, ModelSpec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise UnknownSpecError(f"empty model spec {spec!r}: a model spec is a non-empty "
                               f"string; known: {', '.join(names())}")
    if spec in _NAMED:
        entry = _NAMED[spec]
        return ModelSpec(entry.kind, spec.partition(":")[2], {}, spec)
    kind, _, rest = spec.partition(":")
    if kind in FILE_KINDS:
        if not rest.strip():
            raise PotentialError(f"{spec!r} names no file: use {FILE_KINDS[kind]}")
        return ModelSpec(kind, rest, {}, spec)
    if kind == "xtb":
        return _xtb(spec, rest)
    if kind == "ase":
        return _ase(spec, rest)
    raise UnknownSpecError(f"unknown model spec {spec!r}; {did_you_mean(spec, names())}"
                           f"known: {', '.join(names())}")


def did_you_mean(text: str, candidates) -> str:
    """'did you mean 'bks-dsf'? ' for a near miss among ``candidates``, else ''."""
    close = difflib.get_close_matches(str(text), list(candidates), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _ase(spec: str, rest: str) -> ModelSpec:
    """ase:MODULE:CLASS[:NAME=VALUE]...: the class and its keyword arguments, each value a
    Python literal (2.0, True, 'x', (1, 2)) or else the string as written."""
    import ast
    module, _, rest = rest.partition(":")
    cls, *items = rest.split(":")
    if not module or not cls.isidentifier():
        raise PotentialError(f"ase calculator spec must be ase:MODULE:CLASS[:NAME=VALUE]..., "
                             f"got {spec!r}")
    kwargs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise PotentialError(f"ase calculator argument {item!r} in {spec!r}: expected "
                                 "NAME=VALUE")
        try:
            kwargs[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            kwargs[name] = value
    return ModelSpec("ase", module, {"class": cls, "kwargs": kwargs}, spec)


def _xtb(spec: str, rest: str) -> ModelSpec:
    """xtb:METHOD[:NAME=VALUE]...: GFN1 or GFN2 (any case, or GFN1-xTB), typed options."""
    method, *items = rest.split(":")
    method = method.upper().removesuffix("-XTB")
    if method not in XTB_METHODS:
        raise PotentialError(f"unknown xtb method in {spec!r}: use xtb:GFN1 or xtb:GFN2 "
                             "(options :accuracy=A :etemp=K :maxiter=N)")
    options = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in XTB_OPTIONS:
            raise PotentialError(f"xtb option {item!r} in {spec!r}: expected one of "
                                 + ", ".join(f"{k}=VALUE" for k in XTB_OPTIONS))
        try:
            options[name] = XTB_OPTIONS[name](value)
        except ValueError:
            raise PotentialError(f"xtb option {name} in {spec!r}: {value!r} is not a "
                                 f"{XTB_OPTIONS[name].__name__}") from None
    if not (options.get("accuracy", 1.0) > 0 and options.get("etemp", 0.0) >= 0
            and options.get("maxiter", 1) >= 1):
        raise PotentialError(f"xtb options in {spec!r}: accuracy must be > 0, etemp >= 0 K "
                             "and maxiter >= 1")
    return ModelSpec("xtb", method, options, spec)


def model_file(model: ModelSpec, shipped_model: Callable[[str], Path]) -> Path:
    """The absolute path of the file a file-naming spec points to: a path that exists wins;
    a torchscript target without folder or suffix is then a shipped model's name, looked up
    by ``shipped_model`` (which raises, listing the shipped ones, for an unknown name), and
    a missing ``NAME.pt`` or ``potentials/NAME.pt`` (the repository's layout, as the docs
    write it) the shipped model NAME when there is one; any other path is returned as it
    is, for the backend's 'not found'."""
    if model.kind not in FILE_KINDS:
        raise PotentialError(f"{model.text!r} names no file")
    path = Path(model.target)
    if model.kind != "torchscript" or path.is_file():
        return path.resolve()
    if path.name == model.target and not path.suffix:
        return shipped_model(model.target)
    if path.suffix == ".pt" and str(path.parent) in (".", "potentials"):
        try:
            return shipped_model(path.stem)
        except PotentialError:
            pass
    return path.resolve()
