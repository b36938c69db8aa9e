"""The report's section on remedies: tables and figures from ``lammps-adv mitigate``
summaries (lammps_adv.io.h5md.read_mitigation), with 95 % bootstrap intervals over seeds.

Seeds are the independent units (each trains its own models), so every comparison is a
difference paired by seed and its interval resamples seeds; with fewer than ``MIN_UNITS``
seeds it is "not resolved" and the per-seed differences are shown instead. The lean is
judged on mean |cos(theta)| and, separately, on the fraction with E_acc - E_app > 0; the
signed mean cos(theta) is a column, never a verdict (a strategy can lower it by flipping
signs while the forces lean more). Every table is computed from the summary alone (fixed
bootstrap seed), so rerunning the report on the same mitigate.h5 rewrites its CSV and
Markdown tables byte for byte."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from lammps_adv.core.adversarial import random_abs_cos
from lammps_adv.core.statistics import MIN_UNITS, bootstrap_ci, cluster_bootstrap_ci
from lammps_adv.experiments.measures import KINDS
from lammps_adv.experiments.strategies import FORCE_TRAINED
from lammps_adv.report.figures import STUDY, finish, plot_cos_grid, pyplot
from lammps_adv.report.tables import with_ci, with_ci_if_resolved, write_table

COLUMNS = {"energy_rmse_meV_per_atom": "energy RMSE (meV/atom)",
           "energy_rmse_offset_removed_meV_per_atom": "energy RMSE, offset removed (meV/atom)",
           "force_rmse_eV_per_A": "force RMSE (eV/A)",
           "abs_cos_mean": "mean abs cos(theta)", "abs_cos_over_random": "mean abs cos / random",
           "sign_fraction": "fraction E_acc - E_app > 0",
           "cos_mean": "mean cos(theta) (no verdict)",
           "cos_fraction_positive": "fraction cos > 0",        # summaries before abs_cos_mean
           "cos_energy_correlation": "corr(cos, energy)",
           "probe_excess": "probe: extra rise along A (meV/atom)", "relax_growth": "relaxation error growth"}
# the verdict measures: (measure, words, what a difference below 0 means); tables write
# "abs" for |...| (a pipe would end a Markdown cell)
VERDICTS = (("abs_cos_mean", "mean |cos(theta)|", "lower |cos|"),
            ("sign_fraction", "fraction E_acc - E_app > 0", "lower sign fraction"),
            ("relax_growth", "relaxation error growth", "lower growth"))
CONTROLS = ("baseline", "more-md")
NOT_RESOLVED = "not resolved"
# remedy 4: (trained on energies + forces, the same labels on energies only); "forces" vs
# baseline in summaries written before the +forces pairs
FORCE_PAIRS = tuple(FORCE_TRAINED.items()) + (("forces", "baseline"),)
# remedy 4: mean |cos| on the minima within this of 1 for both models is 1 by construction
DEGENERATE = 1e-3


def _mean(x):
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else math.nan


def _cell(words: str) -> str:
    """Words for a Markdown table cell: |x| written abs x."""
    return words.replace("|cos(theta)|", "abs cos(theta)").replace("|cos|", "abs cos")


def _per_seed(values) -> str:
    return ", ".join("n/a" if not math.isfinite(v) else f"{v:+.3g}" for v in values)


def table_rows(d: dict) -> list[dict]:
    """Strategy x measure: mean over seeds [95 % interval over seeds; "not resolved" below
    MIN_UNITS seeds], the labels each run spent (one number when every seed spent the
    same), the duplicate and outlier labels summed over seeds, and the verdict on |cos| and
    on the sign fraction."""
    n_seeds = len(d["seed"])
    rows = []
    for i, name in enumerate(d["strategy"]):
        spent = np.asarray(d["labels_spent"][i], dtype=np.int64)
        row = {"strategy": name, "labels": str(spent.min()) if spent.min() == spent.max()
               else f"{spent.min()}-{spent.max()}"}
        for key, words in (("duplicate_labels", "duplicate labels"),
                           ("outlier_labels", "outliers (not trained on)")):
            if key in d:
                row[words] = int(np.sum(d[key][i]))
        for key, title in COLUMNS.items():
            if key in d["measures"]:
                v = d["measures"][key][i]
                row[title] = with_ci_if_resolved(_mean(v), bootstrap_ci(_mean, v), n_seeds)
        for key, words, _ in VERDICTS[:2]:
            row[f"verdict: {_cell(words)}"] = strategy_verdict(d, key, name)
        rows.append(row)
    return rows


def paired(d: dict, key: str, strategy: str, against: str) -> dict | None:
    """measure(strategy) - measure(against), paired by seed: the per-seed differences, their
    mean, its 95 % interval over seeds, the number of seeds and the verdict ("lower",
    "higher", "no resolved difference", or NOT_RESOLVED below MIN_UNITS seeds); None when
    either strategy or the measure is missing."""
    names = list(d["strategy"])
    if strategy not in names or against not in names or key not in d["measures"]:
        return None
    m = d["measures"][key]
    return paired_difference(m[names.index(strategy)] - m[names.index(against)], d["seed"])


def paired_difference(diff, seeds) -> dict:
    """The verdict on per-seed differences ``diff`` (one per seed in ``seeds``): their mean
    and a bootstrap interval over seeds (each seed an independent unit)."""
    diff, seeds = np.asarray(diff, float), np.asarray(seeds)
    if diff.shape != seeds.shape:
        raise ValueError(f"{len(diff)} paired differences for {len(seeds)} seeds")
    ok = np.isfinite(diff)
    n = int(ok.sum())
    mean = _mean(diff)
    ci = cluster_bootstrap_ci(_mean, diff[ok], units=seeds[ok]) if n else (math.nan, math.nan)
    if n < MIN_UNITS:
        verdict = NOT_RESOLVED
    elif ci[1] < 0:
        verdict = "lower"
    elif ci[0] > 0:
        verdict = "higher"
    else:
        verdict = "no resolved difference"
    return {"per_seed": diff, "mean": mean, "ci": ci, "seeds": n, "verdict": verdict}


def _text(c: dict) -> str:
    if c["verdict"] == NOT_RESOLVED:
        return f"per seed {_per_seed(c['per_seed'])}"
    return with_ci(c["mean"], c["ci"], "{:+.3g}")


def strategy_verdict(d: dict, key: str, strategy: str) -> str:
    """One strategy on one measure against both controls: "lower than both", "higher than
    both", "not established", NOT_RESOLVED (fewer than MIN_UNITS seeds), or "control"."""
    if strategy in CONTROLS:
        return "control"
    cmp = [paired(d, key, strategy, ref) for ref in CONTROLS]
    if any(c is None for c in cmp):
        return "n/a"
    if any(c["verdict"] == NOT_RESOLVED for c in cmp):
        return f"{NOT_RESOLVED} ({cmp[0]['seeds']} seeds < {MIN_UNITS})"
    if all(c["verdict"] == "lower" for c in cmp):
        return "lower than both"
    if all(c["verdict"] == "higher" for c in cmp):
        return "higher than both"
    return "not established"


def verdict_rows(d: dict) -> list[dict]:
    """Every remedy against each control (and a strategy trained on forces also against its
    energy-only twin) on each verdict measure: the paired differences per seed, their mean
    with its interval, the seeds, the verdict (CSV of the report)."""
    rows = []
    for key, words, _ in VERDICTS:
        for name in d["strategy"]:
            twin = (FORCE_TRAINED[name],) if name in FORCE_TRAINED else ()
            for ref in dict.fromkeys(CONTROLS + twin):      # more-md+forces: once
                c = None if name in CONTROLS else paired(d, key, name, ref)
                if c is None:
                    continue
                rows.append({"measure": _cell(words), "strategy": name, "against": ref,
                             "seeds": c["seeds"], "per-seed differences": _per_seed(c["per_seed"]),
                             "mean difference [95 % CI over seeds]":
                                 with_ci_if_resolved(c["mean"], c["ci"], c["seeds"], "{:+.3g}"),
                             "verdict": c["verdict"]})
    return rows


def verdicts(d: dict) -> list[str]:
    """Sentences: which strategies lower mean |cos(theta)|, the sign fraction and the
    relaxation error growth relative to both baseline and more-md (the 95 % interval over
    seeds of the difference paired by seed below 0, with at least MIN_UNITS seeds)."""
    n_seeds = len(d["seed"])
    out = []
    for key, words, lower_words in VERDICTS:
        if key not in d["measures"]:
            out.append(f"**{words}**: not in this summary (written before it was measured).")
            continue
        groups = {}
        for name in d["strategy"]:
            v = strategy_verdict(d, key, name)
            if v in ("control", "n/a"):
                continue
            cmp = [paired(d, key, name, ref) for ref in CONTROLS]
            groups.setdefault(v.split(" (")[0], []).append(
                f"{name} ({_text(cmp[0])} vs baseline, {_text(cmp[1])} vs more-md)")
        if n_seeds < MIN_UNITS:
            out.append(f"**{words}**: {NOT_RESOLVED}: {n_seeds} seeds, fewer than the "
                       f"{MIN_UNITS} a verdict needs (seeds are the independent units). "
                       f"Differences paired by seed: "
                       f"{'; '.join(groups.get(NOT_RESOLVED, [])) or 'none'}.")
            continue
        out.append(f"**{words}** ({n_seeds} seeds): {lower_words} than both baseline and "
                   f"more-md (95 % interval over seeds of the paired difference below 0): "
                   f"{', '.join(groups.get('lower than both', [])) or 'none'}. Higher than "
                   f"both: {', '.join(groups.get('higher than both', [])) or 'none'}. Not "
                   f"established: {', '.join(groups.get('not established', [])) or 'none'}.")
    return out


def _subset_means(d: dict, key: str, strategy: str, mask) -> np.ndarray:
    """Per seed: the mean of per_run[key] of ``strategy`` over the configurations in mask."""
    v = np.asarray(d["per_run"][key][list(d["strategy"]).index(strategy)], float)[:, mask]
    if key == "energy_error_sign":
        v = (v > 0).astype(float)                 # the sign fraction
    return v.mean(axis=1)


def _kinds(d: dict) -> list[tuple[str, np.ndarray]]:
    """(kind, mask) of every kind of evaluation configuration in the summary, in the order
    of measures.KINDS (then any other)."""
    kinds = np.asarray(d.get("eval_kind", []))
    present = [k for k in KINDS if (kinds == k).any()]
    present += sorted(set(kinds.tolist()) - set(present))
    return [(k, kinds == k) for k in present]


def _pair_text(d: dict, strong: str, weak: str, masks: dict) -> str:
    """One pair of remedy 4: mean |cos| of both per kind, the paired differences, the sign
    fraction difference on thermal configurations and minima, and the verdict."""
    seeds = d["seed"]
    cells, diff, level = [], {}, {}
    for kind, m in masks.items():
        a, b = _subset_means(d, "abs_cos", strong, m), _subset_means(d, "abs_cos", weak, m)
        diff[kind] = paired_difference(a - b, seeds)
        level[kind] = (_mean(a), _mean(b))
        extra = ""
        if kind == "minimum" and d.get("eval_max_force") is not None:
            extra = f", largest reference force {np.max(np.asarray(d['eval_max_force'])[m]):.2g} eV/A"
        cells.append(f"{kind} ({int(m.sum())}{extra}): {_mean(a):.3g} vs {_mean(b):.3g} "
                     f"({_text(diff[kind])})")
    sign = {kind: paired_difference(_subset_means(d, "energy_error_sign", strong, masks[kind])
                                    - _subset_means(d, "energy_error_sign", weak, masks[kind]),
                                    seeds)
            for kind in ("thermal", "minimum")}
    n = diff["thermal"]["seeds"]
    head = f"**{strong}** against **{weak}**, mean |cos(theta)|: {'; '.join(cells)}. Sign " \
           f"fraction, difference: thermal {_text(sign['thermal'])}, minima " \
           f"{_text(sign['minimum'])}."
    if n < MIN_UNITS:
        return (f"{head} The study's statement (force training lowers the lean except for "
                f"the lowest-energy configurations) is {NOT_RESOLVED}: {n} seeds, fewer than "
                f"{MIN_UNITS}.")
    lowers_thermal = diff["thermal"]["verdict"] == "lower"
    # at a reference minimum |cos| = 1 - O((F_acc / F_app)^2) for every model: a resolved
    # difference of 1e-6 there measures |F_app|, not a lean
    at_one = all(abs(1 - x) < DEGENERATE for x in level["minimum"])
    others = [f"{k} {diff[k]['verdict']}" for k in masks if k not in ("thermal", "minimum")]
    elsewhere = f" Other kinds: {', '.join(others)}." if others else ""
    if lowers_thermal and at_one:
        verdict = (f"The study's statement holds here ({n} seeds), at the minima by "
                   f"construction: force training lowers |cos| on thermal configurations; on "
                   f"the minima |cos| is 1 within {DEGENERATE:g} for both models (F_acc = 0), "
                   f"so the exception there is no property of the models.{elsewhere}")
    elif lowers_thermal and diff["minimum"]["verdict"] != "lower":
        verdict = (f"The study's statement holds here ({n} seeds): force training lowers "
                   f"|cos| on thermal configurations and not on the minima.{elsewhere}")
    elif not lowers_thermal:
        verdict = (f"The study's statement does not hold here ({n} seeds): force training "
                   f"does not lower |cos| on thermal configurations "
                   f"({diff['thermal']['verdict']}).")
    else:
        verdict = (f"The study's statement does not hold here ({n} seeds): force training "
                   f"lowers |cos| on the minima as well.{elsewhere}")
    return f"{head} {verdict}"


def remedy4(d: dict) -> str:
    """The study's statement on force training: it lowers the lean, except for the
    lowest-energy configurations. Tested per pair of strategies that share their labels and
    differ by the loss (``FORCE_PAIRS``: X+forces against X), on every kind of evaluation
    configuration; it holds for a pair when the thermal difference of mean |cos| is below 0
    (interval over seeds) and the minima difference is not, or when |cos| is 1 within
    ``DEGENERATE`` on the minima for both (then by construction, and said so)."""
    names = list(d["strategy"])
    head = "Remedy 4 (training on forces)"
    pairs = [(f, e) for f, e in FORCE_PAIRS if f in names and e in names]
    if not pairs:
        return (f"{head} was not run: no strategy trained on forces next to its energy-only "
                f"twin.")
    if "abs_cos" not in d["per_run"] or "energy_error_sign" not in d["per_run"]:
        return f"{head}: not resolved: the summary has no per-configuration |cos| and sign."
    masks = dict(_kinds(d))
    if "minimum" not in masks or "thermal" not in masks:
        return (f"{head}: not resolved: the evaluation set has no relaxed minima (rerun "
                f"`lammps-adv mitigate` with `--minima K`, K > 0).")
    texts = [_pair_text(d, f, e, masks) for f, e in pairs]
    return (f"{head}, each strategy trained on energies and forces against the one trained "
            f"on energies only (the same labels; per kind of evaluation configuration: "
            f"number of configurations, then the means over seeds and the paired difference). "
            + " ".join(texts) + " (At a reference minimum F_acc = 0, so F_app - F_acc = F_app "
            "and |cos(theta)| = 1 for any model: the exception is expected there; the table by "
            "kind gives the energy and force errors on the minima.)")


def kind_rows(d: dict) -> list[dict]:
    """Kind of evaluation configuration x strategy: energy RMSE (raw and with each model's
    mean error per atom removed), force RMSE, mean |cos(theta)| and sign fraction over the
    configurations of that kind, mean over seeds [95 % interval over seeds]. Empty for
    summaries without per-configuration errors."""
    pr = d["per_run"]
    if "energy_error_per_atom" not in pr or "force_sq_error" not in pr or "eval_n_atoms" not in d:
        return []
    n_seeds = len(d["seed"])
    atoms = np.asarray(d["eval_n_atoms"], float)
    rows = []
    for kind, m in _kinds(d):
        for i, name in enumerate(d["strategy"]):
            de = np.asarray(pr["energy_error_per_atom"][i], float)[:, m]
            fsq = np.asarray(pr["force_sq_error"][i], float)[:, m]
            per_seed = {
                "energy RMSE (meV/atom)": 1000 * np.sqrt(np.mean(de ** 2, axis=1)),
                "energy RMSE, offset removed (meV/atom)": 1000 * np.std(de, axis=1),
                "force RMSE (eV/A)": np.sqrt(fsq.sum(axis=1) / (3 * atoms[m].sum())),
                "mean abs cos(theta)": _subset_means(d, "abs_cos", name, m),
                "fraction E_acc - E_app > 0": _subset_means(d, "energy_error_sign", name, m)}
            row = {"kind": kind, "configurations": int(m.sum()), "strategy": name}
            for title, v in per_seed.items():
                row[title] = with_ci_if_resolved(_mean(v), bootstrap_ci(_mean, v), n_seeds)
            rows.append(row)
    return rows


def run_rows(d: dict) -> list[dict]:
    """One row per run (strategy x seed): labels spent, duplicate labels, outliers (spent,
    not trained on) and the labels trained on; empty for summaries without the records."""
    if "duplicate_labels" not in d or "outlier_labels" not in d:
        return []
    rows = []
    for i, name in enumerate(d["strategy"]):
        for j, seed in enumerate(d["seed"]):
            spent, out = int(d["labels_spent"][i][j]), int(d["outlier_labels"][i][j])
            rows.append({"strategy": name, "seed": int(seed), "labels spent": spent,
                         "duplicate labels": int(d["duplicate_labels"][i][j]),
                         "outliers (not trained on)": out, "labels trained on": spent - out})
    return rows


def protocol(params: dict, d: dict) -> str:
    """The protocol of the run in one paragraph, from /parameters (settings) and the
    summary."""
    try:
        st = json.loads(params.get("settings", "") or "{}")
    except ValueError:
        st = {}
    per_round = np.diff(np.asarray(d["labels_per_round"])).tolist()
    parts = [f"Protocol: {int(np.max(d['labels_spent']))} reference labels per strategy over "
             f"{len(per_round)} rounds ({', '.join(map(str, per_round))}), "
             f"{len(d['seed'])} seeds ({', '.join(str(int(x)) for x in d['seed'])})"]
    if st:
        # a file by its name only: a report never shows machine paths
        validation = Path(str(params.get("validation", "n/a"))).name
        parts.append(f"starts and pool configurations drawn without replacement; every "
                     f"training early-stops on {validation} and refits no energy shift; a "
                     f"label further than {st.get('outlier_energy', 'n/a')} eV/atom from the "
                     f"base set's median energy per atom, or with a per-atom force above "
                     f"{st.get('outlier_force', 'n/a')} eV/A, is spent but not trained on; "
                     f"+forces strategies train on the labels of their energy-only twin with "
                     f"force weight {st.get('force_weight', 'n/a')}")
    kinds = ", ".join(f"{k} {int(m.sum())}" for k, m in _kinds(d))
    if kinds:
        parts.append(f"evaluation configurations: {kinds}")
        if st.get("md_ends") != 0 and "md-end" in dict(_kinds(d)):
            parts.append(f"md-end: NVT runs of {st.get('md_steps', 'n/a')} fs at "
                         f"{st.get('md_temperature', 'n/a')} K driven by one model trained "
                         f"with seed {st.get('driver_seed', 'n/a')}")
    return "; ".join(parts) + "."


def _thermal(d: dict) -> np.ndarray:
    """Mask of the thermal evaluation configurations (all, in summaries without eval_kind)."""
    n = np.asarray(d["per_run"]["cos"]).shape[-1]
    kinds = d.get("eval_kind")
    return np.ones(n, bool) if kinds is None else np.asarray(kinds) == "thermal"


def _random(d: dict) -> float:
    """The random |cos| sqrt(2/(pi 3N)) averaged over the thermal configurations (NaN
    without eval_n_atoms)."""
    if "eval_n_atoms" not in d:
        return math.nan
    atoms = np.asarray(d["eval_n_atoms"])[_thermal(d)]
    return float(np.mean([random_abs_cos(int(n)) for n in atoms]))


def energy_zero(d: dict, params: dict) -> str:
    """How E_app was put on the reference's energy zero (per_run/alignment_offset, and the
    alignment_source of /parameters where recorded)."""
    off = d["per_run"].get("alignment_offset")
    if off is None:
        return "Energy zero: not recorded in this summary."
    largest = float(np.nanmax(np.abs(off))) if np.size(off) else 0.0
    if largest == 0.0:
        return ("Energy zero: raw energies (no shift; the models are trained on the "
                "reference's own labels).")
    source = params.get("alignment_source")
    return (f"Energy zero: E_app shifted by up to {largest:.3g} eV per configuration "
            f"(per_run/alignment_offset{'; alignment: ' + str(source) if source else ''}); "
            "the sign fraction depends on that shift, |cos| does not.")


def section(result, out: Path, index: int) -> list[str]:
    """Markdown lines, tables (CSV + Markdown) and figures of one mitigation summary."""
    d = result.data
    stem = out / f"mitigation_{index}"
    write_table(table_rows(d), stem)
    vstem = out / f"mitigation_verdicts_{index}"
    write_table(verdict_rows(d) or [{"verdict": "no remedy besides the controls"}], vstem)
    kstem, rstem = out / f"mitigation_kinds_{index}", out / f"mitigation_runs_{index}"
    kinds, runs = kind_rows(d), run_rows(d)
    if kinds:
        write_table(kinds, kstem)
    if runs:
        write_table(runs, rstem)
    thermal = _thermal(d)
    p = result.params
    pair = f"{p.get('approx_kind', '?')} approximating {p.get('reference', '?')}"
    n_seeds = len(d["seed"])
    hist = plot_cos_grid(
        {name: ({f"n={d['per_run']['cos'][i][:, thermal].size}":
                 d["per_run"]["cos"][i][:, thermal].ravel()}, _random(d))
         for i, name in enumerate(d["strategy"])},
        out / f"mitigation_cos_hist_{index}.png", title=f"cos(theta) after each remedy: {pair}",
        note=f"Thermal evaluation configurations, all {n_seeds} seeds pooled. Dotted: "
             "+-sqrt(2/(pi 3N)), the mean |cos| of a random direction. cos(theta) as in "
             f"{STUDY}.")
    growth = _plot_relax(d, out / f"mitigation_relax_{index}.png", pair)
    curves = _plot_curves(d, out / f"mitigation_labels_{index}.png", pair)
    return [f"## Remedies compared on equal budgets ({p.get('approx_kind', '?')} approximating "
            f"{p.get('reference', '?')})", "",
            f"{n_seeds} seeds per strategy (the independent units); every strategy spent the "
            f"labels shown; values are means over seeds with 95 % bootstrap intervals over "
            f"seeds, \"not resolved\" with fewer than {MIN_UNITS} seeds. Measures over the "
            f"{int(thermal.sum())} thermal evaluation configurations; random |cos| "
            f"sqrt(2/(pi 3N)) = {with_ci(_random(d), (math.nan, math.nan))}. "
            f"{energy_zero(d, p)}", "", protocol(p, d), "",
            Path(f"{stem}.md").read_text(), "", *[x for v in verdicts(d) for x in (v, "")],
            "Differences paired by seed (remedy minus control):", "",
            Path(f"{vstem}.md").read_text(), "", remedy4(d), "",
            *(["By kind of evaluation configuration (means over seeds):", "",
               Path(f"{kstem}.md").read_text(), ""] if kinds else []),
            *(["Every run: labels spent, duplicate labels, outliers:", "",
               Path(f"{rstem}.md").read_text(), ""] if runs else []),
            f"![cos per strategy]({hist.name}) ![error growth]({growth.name}) "
            f"![measure vs labels]({curves.name})", ""]


def _plot_relax(d, path: Path, pair: str) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.9))
    for i, name in enumerate(d["strategy"]):
        curve = np.nanmedian(d["per_run"]["relax_curve"][i], axis=0)
        ax.plot(np.arange(len(curve)), curve, label=name)
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))       # minimizer steps are whole
    ax.set_xlabel("minimizer step")
    ax.set_ylabel("median |E_acc - E_app| (meV/atom)")
    ax.legend(fontsize=7)
    return finish(fig, path, f"Relaxations after each remedy: {pair}",
                  f"Median over the relaxations of all {len(d['seed'])} seeds at each "
                  "minimizer step (no interval drawn; the tables give them over seeds).")


def _plot_curves(d, path: Path, pair: str) -> Path:
    """Energy RMSE and mean |cos(theta)| (the random value dashed) vs labels spent, means
    over seeds (summaries before abs_cos_mean: mean cos(theta))."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.7))
    labels = d["labels_per_round"]
    lean = ("abs_cos_mean", "mean |cos(theta)|") if "abs_cos_mean" in d["curves"] \
        else ("cos_mean", "mean cos(theta)")
    for ax, (key, title) in zip(axes, (("energy_rmse_meV_per_atom", "energy RMSE (meV/atom)"),
                                       lean)):
        for i, name in enumerate(d["strategy"]):
            ax.plot(labels, np.nanmean(d["curves"][key][i], axis=0), marker="o", label=name)
        ax.set_xlabel("reference labels spent")
        ax.set_ylabel(title)
    if lean[0] == "abs_cos_mean" and math.isfinite(_random(d)):
        axes[1].axhline(_random(d), color="k", linestyle="--", linewidth=0.8,
                        label="random sqrt(2/(pi 3N))")
        axes[1].legend(fontsize=7)
    axes[0].legend(fontsize=7)
    return finish(fig, path, f"Learning curves of the remedies: {pair}",
                  f"Means over {len(d['seed'])} seeds (no interval drawn; the tables give 95 % "
                  "bootstrap intervals over seeds).")
