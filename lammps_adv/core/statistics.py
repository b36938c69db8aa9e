"""Statistics of the report and of the experiments' measures: bootstrap intervals (fixed
seed, so rerunning reproduces every interval exactly), correlations, quantile bands.
Pure numpy/scipy."""
from __future__ import annotations

import math

import numpy as np


BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0       # fixed: rerunning the analysis reproduces every interval exactly


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
        vals = np.array([statistic(*(s[i] for s in samples)) for i in idx], dtype=float)
    vals = vals[np.isfinite(vals)]
    if len(vals) < n_boot // 2:
        return math.nan, math.nan
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


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


def difference_ci(a, b, n_boot: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED):
    """95 % bootstrap interval of mean(a) - mean(b), a and b resampled independently."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    d = (a[rng.integers(0, len(a), (n_boot, len(a)))].mean(axis=1)
         - b[rng.integers(0, len(b), (n_boot, len(b)))].mean(axis=1))
    lo, hi = np.percentile(d, [2.5, 97.5])
    return float(lo), float(hi)
