"""What one probe or relaxation result says, from its arrays: the epsilon table of a probe,
the error curve of a relaxation, and cos(theta) at the start vs the first step's error rise.

Duck-typed: a result is anything with ``.data`` (arrays by name) and ``.params`` (the
/parameters attributes), e.g. ``lammps_adv.io.results.Result``."""
from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from lammps_adv.core.statistics import bootstrap_ci, correlations, pearson, spearman


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


def relax_first_step(results: list[ResultLike]) -> dict:
    """cos(theta) at the start vs increase of |error| (meV/atom) over the first step."""
    cos0, rise, first, last = [], [], [], []
    for r in results:
        steps, err = relax_curves(r)
        if len(err) < 2:
            continue
        cos0.append(float(r.data["cos_adversarial"][0]))
        rise.append(float(err[1] - err[0]))
        first.append(float(err[0]))
        last.append(float(err[-1]))
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
