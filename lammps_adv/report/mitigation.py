"""The report's section on remedies: tables and figures from ``lammps-adv mitigate``
summaries (lammps_adv.io.h5md.read_mitigation), with 95 % bootstrap intervals over seeds."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lammps_adv.core.statistics import bootstrap_ci
from lammps_adv.report.figures import plot_cos_histograms, pyplot
from lammps_adv.report.tables import with_ci, write_table

COLUMNS = {"energy_rmse_meV_per_atom": "energy RMSE (meV/atom)",
           "force_rmse_eV_per_A": "force RMSE (eV/A)",
           "cos_mean": "mean cos(theta)", "cos_fraction_positive": "fraction cos > 0",
           "cos_energy_correlation": "corr(cos, energy)",
           "probe_excess": "probe: extra rise along A (meV/atom)", "relax_growth": "relaxation error growth"}


def _mean(x):
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else math.nan


def table_rows(d: dict) -> list[dict]:
    """Strategy x measure: mean over seeds [95 % interval], and the labels spent."""
    rows = []
    for i, name in enumerate(d["strategy"]):
        row = {"strategy": name, "labels": int(d["labels_spent"][i].max())}
        for key, title in COLUMNS.items():
            v = d["measures"][key][i]
            row[title] = with_ci(_mean(v), bootstrap_ci(_mean, v))
        rows.append(row)
    return rows


def compare(d: dict, key: str, strategy: str, against: str):
    """Mean over seeds of measure(strategy) - measure(against), paired by seed, with its
    interval; None when either is missing."""
    names = list(d["strategy"])
    if strategy not in names or against not in names:
        return None
    diff = d["measures"][key][names.index(strategy)] - d["measures"][key][names.index(against)]
    return _mean(diff), bootstrap_ci(_mean, diff)


def verdicts(d: dict) -> list[str]:
    """Sentences: which strategies lower the cos(theta) lean and the relaxation error growth
    relative to baseline and more-md (the interval of the paired difference below 0)."""
    out = []
    for key, what in (("cos_mean", "mean cos(theta)"), ("relax_growth", "relaxation error growth")):
        lower, other = [], []
        for name in d["strategy"]:
            if name in ("baseline", "more-md"):
                continue
            cmp = [compare(d, key, name, ref) for ref in ("baseline", "more-md")]
            if any(c is None for c in cmp):
                continue
            text = (f"{name} ({with_ci(cmp[0][0], cmp[0][1], '{:+.3g}')} vs baseline, "
                    f"{with_ci(cmp[1][0], cmp[1][1], '{:+.3g}')} vs more-md)")
            (lower if all(c[1][1] < 0 for c in cmp) else other).append(text)
        out.append(f"**{what}**: lower than both baseline and more-md (95 % interval of the "
                   f"paired difference below 0): {', '.join(lower) or 'none'}. Not "
                   f"established: {', '.join(other) or 'none'}.")
    return out


def remedy4(d: dict) -> str:
    """The study's finding for force training: the cos(theta) lean drops, except for the
    lowest-energy configurations. Mean cos of the lowest-energy quarter vs the rest."""
    names = list(d["strategy"])
    if "forces" not in names or "baseline" not in names:
        return "Remedy 4 (forces) was not run against baseline."
    e = d["eval_energy_per_atom"]
    low = e <= np.quantile(e, 0.25)
    cos = d["per_run"]["cos"]

    def lean(i, mask):
        v = cos[i][:, mask].mean(axis=1)
        return _mean(v), bootstrap_ci(_mean, v)
    f, b = names.index("forces"), names.index("baseline")
    parts = {k: (lean(f, m), lean(b, m)) for k, m in (("lowest", low), ("rest", ~low))}
    drop_rest = parts["rest"][0][0] < parts["rest"][1][0]
    drop_low = parts["lowest"][0][0] < parts["lowest"][1][0]
    holds = drop_rest and (parts["lowest"][0][0] > parts["rest"][0][0])
    return (f"Remedy 4 (training on forces): mean cos(theta) on the lowest-energy quarter of "
            f"the evaluation configurations {with_ci(*parts['lowest'][0])} (baseline "
            f"{with_ci(*parts['lowest'][1])}), on the rest {with_ci(*parts['rest'][0])} "
            f"(baseline {with_ci(*parts['rest'][1])}). Force training "
            f"{'lowers' if drop_rest else 'does not lower'} the lean on most configurations and "
            f"{'lowers' if drop_low else 'does not lower'} it on the lowest-energy ones; the "
            f"study's finding (lower except for the lowest-energy configurations) "
            f"{'holds' if holds else 'does not hold'} here.")


def section(result, out: Path, index: int) -> list[str]:
    """Markdown lines, tables (CSV + Markdown) and figures of one mitigation summary."""
    d = result.data
    stem = out / f"mitigation_{index}"
    write_table(table_rows(d), stem)
    hist = plot_cos_histograms({name: d["per_run"]["cos"][i].ravel()
                                for i, name in enumerate(d["strategy"])},
                               out / f"mitigation_cos_hist_{index}.png")
    growth = _plot_relax(d, out / f"mitigation_relax_{index}.png")
    curves = _plot_curves(d, out / f"mitigation_labels_{index}.png")
    p = result.params
    return [f"## Remedies compared on equal budgets ({p.get('approx_kind', '?')} approximating "
            f"{p.get('reference', '?')})", "",
            f"{len(d['seed'])} seeds per strategy; every strategy spent the labels shown; "
            "values are means over seeds with 95 % bootstrap intervals over seeds.", "",
            stem.with_suffix(".md").read_text(), "", *verdicts(d), "", remedy4(d), "",
            f"![cos per strategy]({hist.name}) ![error growth]({growth.name}) "
            f"![measure vs labels]({curves.name})", ""]


def _plot_relax(d, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, name in enumerate(d["strategy"]):
        curve = np.nanmedian(d["per_run"]["relax_curve"][i], axis=0)
        ax.plot(np.arange(len(curve)), curve, label=name)
    ax.set_xlabel("minimizer step")
    ax.set_ylabel("median |E_acc - E_app| (meV/atom)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_curves(d, path: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    labels = d["labels_per_round"]
    for ax, key, title in zip(axes, ("energy_rmse_meV_per_atom", "cos_mean"),
                              ("energy RMSE (meV/atom)", "mean cos(theta)")):
        for i, name in enumerate(d["strategy"]):
            ax.plot(labels, np.nanmean(d["curves"][key][i], axis=0), marker="o", label=name)
        ax.set_xlabel("reference labels spent")
        ax.set_ylabel(title)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
