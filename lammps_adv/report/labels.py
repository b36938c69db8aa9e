"""How the report names a result: its model pair and the alignment of its energies."""
from __future__ import annotations

from pathlib import Path

from lammps_adv.core.alignment import from_attrs


def pair_label(params: dict) -> str:
    """'approx vs reference', with model files shortened to their names."""
    def short(spec):
        spec = str(spec)
        kind, _, path = spec.partition(":")
        return f"{kind}:{Path(path).name}" if kind in ("torchscript", "labels") else spec
    return f"{short(params.get('approx', '?'))} vs {short(params.get('reference', '?'))}"


def alignment_of(params: dict) -> str:
    """How a file's approximate energies were aligned, in words."""
    if "alignment" not in params:
        return "none (raw energies; file written before alignment existed)"
    return from_attrs(params).describe()
