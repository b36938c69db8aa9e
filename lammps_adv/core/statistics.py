"""Statistics of the report and of the experiments' measures: bootstrap intervals (fixed
seed, so rerunning reproduces every interval exactly), cluster bootstrap over independent
units (glasses, trajectories, seeds), correlations, quantile bands. Pure numpy/scipy."""
from __future__ import annotations

import math

import numpy as np


BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0       # fixed: rerunning the analysis reproduces every interval exactly
MIN_UNITS = 5            # fewer independent units than this: an interval is "not resolved"


def bootstrap_ci(statistic, *samples, n_boot: int = BOOTSTRAP_SAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of ``statistic(*samples)``: the samples' first
    axes are resampled together (pairs stay pairs), ``n_boot`` times with a fixed seed.
    NaN when fewer than 2 items or when the statistic is undefined in most resamples."""
    samples = [np.asarray(s, dtype=float) for s in samples]
    n = len(samples[0])
    if n < 2:
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    with np.errstate(all="ignore"):
        return _percentile_interval([statistic(*(s[i] for s in samples)) for i in idx], n_boot)


def _percentile_interval(values, n_boot: int) -> tuple[float, float]:
    """2.5 and 97.5 percentiles of the resampled statistics; NaN when it was undefined
    (not finite) in most of the ``n_boot`` resamples."""
    vals = np.asarray(values, dtype=float)
    vals = vals[np.isfinite(vals)]
    if len(vals) < n_boot // 2:
        return math.nan, math.nan
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def unit_count(units) -> int:
    """How many distinct independent units (labels) there are."""
    return len(set(np.asarray(units).tolist()))


def cluster_bootstrap_ci(statistic, *samples, units=None, n_boot: int = BOOTSTRAP_SAMPLES,
                         seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """95 % cluster-bootstrap interval of ``statistic(*samples)``.

    ``units`` labels the independent unit of every item (first axis of the samples): a glass,
    a trajectory, a seed. Each resample draws units with replacement and takes all their
    items, so items of one unit (frames of one trajectory) move together and correlation
    inside a unit widens the interval as it should. ``units=None``: every item is its own
    unit (the plain bootstrap). NaN with fewer than 2 units or when the statistic is
    undefined in most resamples. Whether the interval is resolved (``MIN_UNITS``) is the
    caller's decision; ``unit_count`` gives the number of units."""
    samples = [np.asarray(s, dtype=float) for s in samples]
    if units is None:
        return bootstrap_ci(statistic, *samples, n_boot=n_boot, seed=seed)
    labels, inverse = np.unique(np.asarray(units).astype(str), return_inverse=True)
    if len(inverse) != len(samples[0]):
        raise ValueError(f"{len(inverse)} unit labels for {len(samples[0])} items")
    if len(labels) < 2:
        return math.nan, math.nan
    members = [np.flatnonzero(inverse == k) for k in range(len(labels))]
    draws = np.random.default_rng(seed).integers(0, len(labels), size=(n_boot, len(labels)))
    with np.errstate(all="ignore"):
        return _percentile_interval(
            [statistic(*(s[np.concatenate([members[k] for k in d])] for s in samples))
             for d in draws], n_boot)


def pearson(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x, y) -> float:
    from scipy.stats import rankdata
    return pearson(rankdata(x), rankdata(y))


def correlations(x, y) -> tuple[float, float]:
    """Pearson and Spearman correlation coefficients (NaN with < 3 points or no spread)."""
    return pearson(x, y), spearman(x, y)


def quantile_band(curves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Median and quartiles over curves of different lengths, step by step.

    A curve that ended (converged relaxation) keeps its last value."""
    n = max(len(c) for c in curves)
    padded = np.array([np.concatenate([c, np.full(n - len(c), c[-1])]) for c in curves])
    q1, med, q3 = np.percentile(padded, [25, 50, 75], axis=0)
    return np.arange(n), med, q1, q3
