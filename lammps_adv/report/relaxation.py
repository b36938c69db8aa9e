"""The report's relaxation section: relaxations driven by the approximate model, per model
pair and start temperature.

The first minimizer step changes E_acc - E_app by (F_app - F_acc) . dr_1 to first order
(dr_1 the recorded displacement; FIRE weighs atoms by mass, so dr_1 is not along F_app). A
change / prediction ratio near 1 says the step is in that linear regime, where the rise of
|error| is fixed by the start's forces: that the rise follows cos(theta) at the start is
then close to an identity, a check rather than a finding. Correlations are given within
each start-temperature group: pooled over groups they measure how the groups' clusters sit,
not a trend. The end: how many converged (max per-atom |F_app| <= fmax), the growth of the
median |error|, the fraction ending with E_acc - E_app' > 0 (holds for the alignment named
only) and the alignment-free change of E_acc - E_app over the relaxation. Every interval is
a 95 % cluster bootstrap over the independent units; below ``MIN_UNITS``: "not resolved".
"""
from __future__ import annotations

import math
from pathlib import Path

from lammps_adv.core.statistics import MIN_UNITS
from lammps_adv.core.summaries import relax_curves, relax_first_step
from lammps_adv.report.figures import STUDY, plot_band, plot_scatter_groups
from lammps_adv.report.labels import alignment_of, pair_label
from lammps_adv.report.tables import with_ci_if_resolved, write_table

UNCONVERGED_LISTED = 12        # unconverged relaxations named one by one; more are counted


def first_step_table(groups: dict) -> list[dict]:
    """Per start temperature: cos0 vs the first step's rise of |error|, and the first step
    against its first-order prediction."""
    rows = []
    for label, g in groups.items():
        k = g["stepped_units"]
        rows.append({
            "start temperature": label,
            "relaxations (units)": f"{g['stepped']} ({k})",
            "Spearman rho (cos0, rise)": with_ci_if_resolved(g["spearman"], g["spearman_ci"],
                                                             k, "{:.2f}"),
            "Pearson r": with_ci_if_resolved(g["pearson"], g["pearson_ci"], k, "{:.2f}"),
            "median rise (meV/atom)": f"{g['median_rise']:.3g}",
            "change / first-order prediction (median)": with_ci_if_resolved(
                g["first_order_ratio"], g["first_order_ci"], k, "{:.3f}")
            if g["first_order_n"] else "not recorded",
            "same sign as prediction": f"{g['first_order_same_sign']:.0%}"
            if g["first_order_n"] else "-"})
    return rows


def end_table(groups: dict) -> list[dict]:
    """Per start temperature: convergence, error growth and the state at the end."""
    rows = []
    for label, g in groups.items():
        k = g["units"]
        known = g["convergence_known"]
        rows.append({
            "start temperature": label,
            "relaxations (units)": f"{g['relaxations']} ({k})",
            "converged": f"{g['converged']} of {known}" if known else "not recorded",
            "median steps": f"{g['median_steps']:g}",
            "growth of median |error| (last / first)": with_ci_if_resolved(
                g["growth_factor"], g["growth_ci"], k),
            "ending with E_acc - E_app' > 0": with_ci_if_resolved(
                g["end_positive_fraction"], g["end_positive_ci"], k, "{:.2f}"),
            "E_acc - E_app, last - first (median, meV/atom)": with_ci_if_resolved(
                g["drift_median"], g["drift_ci"], k)})
    return rows


def convergence_lines(results, rows: list[dict]) -> list[str]:
    """The converged fraction of one pair and every unconverged relaxation with its steps."""
    known = [(r, s) for r, s in zip(results, rows) if s["converged"] is not None]
    if not known:
        return ["Convergence not recorded (files written before `lammps-adv relax --fmax`).", ""]
    fmax = sorted({s["fmax"] for _, s in known if math.isfinite(s["fmax"])})
    caps = sorted({int(r.params["steps"]) for r, _ in known if "steps" in r.params})
    stuck = [(r, s) for r, s in known if not s["converged"]]
    line = (f"Converged (max per-atom |F_app| <= {', '.join(f'{f:g}' for f in fmax)} eV/A "
            f"within {', '.join(map(str, caps))} steps): {len(known) - len(stuck)} of "
            f"{len(known)}.")
    if stuck:
        named = [f"`{Path(r.path).name}` ({s['steps']} steps, max |F_app| "
                 f"{s['final_fmax']:.2g} eV/A)" for r, s in stuck[:UNCONVERGED_LISTED]]
        more = len(stuck) - len(named)
        line += (" Unconverged, stopped by the cap: " + ", ".join(named)
                 + (f" and {more} more (the CSV lists them)" if more > 0 else "") + ".")
    return [line, ""]


def relaxation_rows_csv(results, rows: list[dict], stem: Path) -> Path:
    """Every relaxation of one pair, one CSV row each (machine-readable; not in report.md)."""
    keys = {"group": "start_temperature", "unit": "independent_unit", "steps": "steps",
            "converged": "converged", "final_fmax": "final_fmax_eV_per_A", "cos0": "cos0",
            "rise": "rise_meV_per_atom", "change_first": "change_first_meV_per_atom",
            "predicted_first": "predicted_first_meV_per_atom",
            "first_order_ratio": "first_order_ratio", "error_first": "error_first_meV_per_atom",
            "error_last": "error_last_meV_per_atom", "drift": "drift_meV_per_atom",
            "end_positive": "end_positive"}
    table = [{"file": Path(r.path).name, "source": str(r.params.get("source", "")),
              **{name: s[k] for k, name in keys.items()}} for r, s in zip(results, rows)]
    return write_table(table, stem, floatfmt="{:.9g}", markdown=False)[0]


def relaxation_section(res: dict, out: Path) -> list[str]:
    """Markdown lines (tables and figures written into ``out``) for the relaxations of
    ``read_results``' dict, one subsection per model pair."""
    by_pair: dict[str, list] = {}
    for r in res["relax"]:
        by_pair.setdefault(pair_label(r.params), []).append(r)
    lines = []
    for i, (label, rs) in enumerate(by_pair.items()):
        s = relax_first_step(rs)
        groups = s["groups"]
        first_stem, end_stem = out / f"relax_first_step_{i}", out / f"relax_end_{i}"
        write_table(first_step_table(groups), first_stem)
        write_table(end_table(groups), end_stem)
        every = relaxation_rows_csv(rs, s["rows"], out / f"relax_relaxations_{i}")
        scatter = plot_scatter_groups(
            s["points"], out / f"relax_first_step_{i}.png",
            r"cos$\theta$ at the start", "rise of |error| over the first step (meV/atom)",
            f"{label}: colour = start temperature",
            note="One point per relaxation. The study (" + STUDY + ") predicts the error "
                 "to rise where cos(theta) > 0.")
        band = plot_band({label: [relax_curves(r)[1] for r in rs]},
                         out / f"relax_error_vs_step_{i}.png", "minimizer step",
                         "|E_acc - E_app'| (meV/atom)", integer_x=True,
                         title=f"Relaxations driven by the approximate model: {label}",
                         note=f"Line: median over the {len(rs)} relaxations at each minimizer "
                              "step; band: their quartiles (25-75 %), not an interval. E_app' "
                              "is the aligned approximate energy.")
        alignment = "; ".join(sorted({alignment_of(r.params) for r in rs}))
        pooled = "" if len(groups) == 1 else (
            " No correlation pooled over the start temperatures is given: pooled, it would "
            "measure where the groups' clusters sit.")
        lines += [f"## Relaxations driven by the approximate model ({label})", "",
                  *convergence_lines(rs, s["rows"]),
                  "First minimizer step. To first order it changes E_acc - E_app by "
                  "(F_app - F_acc) . dr_1, dr_1 the recorded displacement (FIRE weighs atoms "
                  "by mass, so dr_1 is not along F_app). A change / prediction ratio near 1 "
                  "means the step is in that linear regime, where the rise of |error| follows "
                  "from the forces at the start: its correlation with cos(theta) at the start "
                  "is then close to an identity, a consistency check rather than a finding. "
                  "Per start temperature; intervals are 95 % cluster bootstraps over the "
                  f"independent units (fewer than {MIN_UNITS} units: not resolved)." + pooled,
                  "", Path(f"{first_stem}.md").read_text(), "",
                  "End of the relaxations. Growth: median |error| at the last step over that "
                  "at the start. The fraction ending with E_acc - E_app' > 0 holds for this "
                  f"alignment only ({alignment}); the change of E_acc - E_app from start to end "
                  "needs none (a constant offset cancels).", "",
                  Path(f"{end_stem}.md").read_text(), "",
                  f"Every relaxation: `{every.name}`.", "",
                  f"![first step]({scatter.name}) ![error vs step]({band.name})", ""]
    return lines
