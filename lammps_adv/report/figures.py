"""The report's figures (PNG, matplotlib with the Agg backend, imported on first use)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lammps_adv.core.statistics import quantile_band


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend (imported on first use)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


STUDY = "Cubuk & Schoenholz, \"Adversarial directions of physical models\""


def finish(fig, path: Path, title: str = "", note: str = "", dpi: int = 120) -> Path:
    """Title (which models), a small caption under the axes (what bars and bands are,
    where reference values come from), layout, PNG; closes the figure."""
    import textwrap
    plt = pyplot()
    bottom = 0.0
    if note:
        width = int(fig.get_figwidth() * 17)            # characters per line at 6.5 pt
        lines = textwrap.wrap(note, width)
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=6.5, va="bottom", color="0.25")
        bottom = min(0.4, (0.02 + 0.11 * len(lines)) / fig.get_figheight())
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_epsilon(rows: list[dict], path: Path, unit: str = "meV/atom",
                 xlabel: str = r"total distortion $\epsilon$ ($\AA^2$)", title: str = "",
                 note: str = "", min_units: int = 5, study: dict | None = None) -> Path:
    """Mean |E_acc - E_app| vs epsilon, adversarial and random, with 95 % intervals where
    at least ``min_units`` independent units carry them; ``study``: {epsilon: (random,
    adversarial)} drawn as open grey markers."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.9 if note else 3.6))
    eps = [r["epsilon_A2"] for r in rows]
    for key, label, color in (("adversarial", "adversarial direction", "C3"),
                              ("random", "random direction", "C0")):
        mean = np.array([r[f"{key}_mean"] for r in rows])
        err = np.array([[m - r[f"{key}_lo"], r[f"{key}_hi"] - m] if r[f"{key}_units"] >= min_units
                        else [0.0, 0.0] for m, r in zip(mean, rows)]).T
        ax.errorbar(eps, mean, yerr=np.nan_to_num(err), marker="o", capsize=3, label=label,
                    color=color)
    if study:
        x = sorted(study)
        for j, (marker, label) in enumerate((("s", "study, random"), ("^", "study, adversarial"))):
            ax.plot(x, [study[e][j] for e in x], linestyle="none", marker=marker,
                    markerfacecolor="none", color="0.5", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"|E_acc - E_app| ({unit})")
    ax.legend(fontsize=7)
    return finish(fig, path, title, note)


def plot_scatter_groups(groups: dict[str, tuple[np.ndarray, np.ndarray]], path: Path,
                        xlabel: str, ylabel: str, title: str = "", note: str = "") -> Path:
    """One scatter, one colour per group {label: (x, y)} (e.g. start temperatures), so
    that clusters are seen as such and not read as one trend."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.9 if note else 3.6))
    for i, (label, (x, y)) in enumerate(groups.items()):
        ax.scatter(x, y, s=14, alpha=0.75, color=f"C{i}", label=f"{label} (n={len(x)})")
    ax.axhline(0, color="k", linewidth=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(groups):
        ax.legend(fontsize=7)
    return finish(fig, path, title, note)


def plot_band(curves: dict[str, list[np.ndarray]], path: Path, xlabel: str, ylabel: str,
              integer_x: bool = False, title: str = "", note: str = "") -> Path:
    """Median and quartile band of curves over their index; integer_x: whole-number ticks
    only (minimizer steps)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.9 if note else 3.6))
    for i, (label, cs) in enumerate(curves.items()):
        x, med, q1, q3 = quantile_band(cs)
        ax.plot(x, med, color=f"C{i}", label=f"{label}: median (n={len(cs)})")
        ax.fill_between(x, q1, q3, color=f"C{i}", alpha=0.25, label="quartiles")
    if integer_x:
        from matplotlib.ticker import MaxNLocator
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return finish(fig, path, title, note)


def plot_timeseries(x, panels: dict[str, np.ndarray], path: Path, xlabel: str,
                    boundaries=(), guides: dict[str, tuple[float, str]] | None = None) -> Path:
    """One panel per series (y label -> values) over a shared x; dashed lines at the
    boundaries [(x, label)] (stages of a run); dotted lines at +-level in the panels of
    guides {y label: (level, legend text)}."""
    plt = pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(6.5, 2.2 * len(panels)), sharex=True,
                             squeeze=False)
    for ax, (label, y) in zip(axes[:, 0], panels.items()):
        ax.plot(x, y, marker=".", markersize=3, linewidth=0.9)
        for bx, _ in boundaries:
            ax.axvline(bx, color="k", linestyle="--", linewidth=0.6)
        if guides and label in guides:
            level, text = guides[label]
            ax.axhline(level, color="C3", linestyle=":", linewidth=0.9, label=text)
            ax.axhline(-level, color="C3", linestyle=":", linewidth=0.9)
            ax.legend(fontsize=7, loc="best")
        ax.set_ylabel(label, fontsize=8)
    for bx, text in boundaries:
        axes[0, 0].annotate(text, (bx, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                            xytext=(2, -9), textcoords="offset points")
    axes[-1, 0].set_xlabel(xlabel)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_cos_grid(panels: dict[str, tuple[dict[str, np.ndarray], float]], path: Path,
                  columns: int = 3, title: str = "", note: str = "") -> Path:
    """A compact grid (at most ``columns`` wide) of cos(theta) histograms, one panel per
    {title: ({series label: cos values}, random value sqrt(2 / (pi 3N)))}: the series (e.g.
    MD temperatures) overlaid as step histograms, dotted lines at +- the random value, the
    mean |cos| of a direction that knows nothing of F_app."""
    plt = pyplot()
    cols = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.4 * rows), squeeze=False)
    bins = np.linspace(-1, 1, 41)
    for ax, (name, (series, rnd)) in zip(axes.ravel(), panels.items()):
        ax.set_xlim(-1, 1)
        ax.set_xticks([-1, -0.5, 0, 0.5, 1])
        for k, (label, cos) in enumerate(series.items()):
            ax.hist(cos, bins=bins, density=True, histtype="step", linewidth=1.3,
                    color=f"C{k}", label=label)
        if np.isfinite(rnd):
            for x in (-rnd, rnd):
                ax.axvline(x, color="0.4", linestyle=":", linewidth=1.0)
        ax.axvline(0, color="k", linewidth=0.5)
        ax.set_title(name, fontsize=7)
        ax.tick_params(labelsize=7)
        if len(series) > 1 or next(iter(series), ""):
            ax.legend(fontsize=6, frameon=False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    for k in range(cols):            # the lowest panel of each column names the axis
        axes[(len(panels) - 1 - k) // cols, k].set_xlabel(r"cos$\theta$ (A, F_app)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("density", fontsize=8)
    return finish(fig, path, title, note, dpi=110)
