"""Aggregate many HDF5 result files into tables (CSV + Markdown) and figures (PNG).

Files are read only through the readers of ``lammps_adv.io.h5md`` (which owns the format).
Files that are not ours (no `/h5md` group with creator "lammps-adv") or that are
truncated/corrupt are skipped with one warning naming the file; the rest is aggregated.
Every number is computed from the files, so rerunning gives identical tables.

The report's parts live beside this module: reading in ``lammps_adv.io.results``,
statistics in ``lammps_adv.core.statistics`` and ``lammps_adv.core.summaries``, tables and
figures in ``report.tables`` and ``report.figures``, one module per section (``report.epsilon``,
``report.cos``, ``report.relaxation``, ``report.qm``, ``report.mitigation``); this module
assembles them into report.md.
"""
from __future__ import annotations

import os
from pathlib import Path

from lammps_adv.core.statistics import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, MIN_UNITS
from lammps_adv.io.results import read_results
from lammps_adv.report.cos import cos_section
from lammps_adv.report.epsilon import epsilon_section
from lammps_adv.report.labels import alignment_by_pair, alignment_of, pair_label
from lammps_adv.report.mitigation import section
from lammps_adv.report.qm import qm_section
from lammps_adv.report.relaxation import relaxation_section

__all__ = ["build_report", "pair_label", "alignment_of"]


def build_report(paths, out: str | Path) -> Path:
    """Tables, figures and report.md from result files; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = read_results(paths)
    alignments = alignment_by_pair(res)     # one per model pair, or a ReportError
    lines = ["# lammps-adv report", "",
             "Every number here is computed by `lammps-adv report` from the HDF5 files listed at "
             "the end; energies in meV/atom unless stated, distortion epsilon in A^2. Intervals "
             f"in brackets are 95 % cluster-bootstrap intervals ({BOOTSTRAP_SAMPLES} "
             f"resamples, seed {BOOTSTRAP_SEED}: rerunning reproduces them exactly) over the "
             "independent units: the melt-quenched glasses the configurations descend from, a "
             "recorded run as a whole, the seeds of the remedies. Each table gives the number "
             f"of units; with fewer than {MIN_UNITS} a number is \"not resolved\" instead of "
             "given an interval. Signs of energy errors hold for the alignment each section "
             "names; |cos(theta)| needs none.", ""]
    # --- 1. epsilon table
    lines += epsilon_section(res, out)
    # --- 2. cos theta distributions (report.cos)
    cos_lines = cos_section(res, out)
    lines += cos_lines + (_self_fitted_note(alignments) if cos_lines else [])
    # --- 3. relaxations
    lines += relaxation_section(res, out)
    # --- 4. quantum-mechanical reference
    lines += qm_section(res, out)
    # --- 5. remedies
    if res["mitigate"]:
        for i, m in enumerate(res["mitigate"]):
            lines += section(m, out, i)
    files = [r.path for kind in ("probe", "relax", "run", "mitigate") for r in res[kind]]
    # named from the folder that holds them all, so a report never shows machine paths
    root = Path(os.path.commonpath([p.resolve().parent for p in files])).parent if files else None
    lines += ["## Files", ""] + [f"- `{p.resolve().relative_to(root)}`" for p in files] + [""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report


def _self_fitted_note(alignments: dict) -> list[str]:
    """The caveat for pairs whose alignment was fitted on their own configurations."""
    pairs = sorted(p for p, a in alignments.items() if a.is_self_fitted)
    if not pairs:
        return []
    return [f"Alignment fitted on the configurations it is applied to ({'; '.join(pairs)}): "
            "the mean aligned energy error there is zero by construction, so the sign of "
            "E_acc - E_app and the fraction E_acc - E_app' > 0 are conditioned on that fit; "
            "|cos(theta)| does not depend on it. An independent "
            "alignment (`--align-from FILE`, docs/alignment.md) removes the condition.", ""]
