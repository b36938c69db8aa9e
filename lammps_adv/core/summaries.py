"""What one probe or relaxation result says, from its arrays: the epsilon table of a probe,
the error curve of a relaxation, and cos(theta) at the start vs the first step's error rise;
the per-configuration errors of any result and summaries of their distributions.

Duck-typed: a result is anything with ``.data`` (arrays by name) and ``.params`` (the
/parameters attributes), e.g. ``lammps_adv.io.results.Result``."""
from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from lammps_adv.core.adversarial import random_abs_cos
from lammps_adv.core.statistics import (MIN_UNITS, bootstrap_ci, correlations, pearson,
                                        quantile_band, spearman)



class ResultLike(Protocol):
    """One result file: its /parameters attributes and its arrays (by name)."""
    params: dict
    data: dict


def epsilon_rows(probe: ResultLike) -> list[dict]:
    """The epsilon table of one probe file: |E_acc - E_app| in meV/atom along A and along
    random directions (each configuration's mean over its random draws), means over the
    configurations with 95 % bootstrap intervals (resampling configurations); the increase
    from epsilon = 0 and the ratio of the two increases, with its interval; the fraction of
    configurations the step along A pushed into the repulsive core."""
    d = probe.data
    per_atom = 1000.0 / d["natoms"].astype(float)                      # eV -> meV/atom
    adv = np.abs(d["error_adversarial"]) * per_atom[:, None]            # [C, E]
    rnd_all = np.abs(d["error_random"]) * per_atom[:, None, None]       # [C, R, E]
    rnd = rnd_all.mean(axis=1) if rnd_all.shape[1] else np.full_like(adv, math.nan)
    core = d.get("core_adversarial")

    def ratio(a, r):
        return float(a.mean() / r.mean()) if r.mean() != 0 else math.nan

    rows = []
    for k, eps in enumerate(d["epsilon"]):
        inc_a, inc_r = adv[:, k] - adv[:, 0], rnd[:, k] - rnd[:, 0]
        row = {"epsilon_A2": float(eps)}
        for name, x in (("adversarial", adv[:, k]), ("random", rnd[:, k])):
            lo, hi = bootstrap_ci(np.mean, x)
            row.update({f"{name}_mean": float(x.mean()), f"{name}_lo": lo, f"{name}_hi": hi})
        rnd_ci = bootstrap_ci(np.mean, inc_r) if k else (math.nan, math.nan)
        # a ratio means something only when the random increase is clearly above 0
        meaningful = k and rnd_ci[0] > 0
        row.update(adversarial_increase=float(inc_a.mean()), random_increase=float(inc_r.mean()),
                   adversarial_increase_ci=bootstrap_ci(np.mean, inc_a) if k else (math.nan, math.nan),
                   random_increase_ci=rnd_ci,
                   ratio=ratio(inc_a, inc_r) if meaningful else math.nan,
                   ratio_ci=bootstrap_ci(ratio, inc_a, inc_r) if meaningful else (math.nan, math.nan),
                   core_fraction=float(core[:, k].mean()) if core is not None else math.nan)
        rows.append(row)
    return rows


def relax_curves(result: ResultLike) -> tuple[np.ndarray, np.ndarray]:
    """(steps, |E_acc - E_app| in meV/atom) of a relaxation: the last evaluation of each
    minimizer step, i.e. the configuration the step ended on."""
    d = result.data
    step = d["step"]
    last = np.r_[np.nonzero(np.diff(step))[0], len(step) - 1]
    n = float(result.params.get("n_atoms", 1))
    return step[last], np.abs(d["energy_error"][last]) * 1000.0 / n


def relax_start(result: ResultLike) -> dict | None:
    """One relaxation's cos(theta) at the start, |error| (meV/atom) at its first and last
    step and the rise of |error| over the first step; None when it ended before one step."""
    _, err = relax_curves(result)
    if len(err) < 2:
        return None
    return {"cos0": float(result.data["cos_adversarial"][0]), "error_first": float(err[0]),
            "rise": float(err[1] - err[0]), "error_last": float(err[-1])}


def relax_first_step(results: list[ResultLike]) -> dict:
    """cos(theta) at the start vs increase of |error| (meV/atom) over the first step."""
    starts = [s for s in map(relax_start, results) if s is not None]
    cos0, rise = [s["cos0"] for s in starts], [s["rise"] for s in starts]
    first, last = [s["error_first"] for s in starts], [s["error_last"] for s in starts]
    r_p, r_s = correlations(cos0, rise)

    def growth(a, b):
        m = np.median(a)
        return float(np.median(b) / m) if m else math.nan
    first, last = np.array(first), np.array(last)
    return {"cos0": np.array(cos0), "rise": np.array(rise), "n": len(cos0),
            "pearson": r_p, "pearson_ci": bootstrap_ci(pearson, cos0, rise),
            "spearman": r_s, "spearman_ci": bootstrap_ci(spearman, cos0, rise),
            "median_first": float(np.median(first)) if len(first) else math.nan,
            "median_last": float(np.median(last)) if len(last) else math.nan,
            "growth_factor": growth(first, last) if len(first) else math.nan,
            "growth_ci": bootstrap_ci(growth, first, last)}


def relax_band_rows(curves: list[np.ndarray], min_units: int = MIN_UNITS) -> list[dict]:
    """Per minimizer step: relaxations still running, median and quartiles of |error| over all
    relaxations (one that ended keeps its last value); quartiles are "not resolved" with fewer
    than ``min_units`` relaxations (the independent units)."""
    steps, med, q1, q3 = quantile_band(curves)
    resolved = len(curves) >= min_units
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
