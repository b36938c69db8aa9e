"""The report's cos(theta) section: how strongly the approximate model's forces F_app lean
along the adversarial direction A, per group of configurations (model pair x how they were
sampled x MD temperature, when the files record it).

Two verdicts, kept apart, none on a signed mean (``lammps_adv.core.summaries.lean_summary``):
the magnitude (mean |cos| against the random value sqrt(2 / (pi 3N))) and the sign (the
fraction with E_acc - E_app' > 0, which holds only for the alignment that made E_app').
Every interval is a 95 % cluster bootstrap over independent units: the melt-quenched
glasses (crystals, files) a probe's configurations descend from (its ``independent_unit``
array), the start configuration's unit for relaxations, the file for a recorded run. Fewer
than ``MIN_UNITS`` units: "not resolved" instead of an interval or a verdict.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lammps_adv.core.statistics import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, MIN_UNITS
from lammps_adv.core.summaries import lean_items, lean_rows
from lammps_adv.report.figures import STUDY, plot_cos_grid
from lammps_adv.report.labels import alignment_of, pair_label
from lammps_adv.report.tables import with_ci_if_resolved, write_table

# how the configurations of each kind of result were sampled (probes say it themselves)
RUN_SAMPLING = "MD driven by the approximate model"
RELAX_SAMPLING = "start of relaxations"


def cos_groups(res: dict) -> tuple[dict, list[str]]:
    """({(pair, sampling, temperature K or NaN, alignment mode): lean_items of all its files,
    concatenated}, names of probe files that record no independent units), from
    ``read_results``' dict. A recorded run counts whole (every row, one unit); a relaxation
    counts its first row (its start)."""
    parts: dict[tuple, list[dict]] = {}
    unitless = []
    for kind, sampling in (("probe", None), ("run", RUN_SAMPLING), ("relax", RELAX_SAMPLING)):
        for r in res[kind]:
            if kind == "probe" and "independent_unit" not in r.data:
                unitless.append(r.path.name)
            items = lean_items(r, str(r.path), first_row=kind == "relax")
            what = sampling or str(r.params.get("sampling", "probe configurations"))
            temps = items["temperature"]
            for t in sorted(set(temps[np.isfinite(temps)].tolist())) + [math.nan]:
                pick = np.isnan(temps) if math.isnan(t) else temps == t
                if pick.any():
                    # the mode suffices: one pair has one alignment (labels.alignment_by_pair)
                    key = (pair_label(r.params), what, t, str(r.params.get("alignment", "none")))
                    parts.setdefault(key, []).append({k: v[pick] for k, v in items.items()})
    groups = {key: {k: np.concatenate([p[k] for p in ps]) for k in ps[0]}
              for key, ps in parts.items()}
    return groups, unitless


def cos_table(rows: list[dict], keys: list[tuple]) -> list[dict]:
    """The rows of the report's cos(theta) table (strings; intervals 'not resolved' below
    MIN_UNITS units)."""
    out = []
    for (pair, sampling, temp, alignment), r in zip(keys, rows):
        k = r["units"]

        def ci(value, interval, fmt="{:.3g}"):
            return with_ci_if_resolved(value, interval, k, fmt)
        out.append({
            "model pair": pair, "configurations": sampling,
            "T (K)": f"{temp:g}" if math.isfinite(temp) else "-",
            "n": r["n"], "independent units": k,
            "mean |cos|": ci(r["abs_cos_mean"], r["abs_cos_ci"]),
            "random |cos|": f"{r['random_abs_cos']:.3g}",
            "random |cos| measured": f"{r['random_abs_cos_measured']:.3g}"
            if math.isfinite(r["random_abs_cos_measured"]) else "-",
            "ratio to random": ci(r["ratio_to_random"], r["ratio_ci"], "{:.2f}"),
            "magnitude": r["magnitude"],
            "fraction E_acc - E_app' > 0": ci(r["positive_fraction"], r["positive_ci"], "{:.2f}"),
            "sign (given the alignment)": f"{r['sign_lean']} (alignment {alignment})",
            "mean c_F": ci(r["c_force_mean"], r["c_force_ci"]),
            **{f"cos {q}": f"{r[f'cos_{q}']:.3g}" for q in ("q05", "q25", "q75", "q95")}})
    return out


def cos_section(res: dict, out: Path) -> list[str]:
    """Markdown lines, the table (cos_stats.csv / .md) and the figure (cos_hist.png) of the
    cos(theta) section; no lines when no result has cos(theta)."""
    groups, unitless = cos_groups(res)
    if not groups:
        return []
    keys = list(groups)
    rows = lean_rows(groups)
    write_table(cos_table(rows, keys), out / "cos_stats")
    # one panel per model pair and sampling, its temperatures overlaid
    panels = {}
    for (pair, sampling, temp, alignment), r in zip(keys, rows):
        series, rnd = panels.setdefault(f"{pair}\n{sampling}", ({}, r["random_abs_cos"]))
        t = f"{temp:g} K" if math.isfinite(temp) else "T not recorded"
        series[f"{t}: n={r['n']}, {r['units']} unit{'s' if r['units'] != 1 else ''}"] = \
            groups[(pair, sampling, temp, alignment)]["cos"]
    png = plot_cos_grid(panels, out / "cos_hist.png", title="cos(theta) of the adversarial "
                        "direction A with F_app, per model pair (approx vs reference) and sampling",
                        note="Step histograms, one per temperature (n configurations or records, "
                        "from that many independent units). Dotted: +-sqrt(2/(pi 3N)), the mean "
                        f"|cos| of a random direction. cos(theta) = A.F_app/(|A||F_app|) as in "
                        f"{STUDY}.")
    # in full (shifts and where they came from): one per pair (labels.alignment_by_pair)
    alignments = sorted({(pair_label(r.params), alignment_of(r.params))
                         for kind in ("probe", "run", "relax") for r in res[kind]})
    lines = ["## Alignment of the model forces with the adversarial direction", "",
             "cos(theta) = A . F_app / (|A| |F_app|) per configuration, with A = 2 (E_acc - "
             "E_app') (F_app - F_acc) and E_app' the aligned approximate energy; so cos(theta) "
             "= sign(E_acc - E_app') c_F, c_F = cos(F_app - F_acc, F_app). Two questions, "
             "answered apart:", "",
             "- **magnitude**: is mean |cos(theta)| above sqrt(2 / (pi 3N)), the mean |cos| of a "
             "direction that knows nothing of F_app (\"random |cos|\"; \"measured\": the same "
             "mean over the probe's own random directions, a check of the formula)? \"leans\" "
             "only when the "
             "interval's lower bound is above it. It does not depend on the alignment.",
             "- **sign**: the fraction of configurations with E_acc - E_app' > 0. It moves with "
             "the energy zero, so it holds for the named alignment only.", "",
             "Groups: model pair x how the configurations were sampled x MD temperature (when "
             "recorded). Intervals in brackets: 95 % cluster bootstrap over the independent "
             f"units ({BOOTSTRAP_SAMPLES} resamples, seed {BOOTSTRAP_SEED}): the melt-quenched "
             "glasses (crystals, files) the configurations descend from; a recorded run is one "
             "unit (its file), a relaxation's start belongs to its configuration's unit. With "
             f"fewer than {MIN_UNITS} units an interval and its verdict are \"not resolved\". "
             "Quantiles of cos(theta) instead of a median: the distribution often has one hump "
             "per sign of the error. Mean c_F: cos(F_app - F_acc, F_app), whose sign does not "
             "depend on the alignment.", "",
             (out / "cos_stats.md").read_text(), "",
             "Alignments: " + "; ".join(f"{pair}: {a}" for pair, a in alignments) + ".", ""]
    if unitless:
        lines += [f"Files without independent units ({', '.join(unitless)}; written before "
                  "probe files recorded them): each configuration counted as its own unit, "
                  "which overstates the independence of frames of one trajectory.", ""]
    lines += [f"![cos theta]({png.name})", "",
              "Figure: histograms (density) of the signed cos(theta), one panel per model pair "
              "and sampling, one line per MD temperature (n configurations, independent "
              "units); dotted lines at +- sqrt(2 / (pi 3N)), the random value.", ""]
    return lines
