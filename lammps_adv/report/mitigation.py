"""The report's section on remedies: tables and figures from ``lammps-adv mitigate``
summaries (lammps_adv.io.h5md.read_mitigation), with 95 % bootstrap intervals over seeds.

Seeds are the independent units (each trains its own models), so every comparison is a
difference paired by seed and its interval resamples seeds; with fewer than ``MIN_UNITS``
seeds it is "not resolved" and the per-seed differences are shown instead. The lean is
judged on mean |cos(theta)| and, separately, on the fraction with E_acc - E_app > 0; the
signed mean cos(theta) is a column, never a verdict (a strategy can lower it by flipping
signs while the forces lean more)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lammps_adv.core.adversarial import random_abs_cos
from lammps_adv.core.statistics import MIN_UNITS, bootstrap_ci, cluster_bootstrap_ci
from lammps_adv.report.figures import plot_cos_histograms, pyplot
from lammps_adv.report.tables import with_ci, with_ci_if_resolved, write_table

COLUMNS = {"energy_rmse_meV_per_atom": "energy RMSE (meV/atom)",
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
    MIN_UNITS seeds], the labels spent, and the verdict on |cos| and on the sign fraction."""
    n_seeds = len(d["seed"])
    rows = []
    for i, name in enumerate(d["strategy"]):
        row = {"strategy": name, "labels": int(d["labels_spent"][i].max())}
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
    """Every remedy against each control on each verdict measure: the paired differences
    per seed, their mean with its interval, the seeds, the verdict (CSV of the report)."""
    rows = []
    for key, words, _ in VERDICTS:
        for name in d["strategy"]:
            for ref in CONTROLS:
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


def remedy4(d: dict) -> str:
    """The study's statement on force training: it lowers the lean, except for the
    lowest-energy configurations. Tested on the relaxed minima against the thermal
    configurations of the evaluation set: per seed, mean |cos| of forces minus baseline on
    each kind; holds when the thermal difference is below 0 (interval over seeds) and the
    minima difference is not."""
    names = list(d["strategy"])
    head = "Remedy 4 (training on forces)"
    if "forces" not in names or "baseline" not in names:
        return f"{head} was not run against baseline."
    kinds = np.asarray(d.get("eval_kind", []))
    if "abs_cos" not in d["per_run"] or "energy_error_sign" not in d["per_run"]:
        return f"{head}: not resolved: the summary has no per-configuration |cos| and sign."
    minima, thermal = kinds == "minimum", kinds == "thermal"
    if not minima.any() or not thermal.any():
        return (f"{head}: not resolved: the evaluation set has no relaxed minima (rerun "
                f"`lammps-adv mitigate` with `--minima K`, K > 0).")
    seeds = d["seed"]
    diff = {kind: paired_difference(_subset_means(d, "abs_cos", "forces", m)
                                    - _subset_means(d, "abs_cos", "baseline", m), seeds)
            for kind, m in (("thermal", thermal), ("minima", minima))}
    sign = {kind: paired_difference(_subset_means(d, "energy_error_sign", "forces", m)
                                    - _subset_means(d, "energy_error_sign", "baseline", m), seeds)
            for kind, m in (("thermal", thermal), ("minima", minima))}
    level = {kind: (_mean(_subset_means(d, "abs_cos", "forces", m)),
                    _mean(_subset_means(d, "abs_cos", "baseline", m)))
             for kind, m in (("thermal", thermal), ("minima", minima))}
    fmax = d.get("eval_max_force")
    fmax_text = (f", largest reference force {np.max(np.asarray(fmax)[minima]):.2g} eV/A"
                 if fmax is not None else "")
    n = diff["thermal"]["seeds"]
    facts = (f"mean |cos(theta)| on {int(thermal.sum())} thermal configurations: forces "
             f"{level['thermal'][0]:.3g}, baseline {level['thermal'][1]:.3g} (paired difference "
             f"{_text(diff['thermal'])}); on {int(minima.sum())} relaxed minima"
             f"{fmax_text}: forces {level['minima'][0]:.3g}, baseline {level['minima'][1]:.3g} "
             f"({_text(diff['minima'])}). Sign fraction, forces minus baseline: thermal "
             f"{_text(sign['thermal'])}, minima {_text(sign['minima'])}.")
    if n < MIN_UNITS:
        verdict = (f"The study's statement (force training lowers the lean except for the "
                   f"lowest-energy configurations) is {NOT_RESOLVED}: {n} seeds, fewer than "
                   f"{MIN_UNITS}.")
    else:
        lowers_thermal = diff["thermal"]["verdict"] == "lower"
        lowers_minima = diff["minima"]["verdict"] == "lower"
        if lowers_thermal and not lowers_minima:
            verdict = (f"The study's statement holds here ({n} seeds): force training lowers "
                       f"|cos| on thermal configurations and not on the minima.")
        elif not lowers_thermal:
            verdict = (f"The study's statement does not hold here ({n} seeds): force training "
                       f"does not lower |cos| on thermal configurations "
                       f"({diff['thermal']['verdict']}).")
        else:
            verdict = (f"The study's statement does not hold here ({n} seeds): force training "
                       f"lowers |cos| on the minima as well.")
    return (f"{head}: {facts} {verdict} (At a reference minimum F_acc = 0, so F_app - F_acc "
            f"= F_app and |cos(theta)| = 1 for any model: the exception is expected there.)")


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
    thermal = _thermal(d)
    hist = plot_cos_histograms({name: d["per_run"]["cos"][i][:, thermal].ravel()
                                for i, name in enumerate(d["strategy"])},
                               out / f"mitigation_cos_hist_{index}.png")
    growth = _plot_relax(d, out / f"mitigation_relax_{index}.png")
    curves = _plot_curves(d, out / f"mitigation_labels_{index}.png")
    p = result.params
    n_seeds = len(d["seed"])
    return [f"## Remedies compared on equal budgets ({p.get('approx_kind', '?')} approximating "
            f"{p.get('reference', '?')})", "",
            f"{n_seeds} seeds per strategy (the independent units); every strategy spent the "
            f"labels shown; values are means over seeds with 95 % bootstrap intervals over "
            f"seeds, \"not resolved\" with fewer than {MIN_UNITS} seeds. Measures over the "
            f"{int(thermal.sum())} thermal evaluation configurations; random |cos| "
            f"sqrt(2/(pi 3N)) = {with_ci(_random(d), (math.nan, math.nan))}. "
            f"{energy_zero(d, p)}", "",
            Path(f"{stem}.md").read_text(), "", *[x for v in verdicts(d) for x in (v, "")],
            "Differences paired by seed (remedy minus control):", "",
            Path(f"{vstem}.md").read_text(), "", remedy4(d), "",
            f"![cos per strategy]({hist.name}) ![error growth]({growth.name}) "
            f"![measure vs labels]({curves.name})", ""]


def _plot_relax(d, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, name in enumerate(d["strategy"]):
        curve = np.nanmedian(d["per_run"]["relax_curve"][i], axis=0)
        ax.plot(np.arange(len(curve)), curve, label=name)
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))       # minimizer steps are whole
    ax.set_xlabel("minimizer step")
    ax.set_ylabel("median |E_acc - E_app| (meV/atom)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_curves(d, path: Path) -> Path:
    """Energy RMSE and mean |cos(theta)| (the random value dashed) vs labels spent, means
    over seeds (summaries before abs_cos_mean: mean cos(theta))."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
