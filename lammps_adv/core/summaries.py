"""What one probe or relaxation result says, from its arrays: the epsilon table of a probe,
the error curve of a relaxation, its first step against the first-order prediction and
cos(theta) at the start, its end and convergence, per temperature group;
the per-configuration errors of any result and summaries of their distributions.

Duck-typed: a result is anything with ``.data`` (arrays by name) and ``.params`` (the
/parameters attributes), e.g. ``lammps_adv.io.results.Result``."""
from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from lammps_adv.core.adversarial import random_abs_cos
from lammps_adv.core.statistics import (MIN_UNITS, cluster_bootstrap_ci, correlations,
                                        pearson, quantile_band, spearman, unit_count)



class ResultLike(Protocol):
    """One result file: its /parameters attributes and its arrays (by name)."""
    params: dict
    data: dict


def epsilon_rows(probe: ResultLike) -> list[dict]:
    """The epsilon table of one probe file, one row per epsilon.

    |E_acc - E_app| in meV/atom along A and along random directions (each configuration's
    mean over its random draws). Flagged displaced configurations (``flagged_adversarial``,
    ``flagged_random``: a pair pushed together, an eV-scale error) are counted and left out
    of every mean: a configuration flagged along A leaves the adversarial column at that
    epsilon (and its increase), a flagged random draw leaves its configuration's random mean.
    Means over the configurations with 95 % intervals that resample the probe file's
    ``independent_unit`` (cluster bootstrap; files without it: each configuration its own
    unit) and the number of units behind each; the increase from epsilon = 0 and the ratio
    of the two increases; the increase along A over its first-order prediction
    sqrt(sum dr^2) |F_app - F_acc| / N (meV/atom, mean of per-configuration ratios: 1 while
    the error responds linearly). The distortion both as sum_i |dr_i|^2 (A^2) and as the rms
    displacement per atom sqrt(sum_i |dr_i|^2 / N) (A), (min, max) over configurations."""
    d = probe.data
    natoms = np.asarray(d["natoms"], dtype=float)
    per_atom = 1000.0 / natoms                                          # eV -> meV/atom
    flag_adv, flag_rnd = _flags(d, "adversarial"), _flags(d, "random")
    adv = np.where(flag_adv, math.nan, np.abs(d["error_adversarial"]) * per_atom[:, None])
    rnd_all = np.where(flag_rnd, math.nan,
                       np.abs(d["error_random"]) * per_atom[:, None, None])   # [C, R, E]
    rnd = _nanmean(rnd_all, axis=1) if rnd_all.shape[1] else np.full_like(adv, math.nan)
    units = d.get("independent_unit")
    eps = np.asarray(d["epsilon"], dtype=float)
    per_atom_mode = probe.params.get("distortion", "total") == "per-atom"
    totals = eps[None, :] * (natoms[:, None] if per_atom_mode else np.ones((len(natoms), 1)))
    force_error = d.get("force_error_norm")

    def ratio(a, r):
        m = _nanmean(r)
        return float(_nanmean(a) / m) if m != 0 else math.nan

    def interval(statistic, *samples):
        return cluster_bootstrap_ci(statistic, *samples, units=units)

    def count(*samples):            # independent units behind a statistic of these samples
        ok = np.logical_and.reduce([np.isfinite(x) for x in samples])
        return int(ok.sum()) if units is None else unit_count(np.asarray(units)[ok])

    nan2 = (math.nan, math.nan)
    rows = []
    for k, e in enumerate(eps):
        rms = np.sqrt(totals[:, k] / natoms)
        row = {"epsilon_A2": float(e),
               "epsilon_total_A2": (float(totals[:, k].min()), float(totals[:, k].max())),
               "rms_displacement_A": (float(rms.min()), float(rms.max())),
               "n_configurations": len(natoms), "n_random_draws": int(flag_rnd[:, :, k].size),
               "flagged_adversarial": int(flag_adv[:, k].sum()),
               "flagged_random": int(flag_rnd[:, :, k].sum())}
        for name, x in (("adversarial", adv[:, k]), ("random", rnd[:, k])):
            lo, hi = interval(_nanmean, x)
            row.update({f"{name}_mean": float(_nanmean(x)), f"{name}_lo": lo,
                        f"{name}_hi": hi, f"{name}_units": count(x)})
        inc_a, inc_r = adv[:, k] - adv[:, 0], rnd[:, k] - rnd[:, 0]
        rnd_ci = interval(_nanmean, inc_r) if k else nan2
        # a ratio means something only when the random increase is clearly above 0
        meaningful = k and rnd_ci[0] > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            predicted = (np.sqrt(totals[:, k]) * np.asarray(force_error, dtype=float) / natoms
                         * 1000.0 if force_error is not None else np.full_like(inc_a, math.nan))
            linear = np.where(predicted > 0, inc_a / predicted, math.nan)
        row.update(adversarial_increase=float(_nanmean(inc_a)),
                   random_increase=float(_nanmean(inc_r)),
                   adversarial_increase_ci=interval(_nanmean, inc_a) if k else nan2,
                   random_increase_ci=rnd_ci, increase_units=count(inc_a, inc_r),
                   ratio=ratio(inc_a, inc_r) if meaningful else math.nan,
                   ratio_ci=interval(ratio, inc_a, inc_r) if meaningful else nan2,
                   first_order_ratio=float(_nanmean(linear)) if k else math.nan,
                   first_order_ratio_ci=interval(_nanmean, linear) if k else nan2,
                   first_order_units=count(linear) if k else 0)
        rows.append(row)
    return rows


def flagged_rows(probe: ResultLike) -> list[dict]:
    """The displaced configurations a probe file flags (kept out of ``epsilon_rows``' means),
    one dict each: source, epsilon_A2, direction ("adversarial" or "random <r>"), the
    species pair closest relative to its threshold with its distance and threshold (A), the
    error |E_acc - E_app| (meV/atom) and the reason ("closest pair", "error", or both)."""
    d = probe.data
    natoms = np.asarray(d["natoms"], dtype=float)
    pairs = [str(p) for p in d.get("species_pairs", [])]
    threshold = np.asarray(d.get("closest_pair_threshold", np.full(len(pairs), math.nan)))
    limit = float(probe.params.get("flag_error_eV_per_atom", math.inf))
    rows = []
    for kind in ("adversarial", "random"):
        flags = _flags(d, kind)
        error, closest = d[f"error_{kind}"], d.get(f"closest_pair_{kind}")
        for index in zip(*np.nonzero(flags)):
            c, k = index[0], index[-1]
            err = abs(float(error[index])) / float(natoms[c])
            if closest is not None and len(pairs):
                with np.errstate(divide="ignore", invalid="ignore"):
                    j = int(np.argmin(np.asarray(closest[index]) / threshold))
                pair, dist, thr = pairs[j], float(closest[index][j]), float(threshold[j])
            else:           # files written before the per-pair distances
                pair, dist, thr = "any", float(d[f"min_distance_{kind}"][index]), math.nan
            reasons = ["closest pair"] * bool(dist < thr) + ["error"] * (not err <= limit)
            rows.append({"source": str(d["source"][c]), "epsilon_A2": float(d["epsilon"][k]),
                         "direction": kind if kind == "adversarial" else f"random {index[1]}",
                         "species_pair": pair, "closest_pair_A": dist, "threshold_A": thr,
                         "error_meV_per_atom": 1000.0 * err,
                         "reason": " and ".join(reasons) or "flagged"})
    return rows


def _flags(d: dict, kind: str) -> np.ndarray:
    """flagged_<kind> of a probe file as bool (files written before it: the old core_<kind>
    flag, or nothing flagged)."""
    f = d.get(f"flagged_{kind}", d.get(f"core_{kind}"))
    return np.zeros(np.shape(d[f"error_{kind}"]), dtype=bool) if f is None \
        else np.asarray(f, dtype=bool)


def _nanmean(x, axis=None):
    """Mean of the finite values (NaN where there are none, without a warning)."""
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, x, 0.0).sum(axis=axis) / ok.sum(axis=axis)


def relax_step_ends(result: ResultLike) -> np.ndarray:
    """Row of the last record of each minimizer step: the configuration the step ended on
    (line-search trials and FIRE's re-evaluations after a restart come before it)."""
    step = np.asarray(result.data["step"])
    return np.r_[np.nonzero(np.diff(step))[0], len(step) - 1].astype(int) if len(step) \
        else np.zeros(0, int)


def relax_curves(result: ResultLike) -> tuple[np.ndarray, np.ndarray]:
    """(steps, |E_acc - E_app| in meV/atom) of a relaxation: the last evaluation of each
    minimizer step, i.e. the configuration the step ended on."""
    ends = relax_step_ends(result)
    n = float(result.params.get("n_atoms", 1))
    return result.data["step"][ends], np.abs(result.data["energy_error"][ends]) * 1000.0 / n


def temperature_group(kelvin: float) -> str:
    """The group label of a start temperature: '1000 K', or 'unknown' (NaN)."""
    return f"{kelvin:g} K" if math.isfinite(kelvin) else "unknown"


def relax_start(result: ResultLike, fallback_unit: str = "") -> dict:
    """What one relaxation says; energies in meV/atom, E_acc - E_app' with the aligned
    E_app' (the alignment of its /parameters).

    cos0               cos(theta) at the start
    error_first/last   |E_acc - E_app'| at the start and at the end of the last step
    rise               |error| at the end of the first step minus at the start
    change_first       E_acc - E_app at the end of the first step minus at the start
                       (signed, alignment-free: a constant offset cancels)
    predicted_first    its first-order prediction (F_app - F_acc)_start . dr_1, dr_1 the
                       recorded displacement of the first step (``first_order_change``;
                       NaN in files recorded without it)
    first_order_ratio  change_first / predicted_first (NaN when the prediction is 0)
    end_positive       E_acc - E_app' > 0 at the end (aligned: moves with the energy zero)
    drift              E_acc - E_app at the end minus at the start (alignment-free)
    steps              minimizer steps done; converged (True/False, None: not recorded),
                       final_fmax (eV/A) and fmax (eV/A, the criterion) from /parameters
    temperature, group K of the MD the start came from and its label ('unknown')
    unit               the independent unit (/parameters ``independent_unit``, else
                       ``fallback_unit``: the relaxation is its own unit)
    The first-step items are NaN when the relaxation ended before one step."""
    d, p = result.data, result.params
    ends = relax_step_ends(result)
    per_atom = 1000.0 / float(p.get("n_atoms", 1))
    error = np.asarray(d["energy_error"], float)[ends] * per_atom
    nan = math.nan
    change = error[1] - error[0] if len(ends) > 1 else nan
    predicted = float(d["first_order_change"][ends[1]]) * per_atom \
        if len(ends) > 1 and "first_order_change" in d else nan
    temperature = float(p.get("start_temperature_K", nan))
    converged = p.get("converged")
    return {"cos0": float(d["cos_adversarial"][0]) if len(ends) else nan,
            "error_first": float(abs(error[0])) if len(ends) else nan,
            "error_last": float(abs(error[-1])) if len(ends) else nan,
            "rise": float(abs(error[1]) - abs(error[0])) if len(ends) > 1 else nan,
            "change_first": float(change), "predicted_first": predicted,
            "first_order_ratio": float(change / predicted) if predicted else nan,
            "end_positive": bool(error[-1] > 0) if len(ends) else False,
            "drift": float(error[-1] - error[0]) if len(ends) else nan,
            "steps": int(p.get("minimizer_steps", max(len(ends) - 1, 0))),
            "converged": None if converged is None else bool(converged),
            "final_fmax": float(p.get("final_fmax_eV_per_A", nan)),
            "fmax": float(p.get("fmax_eV_per_A", nan)),
            "temperature": temperature, "group": temperature_group(temperature),
            "unit": str(p.get("independent_unit") or fallback_unit)}


def relax_rows(results: list[ResultLike]) -> list[dict]:
    """``relax_start`` of every relaxation; a relaxation without a recorded independent unit
    is its own (its file, or its place in the list)."""
    return [relax_start(r, str(getattr(r, "path", "") or f"relaxation {i}"))
            for i, r in enumerate(results)]


def _median_ratio(a, b) -> float:
    m = np.median(a)
    return float(np.median(b) / m) if m else math.nan


def relax_group_summary(rows: list[dict], min_units: int = MIN_UNITS) -> dict:
    """One temperature group of relaxations, every interval a 95 % cluster bootstrap over
    the independent units (fewer than ``min_units``: ``resolved`` False, "not resolved").

    First step: Pearson and Spearman of cos0 vs the rise of |error| (relaxations that made a
    first step); the median of change / first-order prediction (1 where the first step is
    in the linear regime) and the fraction whose change has the sign of its prediction.
    End: converged count (of those that recorded it), the median steps, the growth factor
    median |error| last / median |error| first, the fraction ending with E_acc - E_app' > 0
    and the median alignment-free change of E_acc - E_app over the relaxation."""
    stepped = [r for r in rows if math.isfinite(r["rise"])]
    cos0 = np.array([r["cos0"] for r in stepped])
    rise = np.array([r["rise"] for r in stepped])
    su = np.array([r["unit"] for r in stepped], dtype=str)
    n_units = unit_count([r["unit"] for r in rows]) if rows else 0

    def ci(stat, *samples, units):
        return cluster_bootstrap_ci(stat, *samples, units=units) if len(units) \
            else (math.nan, math.nan)

    r_p, r_s = correlations(cos0, rise)
    linear = [r for r in stepped if math.isfinite(r["first_order_ratio"])]
    ratio = np.array([r["first_order_ratio"] for r in linear])
    lu = np.array([r["unit"] for r in linear], dtype=str)
    same_sign = np.array([np.sign(r["change_first"]) == np.sign(r["predicted_first"])
                          for r in linear], dtype=float)
    ended = [r for r in rows if math.isfinite(r["error_first"])]      # at least one record
    units_all = np.array([r["unit"] for r in ended], dtype=str)
    first = np.array([r["error_first"] for r in ended])
    last = np.array([r["error_last"] for r in ended])
    positive = np.array([r["end_positive"] for r in ended], dtype=float)
    drift = np.array([r["drift"] for r in ended])
    known = [r for r in rows if r["converged"] is not None]
    return {"relaxations": len(rows), "units": n_units, "resolved": n_units >= min_units,
            "stepped": len(stepped), "stepped_units": unit_count(su) if len(su) else 0,
            "pearson": r_p, "pearson_ci": ci(pearson, cos0, rise, units=su),
            "spearman": r_s, "spearman_ci": ci(spearman, cos0, rise, units=su),
            "median_rise": float(np.median(rise)) if len(rise) else math.nan,
            "first_order_n": len(linear),
            "first_order_ratio": float(np.median(ratio)) if len(ratio) else math.nan,
            "first_order_ci": ci(np.median, ratio, units=lu),
            "first_order_same_sign": float(same_sign.mean()) if len(linear) else math.nan,
            "converged": sum(bool(r["converged"]) for r in known), "convergence_known": len(known),
            "median_steps": float(np.median([r["steps"] for r in rows])) if rows else math.nan,
            "median_first": float(np.median(first)) if ended else math.nan,
            "median_last": float(np.median(last)) if ended else math.nan,
            "growth_factor": _median_ratio(first, last) if ended else math.nan,
            "growth_ci": ci(_median_ratio, first, last, units=units_all),
            "end_positive_fraction": float(positive.mean()) if ended else math.nan,
            "end_positive_ci": ci(np.mean, positive, units=units_all),
            "drift_median": float(np.median(drift)) if ended else math.nan,
            "drift_ci": ci(np.median, drift, units=units_all)}


def relax_first_step(results: list[ResultLike], min_units: int = MIN_UNITS) -> dict:
    """The relaxations of one model pair: ``rows`` (``relax_rows``), ``groups`` {temperature
    label: ``relax_group_summary``} in order of temperature ('unknown' last), ``all`` (the
    summary of all of them: reported only where there is one group, since a pooled
    correlation over temperature groups mixes their clusters), ``n`` relaxations that made
    a first step and their ``points`` {group: (cos0, rise)} (for the scatter)."""
    rows = relax_rows(results)
    labels = sorted({r["group"] for r in rows},
                    key=lambda g: (g == "unknown", float(g.split()[0]) if g != "unknown" else 0))
    groups = {g: relax_group_summary([r for r in rows if r["group"] == g], min_units)
              for g in labels}
    stepped = [r for r in rows if math.isfinite(r["rise"])]
    # one group: the pooled summary is that group's (and its bootstraps need not run twice)
    pooled = groups[labels[0]] if len(labels) == 1 else relax_group_summary(rows, min_units)
    return {"rows": rows, "groups": groups, "all": pooled, "n": len(stepped),
            # the first-step scatter: {temperature group: (cos0, rise)}, in group order
            "points": {g: (np.array([r["cos0"] for r in stepped if r["group"] == g]),
                           np.array([r["rise"] for r in stepped if r["group"] == g]))
                       for g in labels if any(r["group"] == g for r in stepped)}}


def relax_growth(results: list[ResultLike]) -> float:
    """The growth factor alone (median |error| at the last step over that at the start, as
    ``relax_group_summary`` gives it), without the intervals and correlations: what the
    remedies measure for every strategy and seed."""
    ended = [r for r in relax_rows(results) if math.isfinite(r["error_first"])]
    return _median_ratio([r["error_first"] for r in ended],
                         [r["error_last"] for r in ended]) if ended else math.nan


def relax_band_rows(curves: list[np.ndarray], min_units: int = MIN_UNITS,
                    units=None) -> list[dict]:
    """Per minimizer step: relaxations still running, median and quartiles of |error| over all
    relaxations (one that ended keeps its last value); quartiles are "not resolved" with fewer
    than ``min_units`` independent units (``units`` labels each curve's; None: each
    relaxation its own)."""
    steps, med, q1, q3 = quantile_band(curves)
    resolved = (len(curves) if units is None else unit_count(units)) >= min_units
    return [{"step": int(k), "running": int(sum(len(c) > k for c in curves)),
             "median_meV_per_atom": float(m),
             "q25_meV_per_atom": float(a) if resolved else "not resolved",
             "q75_meV_per_atom": float(b) if resolved else "not resolved"}
            for k, m, a, b in zip(steps, med, q1, q3)]


def error_observables(result: ResultLike) -> dict[str, np.ndarray]:
    """Per row of a recording or configuration of a probe file: cos(theta), the energy error
    E_acc - E_app per atom (meV/atom) and, for recordings, the force RMSE (eV/A)."""
    d = result.data
    if result.params.get("experiment") == "probe":
        per_atom = d["energy_error"] / d["natoms"].astype(float)
        return {"cos_adversarial": d["cos_adversarial"],
                "energy_error_meV_per_atom": 1000.0 * per_atom}
    return {"cos_adversarial": d["cos_adversarial"],
            "energy_error_meV_per_atom": 1000.0 * d["energy_error_per_atom"],
            "force_rmse_eV_per_A": d["force_rmse"]}


QUANTILES = (0.05, 0.25, 0.75, 0.95)


def distribution_summary(values, quantiles=QUANTILES) -> dict:
    """n, mean, median and quantiles ('q05', ...) of values (NaN when empty)."""
    x = np.asarray(values, float)
    if not len(x):
        return {"n": 0, "mean": math.nan, "median": math.nan,
                **{f"q{round(100 * q):02d}": math.nan for q in quantiles}}
    return {"n": int(len(x)), "mean": float(x.mean()), "median": float(np.median(x)),
            **{f"q{round(100 * q):02d}": float(np.quantile(x, q)) for q in quantiles}}


# ------------------------------------------------------------------ lean of F_app along A
def lean_items(result: ResultLike, file_unit: str, first_row: bool = False) -> dict:
    """What the lean verdicts need, per configuration of a probe file or per row of a
    recording (with ``first_row`` only its first: a relaxation's start):

    cos          cos(theta) between A and F_app
    sign         sign of E_acc - E_app' (the aligned energy error): ``energy_error_sign``
                 when recorded, else the sign of ``energy_error``
    c_force      c_F = cos(F_app - F_acc, F_app): ``cos_force_error`` when recorded, else
                 cos * sign (the same wherever E_acc != E_app', since cos = sign c_F)
    natoms       atoms of the configuration
    unit         its independent unit (str): a probe's ``independent_unit`` array (files
                 without it: each configuration its own, ``file_unit#c``); a relaxation's
                 /parameters ``independent_unit`` (else ``file_unit``); a recorded run:
                 ``file_unit`` for every row (one trajectory is one unit)
    temperature  K of the MD its configuration came from (NaN: unknown; runs: NaN)
    """
    d, p = result.data, result.params
    cos = np.asarray(d["cos_adversarial"], float)
    n = len(cos)
    sign = np.asarray(d["energy_error_sign"], float) if "energy_error_sign" in d \
        else np.sign(np.asarray(d["energy_error"], float))
    c_force = np.asarray(d["cos_force_error"], float) if "cos_force_error" in d else cos * sign
    experiment = p.get("experiment")
    if experiment == "probe":
        natoms = np.asarray(d["natoms"], float)
        units = np.asarray(d["independent_unit"], dtype=str) if "independent_unit" in d \
            else np.array([f"{file_unit}#{c}" for c in range(n)])
        temperature = np.asarray(d.get("temperature", np.full(n, math.nan)), float)
    else:
        natoms = np.full(n, float(p.get("n_atoms", math.nan)))
        unit = str(p.get("independent_unit") or file_unit) if experiment == "relax" \
            else file_unit
        units = np.full(n, unit, dtype=object).astype(str)
        temperature = np.full(n, float(p.get("start_temperature_K", math.nan))
                              if experiment == "relax" else math.nan)
    # the random value as the probe measured it: mean |cos(random direction, F_app)|
    measured = np.asarray(d["random_abs_cos_measured"], float) \
        if "random_abs_cos_measured" in d else np.full(n, math.nan)
    items = {"cos": cos, "sign": sign, "c_force": c_force, "natoms": natoms, "unit": units,
             "temperature": temperature, "random_measured": measured}
    return {k: v[:1] for k, v in items.items()} if first_row else items


def lean_summary(cos, sign, c_force, natoms, unit, random_measured=None,
                 min_units: int = MIN_UNITS, quantiles=QUANTILES, **_) -> dict:
    """One group's lean of F_app along A, every interval a 95 % cluster bootstrap over the
    independent units (``unit`` labels each item; fewer than ``min_units`` units: not
    resolved, and the verdicts say so).

    Magnitude: mean |cos| against the random value sqrt(2 / (pi 3N)) (the mean |cos| of a
    direction that knows nothing of F_app, averaged over the items' N); it leans only when
    the interval's lower bound is above it. Sign: the fraction with E_acc - E_app' > 0, a
    separate verdict that holds for the alignment that made E_app' only (it moves with the
    energy zero). Also the mean c_F and quantiles of cos (no median: the distribution is
    often two-humped, one hump per sign of the error). No verdict on a signed mean."""
    cos = np.asarray(cos, float)
    unit = np.asarray(unit).astype(str)
    n = len(cos)
    units = unit_count(unit) if n else 0
    resolved = units >= min_units
    abs_cos = np.abs(cos)
    positive = (np.asarray(sign, float) > 0).astype(float)
    c_force = np.asarray(c_force, float)
    sizes = [int(m) for m in np.asarray(natoms, float) if math.isfinite(m) and m > 0]
    rnd = float(np.mean([random_abs_cos(m) for m in sizes])) if sizes else math.nan

    def mean_ci(x):
        if not n:
            return math.nan, (math.nan, math.nan)
        return float(np.mean(x)), cluster_bootstrap_ci(np.mean, x, units=unit)

    abs_mean, abs_ci = mean_ci(abs_cos)
    frac, frac_ci = mean_ci(positive)
    cf_mean, cf_ci = mean_ci(c_force)
    if not resolved:
        magnitude = sign_lean = "not resolved"
    else:
        magnitude = ("leans: |cos| above random" if abs_ci[0] > rnd else
                     "|cos| below random" if abs_ci[1] < rnd else "no lean: |cos| at random")
        sign_lean = ("leans: E_acc > E_app' more often" if frac_ci[0] > 0.5 else
                     "leans: E_acc < E_app' more often" if frac_ci[1] < 0.5 else
                     "no sign lean")
    ratio = abs_mean / rnd if rnd > 0 else math.nan
    measured = np.asarray(random_measured if random_measured is not None else [], float)
    measured = measured[np.isfinite(measured)]
    return {"n": n, "units": units, "resolved": resolved,
            "abs_cos_mean": abs_mean, "abs_cos_ci": abs_ci, "random_abs_cos": rnd,
            "random_abs_cos_measured": float(measured.mean()) if len(measured) else math.nan,
            "ratio_to_random": ratio,
            "ratio_ci": (abs_ci[0] / rnd, abs_ci[1] / rnd) if rnd > 0 else (math.nan, math.nan),
            "magnitude": magnitude,
            "positive_fraction": frac, "positive_ci": frac_ci, "sign_lean": sign_lean,
            "c_force_mean": cf_mean, "c_force_ci": cf_ci,
            **{f"cos_q{round(100 * q):02d}": float(np.quantile(cos, q)) if n else math.nan
               for q in quantiles}}


def lean_rows(groups: dict, min_units: int = MIN_UNITS) -> list[dict]:
    """``lean_summary`` of every group ({label: arrays as ``lean_items`` gives them, items
    of one group concatenated}), in the groups' order, each with its ``group`` label."""
    return [{"group": label, **lean_summary(**arrays, min_units=min_units)}
            for label, arrays in groups.items()]
