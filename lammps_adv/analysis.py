"""Aggregate many HDF5 result files into tables (CSV + Markdown) and figures (PNG).

Readers skip files that are not ours (no `/h5md` group with creator "lammps-adv") or that
are truncated/corrupt, with one warning naming the file; the rest is aggregated. Every
number is computed from the files, so rerunning gives identical tables.
"""
from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CREATOR = "lammps-adv"


class SkippedFile(UserWarning):
    pass


# ------------------------------------------------------------------ reading
@dataclass
class Result:
    """One HDF5 file: its /parameters attributes and its arrays (by name)."""
    path: Path
    params: dict
    data: dict = field(default_factory=dict)


def _open_ours(path: Path):
    import h5py
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise ValueError(f"not a readable HDF5 file ({' '.join(str(exc).split())[:120]})")
    creator = f.get("h5md/creator")
    name = creator.attrs.get("name") if creator is not None else None
    if isinstance(name, bytes):
        name = name.decode()
    if name != CREATOR:
        f.close()
        raise ValueError("not a lammps-adv file (no /h5md/creator named lammps-adv)")
    return f


def _attrs(group) -> dict:
    out = {}
    for k, v in group.attrs.items():
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, np.ndarray) and v.dtype.kind in "SO":
            v = [x.decode() if isinstance(x, bytes) else x for x in v.tolist()]
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def read_files(paths, reader) -> list[Result]:
    """Apply ``reader(h5file) -> dict of arrays`` to each file; skip bad ones with a warning."""
    results = []
    for path in sorted(Path(p) for p in paths):
        try:
            with _open_ours(path) as f:
                params = _attrs(f["parameters"]) if "parameters" in f else {}
                data = reader(f)
        except (ValueError, KeyError, OSError) as exc:
            warnings.warn(f"skipping {path}: {' '.join(str(exc).split())}", SkippedFile, stacklevel=2)
            continue
        results.append(Result(path, params, data))
    return results


def observables(f) -> dict:
    """All /observables/<name>/value arrays of a recorded run, plus 'step'."""
    obs = f["observables"]
    data = {name: obs[name]["value"][()] for name in obs}
    first = next(iter(obs))
    data["step"] = obs[first]["step"][()]
    n = {len(v) for v in data.values()}
    if len(n) != 1:
        raise ValueError(f"observables have different lengths {sorted(n)}")
    return data


def probe_arrays(f) -> dict:
    """Arrays of a probe file (see lammps_adv.experiments.probe)."""
    g = f["probe"]
    return {k: g[k][()] for k in g}


# ------------------------------------------------------------------ statistics
def mean_sem(values) -> tuple[float, float]:
    """Mean and standard error of the mean of a flat sample."""
    x = np.asarray(values, dtype=float).ravel()
    if len(x) == 0:
        return math.nan, math.nan
    sem = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0
    return float(x.mean()), sem


def correlations(x, y) -> tuple[float, float]:
    """Pearson and Spearman correlation coefficients."""
    from scipy.stats import pearsonr, spearmanr
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    return float(pearsonr(x, y)[0]), float(spearmanr(x, y)[0])


def cos_stats(cos) -> dict:
    c = np.asarray(cos, float)
    return {"n": int(len(c)), "mean": float(c.mean()) if len(c) else math.nan,
            "median": float(np.median(c)) if len(c) else math.nan,
            "fraction_positive": float((c > 0).mean()) if len(c) else math.nan}


def quantile_band(curves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Median and quartiles over curves of different lengths, step by step.

    A curve that ended (converged relaxation) keeps its last value."""
    n = max(len(c) for c in curves)
    padded = np.array([np.concatenate([c, np.full(n - len(c), c[-1])]) for c in curves])
    q1, med, q3 = np.percentile(padded, [25, 50, 75], axis=0)
    return np.arange(n), med, q1, q3


# ------------------------------------------------------------------ tables
def write_table(rows: list[dict], stem: Path, floatfmt: str = "{:.6g}") -> tuple[Path, Path]:
    """Write rows (dicts with the same keys) as stem.csv and stem.md."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    keys = list(rows[0]) if rows else []

    def fmt(v):
        return floatfmt.format(v) if isinstance(v, float) else str(v)

    with open(stem.with_suffix(".csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(keys)
        for r in rows:
            w.writerow([fmt(r[k]) for k in keys])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return stem.with_suffix(".csv"), stem.with_suffix(".md")


# ------------------------------------------------------------------ figures
def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_epsilon(rows: list[dict], path: Path, unit: str = "meV/atom") -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    eps = [r["epsilon_A2"] for r in rows]
    for key, label, color in (("adversarial", "adversarial direction", "C3"),
                              ("random", "random direction", "C0")):
        ax.errorbar(eps, [r[f"{key}_mean"] for r in rows], yerr=[r[f"{key}_sem"] for r in rows],
                    marker="o", capsize=3, label=label, color=color)
    ax.set_xlabel(r"total distortion $\epsilon$ ($\AA^2$)")
    ax.set_ylabel(f"|E_acc - E_app| ({unit})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_cos_histograms(groups: dict[str, np.ndarray], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    bins = np.linspace(-1, 1, 41)
    for label, cos in groups.items():
        ax.hist(cos, bins=bins, density=True, histtype="step", linewidth=1.6,
                label=f"{label} (n={len(cos)})")
    ax.axvline(0, color="k", linewidth=0.6)
    ax.set_xlabel(r"cos$\theta$ between adversarial direction A and F_app")
    ax.set_ylabel("probability density")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_scatter(x, y, path: Path, xlabel: str, ylabel: str, title: str = "") -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.scatter(x, y, s=12, alpha=0.7)
    ax.axhline(0, color="k", linewidth=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_band(curves: dict[str, list[np.ndarray]], path: Path, xlabel: str, ylabel: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for i, (label, cs) in enumerate(curves.items()):
        x, med, q1, q3 = quantile_band(cs)
        ax.plot(x, med, color=f"C{i}", label=f"{label}: median (n={len(cs)})")
        ax.fill_between(x, q1, q3, color=f"C{i}", alpha=0.25, label="quartiles")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
