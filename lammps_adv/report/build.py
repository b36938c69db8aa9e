"""Aggregate many HDF5 result files into tables (CSV + Markdown) and figures (PNG).

Files are read only through the readers of ``lammps_adv.io.h5md`` (which owns the format).
Files that are not ours (no `/h5md` group with creator "lammps-adv") or that are
truncated/corrupt are skipped with one warning naming the file; the rest is aggregated.
Every number is computed from the files, so rerunning gives identical tables.

The report's parts live beside this module: reading in ``lammps_adv.io.results``,
statistics in ``lammps_adv.core.statistics`` and ``lammps_adv.core.summaries``, tables and
figures in ``report.tables`` and ``report.figures``, one module per section (``report.epsilon``,
``report.qm``, ``report.mitigation``); this module assembles them into report.md.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lammps_adv.core.statistics import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED
from lammps_adv.core.summaries import relax_curves, relax_first_step
from lammps_adv.io.results import read_results
from lammps_adv.report.epsilon import epsilon_section
from lammps_adv.report.figures import plot_band, plot_cos_histograms, plot_scatter
from lammps_adv.report.labels import alignment_of, pair_label
from lammps_adv.report.mitigation import section
from lammps_adv.report.qm import qm_section
from lammps_adv.report.tables import cos_stats, with_ci, write_table

__all__ = ["build_report", "pair_label", "alignment_of"]


def build_report(paths, out: str | Path) -> Path:
    """Tables, figures and report.md from result files; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = read_results(paths)
    lines = ["# lammps-adv report", "",
             "Every number here is computed by `lammps-adv report` from the HDF5 files listed at "
             "the end; energies in meV/atom unless stated, distortion epsilon in A^2. Intervals "
             f"in brackets are 95 % percentile-bootstrap intervals ({BOOTSTRAP_SAMPLES} "
             f"resamples of the configurations, seed {BOOTSTRAP_SEED}: rerunning reproduces "
             "them exactly). Errors use the aligned approximate energy: see each section's "
             "alignment.", ""]
    # --- 1. epsilon table
    lines += epsilon_section(res, out)
    # --- 2. cos theta distributions
    groups, aligned = {}, {}
    for kind, what, values in (("probe", None, lambda r: r.data["cos_adversarial"]),
                               ("run", "MD driven by the approximate model",
                                lambda r: r.data["cos_adversarial"]),
                               ("relax", "start of relaxations",
                                lambda r: r.data["cos_adversarial"][:1])):
        for r in res[kind]:
            key = (f"{pair_label(r.params)}, {what or r.params.get('sampling', 'probe configurations')}"
                   f", alignment {r.params.get('alignment', 'none')}")
            groups[key] = np.concatenate([groups.get(key, np.zeros(0)), values(r)])
            aligned.setdefault(key, set()).add(alignment_of(r.params))
    aligned = {k: "; ".join(sorted(v)) for k, v in aligned.items()}
    if groups:
        rows = [{"configurations": k, **cos_stats(v), "alignment": aligned[k]}
                for k, v in groups.items()]
        write_table(rows, out / "cos_stats")
        png = plot_cos_histograms(groups, out / "cos_hist.png")
        lines += ["## Alignment of the model forces with the adversarial direction", "",
                  "cos(theta) = A . F_app / (|A| |F_app|) per configuration.", "",
                  (out / "cos_stats.md").read_text(), "", f"![cos theta]({png.name})", ""]
    # --- 3. relaxations
    by_pair = {}
    for r in res["relax"]:
        by_pair.setdefault(pair_label(r.params), []).append(r)
    for i, (label, rs) in enumerate(by_pair.items()):
        s = relax_first_step(rs)
        rows = [{"model_pair": label, "relaxations": s["n"],
                 "Pearson r (cos0, first-step rise)": with_ci(s["pearson"], s["pearson_ci"], "{:.2f}"),
                 "Spearman rho": with_ci(s["spearman"], s["spearman_ci"], "{:.2f}"),
                 "median error, first step": f"{s['median_first']:.3g}",
                 "median error, last step": f"{s['median_last']:.3g}",
                 "growth factor (last/first)": with_ci(s["growth_factor"], s["growth_ci"]),
                 "alignment": "; ".join(sorted({alignment_of(r.params) for r in rs}))}]
        stem = out / f"relax_summary_{i}"
        write_table(rows, stem)
        sc = plot_scatter(s["cos0"], s["rise"], out / f"relax_first_step_{i}.png",
                          r"cos$\theta$ at the start", "error increase over the first step (meV/atom)",
                          f"{label}: Pearson {s['pearson']:.2f}, Spearman {s['spearman']:.2f}")
        band = plot_band({label: [relax_curves(r)[1] for r in rs]}, out / f"relax_error_vs_step_{i}.png",
                         "minimizer step", "|E_acc - E_app| (meV/atom)")
        lines += [f"## Relaxations driven by the approximate model ({label})", "",
                  stem.with_suffix(".md").read_text(), "",
                  f"![first step]({sc.name}) ![error vs step]({band.name})", ""]
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
