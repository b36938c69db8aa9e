"""How the report names a result: its model pair and the alignment of its energies."""
from __future__ import annotations

from pathlib import Path

from lammps_adv.core.alignment import Alignment, from_attrs
from lammps_adv.core.errors import PotentialError, ReportError
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


def alignment_by_pair(res: dict, kinds=("probe", "relax", "run")) -> dict[str, Alignment]:
    """The one alignment of each model pair among the results (read_results' dict).

    Results of one pair are pooled in tables and histograms, so they must compare the same
    energies: a pair whose files differ in alignment mode or shifts (none vs per-species,
    two fits on different configurations) is refused with a ReportError naming the pair,
    the alignments and a file of each."""
    seen: dict[str, list] = {}
    for kind in kinds:
        for r in res.get(kind, []):
            pair, alignment = pair_label(r.params), from_attrs(r.params)
            known = seen.setdefault(pair, [])
            if not any(a.same_shifts(alignment) for a, _ in known):
                known.append((alignment, r.path))
    for pair, known in seen.items():
        if len(known) > 1:
            differing = "; ".join(f"{_short(a)} in {Path(path).name}" for a, path in known)
            raise ReportError(f"model pair {pair}: results under different energy alignments "
                              f"cannot be pooled ({differing}); align them all alike, e.g. "
                              f"--align-from one independent FILE, or --align none")
    return {pair: known[0][0] for pair, known in seen.items()}


def _short(alignment: Alignment) -> str:
    """An alignment in a few words: mode, shifts (eV per atom), source."""
    if alignment.mode == "none":
        return "none"
    shifts = ", ".join(f"{s} {v:+.6g}" for s, v in sorted(alignment.shifts.items()))
    return f"per-species {shifts} eV ({alignment.source})"
