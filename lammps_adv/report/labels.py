"""How the report names a result: its model pair and the alignment of its energies."""
from __future__ import annotations

from pathlib import Path

from lammps_adv.core.alignment import from_attrs
from lammps_adv.core.errors import PotentialError
from lammps_adv.core.specs import ModelSpec, parse


def recorded_model(spec) -> ModelSpec | None:
    """The parsed spec a result file records, or None for text that is no spec (a file
    written by hand, a driver described as 'lammps: pair_style ...')."""
    try:
        return parse(str(spec))
    except PotentialError:
        return None


def pair_label(params: dict) -> str:
    """'approx vs reference', with model files shortened to their names."""
    def short(spec):
        model = recorded_model(spec)
        if model is None or model.kind not in ("torchscript", "labels"):
            return str(spec)
        return f"{model.kind}:{Path(model.target).name}"
    return f"{short(params.get('approx', '?'))} vs {short(params.get('reference', '?'))}"


def alignment_of(params: dict) -> str:
    """How a file's approximate energies were aligned, in words."""
    if "alignment" not in params:
        return "none (raw energies; file written before alignment existed)"
    return from_attrs(params).describe()
