"""Aggregate many HDF5 result files into tables (CSV + Markdown) and figures (PNG).

Files are read only through the readers of ``lammps_adv.h5md`` (which owns the format).
Files that are not ours (no `/h5md` group with creator "lammps-adv") or that are
truncated/corrupt are skipped with one warning naming the file; the rest is aggregated.
Every number is computed from the files, so rerunning gives identical tables.
"""
from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lammps_adv import h5md
from lammps_adv.errors import LammpsAdvError

CREATOR = h5md.CREATOR


class SkippedFile(UserWarning):
    pass


_formatwarning = warnings.formatwarning


def _format_skipped(message, category, filename, lineno, line=None):
    """A skipped file is one line on stderr (no source line of this module)."""
    if isinstance(category, type) and issubclass(category, SkippedFile):
        return f"lammps-adv: warning: {message}\n"
    return _formatwarning(message, category, filename, lineno, line)


warnings.formatwarning = _format_skipped


# ------------------------------------------------------------------ reading
@dataclass
class Result:
    """One HDF5 file: its /parameters attributes and its arrays (by name)."""
    path: Path
    params: dict
    data: dict = field(default_factory=dict)


def read_files(paths, reader) -> list[Result]:
    """Apply ``reader(path) -> dict of arrays`` to each file; skip bad ones with a warning."""
    results = []
    for path in sorted(Path(p) for p in paths):
        try:
            params = h5md.read_parameters(path, texts=False)
            data = reader(path)
        except (LammpsAdvError, ValueError, KeyError, OSError) as exc:
            msg = " ".join(str(exc).split()).removeprefix(f"{path}: ")
            warnings.warn(f"skipping {path}: {msg}", SkippedFile, stacklevel=2)
            continue
        results.append(Result(path, params, data))
    return results


def observables(path) -> dict:
    """All /observables/<name>/value arrays of a recorded run, plus 'step' and 'time'."""
    return h5md.read_observables(path)


def probe_arrays(path) -> dict:
    """Arrays of a probe file (see lammps_adv.h5md.write_probe)."""
    return h5md.read_probe(path)


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
    """One panel per model pair ('<pair>, <sampling>' keys), one curve per sampling."""
    plt = _plt()
    pairs = list(dict.fromkeys(k.split(", ", 1)[0] for k in groups))
    fig, axes = plt.subplots(len(pairs), 1, figsize=(6, 2.6 * len(pairs)), sharex=True,
                             squeeze=False)
    bins = np.linspace(-1, 1, 41)
    styles = ["-", "--", ":", "-."]
    for ax, pair in zip(axes[:, 0], pairs):
        for i, (label, cos) in enumerate((k, v) for k, v in groups.items()
                                         if k.split(", ", 1)[0] == pair):
            sampling = label.split(", ", 1)[1] if ", " in label else label
            ax.hist(cos, bins=bins, density=True, histtype="step", linewidth=1.6,
                    linestyle=styles[i % len(styles)], color=f"C{i}",
                    label=f"{sampling} (n={len(cos)})")
        ax.axvline(0, color="k", linewidth=0.6)
        ax.set_title(pair, fontsize=9)
        ax.set_ylabel("density")
        ax.legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel(r"cos$\theta$ between adversarial direction A and F_app")
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


# ------------------------------------------------------------------ the study's aggregates
def read_results(paths) -> dict[str, list[Result]]:
    """Read every file and sort it by experiment: 'probe', 'relax' or 'run' (a recording)."""
    paths = sorted(set(Path(p) for p in paths))
    probes = read_files([p for p in paths if _experiment(p) == "probe"], probe_arrays)
    recs = read_files([p for p in paths if _experiment(p) != "probe"], _recording)
    out = {"probe": probes, "relax": [], "run": []}
    for r in recs:
        out["relax" if r.params.get("experiment") == "relax" else "run"].append(r)
    return out


def _experiment(path: Path) -> str | None:
    """The /parameters 'experiment' attribute, or None (read errors are reported later)."""
    try:
        return h5md.read_parameters(path, texts=False).get("experiment")
    except (LammpsAdvError, OSError, ValueError, KeyError):
        return None


def _recording(path) -> dict:
    data = observables(path)
    data["stage_kind"] = np.array(h5md.read_stages(path)["kind"], dtype=str)
    return data


def pair_label(params: dict) -> str:
    """'approx vs reference', with model files shortened to their names."""
    def short(spec):
        spec = str(spec)
        kind, _, path = spec.partition(":")
        return f"{kind}:{Path(path).name}" if kind == "torchscript" else spec
    return f"{short(params.get('approx', '?'))} vs {short(params.get('reference', '?'))}"


def epsilon_rows(probe: Result) -> list[dict]:
    """The epsilon table of one probe file: |E_acc - E_app| in meV/atom, adversarial vs
    random, mean +- standard error over configurations (and random draws)."""
    d = probe.data
    per_atom = 1000.0 / d["natoms"].astype(float)                      # eV -> meV/atom
    adv = np.abs(d["error_adversarial"]) * per_atom[:, None]            # [C, E]
    rnd = np.abs(d["error_random"]) * per_atom[:, None, None]           # [C, R, E]
    rows = []
    for k, eps in enumerate(d["epsilon"]):
        am, asem = mean_sem(adv[:, k])
        rm, rsem = mean_sem(rnd[:, :, k])
        rows.append({"epsilon_A2": float(eps), "adversarial_mean": am, "adversarial_sem": asem,
                     "random_mean": rm, "random_sem": rsem,
                     "adversarial_increase": float((adv[:, k] - adv[:, 0]).mean()),
                     "random_increase": float((rnd[:, :, k] - rnd[:, :, :1][..., 0]).mean())})
    return rows


def relax_curves(result: Result) -> tuple[np.ndarray, np.ndarray]:
    """(steps, |E_acc - E_app| in meV/atom) of a relaxation: the last evaluation of each
    minimizer step, i.e. the configuration the step ended on."""
    d = result.data
    step = d["step"]
    last = np.r_[np.nonzero(np.diff(step))[0], len(step) - 1]
    n = float(result.params.get("n_atoms", 1))
    return step[last], np.abs(d["energy_error"][last]) * 1000.0 / n


def relax_first_step(results: list[Result]) -> dict:
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
    pearson, spearman = correlations(cos0, rise)
    med_first, med_last = (float(np.median(first)) if first else math.nan,
                           float(np.median(last)) if last else math.nan)
    return {"cos0": np.array(cos0), "rise": np.array(rise), "pearson": pearson,
            "spearman": spearman, "median_first": med_first, "median_last": med_last,
            "growth_factor": med_last / med_first if med_first else math.nan, "n": len(cos0)}


def build_report(paths, out: str | Path) -> Path:
    """Tables, figures and report.md from result files; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = read_results(paths)
    lines = ["# lammps-adv report", "",
             "Every number here is computed by `analysis/report.py` from the HDF5 files listed at "
             "the end; energies in meV/atom unless stated, distortion epsilon in A^2.", ""]
    # --- 1. epsilon table
    for i, p in enumerate(res["probe"]):
        rows = epsilon_rows(p)
        stem = out / f"epsilon_table_{i}"
        write_table(rows, stem)
        png = plot_epsilon(rows, stem.with_suffix(".png"))
        adv, rnd = rows[-1]["adversarial_increase"], rows[-1]["random_increase"]
        lines += [f"## Error along the adversarial vs random directions ({pair_label(p.params)})", "",
                  f"{len(p.data['natoms'])} configurations ({p.path.name}), "
                  f"{p.data['error_random'].shape[1]} random directions each; |E_acc - E_app| "
                  "in meV/atom, mean and standard error.", "",
                  stem.with_suffix(".md").read_text(), "",
                  f"Increase from epsilon = 0 to {rows[-1]['epsilon_A2']:g} A^2: adversarial "
                  f"{adv:+.3f}, random {rnd:+.3f} meV/atom (ratio {_ratio(adv, rnd)}).", "",
                  f"![epsilon]({png.name})", ""]
    # --- 2. cos theta distributions
    groups = {}
    for p in res["probe"]:
        key = f"{pair_label(p.params)}, {p.params.get('sampling', 'probe configurations')}"
        groups[key] = np.concatenate([groups.get(key, np.zeros(0)), p.data["cos_adversarial"]])
    for r in res["run"]:
        key = f"{pair_label(r.params)}, MD driven by the approximate model"
        groups[key] = np.concatenate([groups.get(key, np.zeros(0)), r.data["cos_adversarial"]])
    for r in res["relax"]:
        key = f"{pair_label(r.params)}, start of relaxations"
        groups[key] = np.concatenate([groups.get(key, np.zeros(0)), r.data["cos_adversarial"][:1]])
    if groups:
        rows = [{"configurations": k, **cos_stats(v)} for k, v in groups.items()]
        write_table(rows, out / "cos_stats")
        png = plot_cos_histograms(groups, out / "cos_hist.png")
        lines += ["## Alignment of the model forces with the adversarial direction", "",
                  "cos(theta) = A . F_app / (|A| |F_app|) per configuration.", "",
                  (out / "cos_stats.md").read_text(), "", f"![cos theta]({png.name})", ""]
    # --- 3. relaxations
    by_pair = {}
    for r in res["relax"]:
        by_pair.setdefault(pair_label(r.params), []).append(r)
    for i, (label, rs) in enumerate(by_pair.items()):
        s = relax_first_step(rs)
        rows = [{"model_pair": label, "relaxations": s["n"], "pearson": s["pearson"],
                 "spearman": s["spearman"], "median_error_first_step": s["median_first"],
                 "median_error_last_step": s["median_last"], "growth_factor": s["growth_factor"]}]
        stem = out / f"relax_summary_{i}"
        write_table(rows, stem)
        sc = plot_scatter(s["cos0"], s["rise"], out / f"relax_first_step_{i}.png",
                          r"cos$\theta$ at the start", "error increase over the first step (meV/atom)",
                          f"{label}: Pearson {s['pearson']:.2f}, Spearman {s['spearman']:.2f}")
        band = plot_band({label: [relax_curves(r)[1] for r in rs]}, out / f"relax_error_vs_step_{i}.png",
                         "minimizer step", "|E_acc - E_app| (meV/atom)")
        lines += [f"## Relaxations driven by the approximate model ({label})", "",
                  stem.with_suffix(".md").read_text(), "",
                  f"![first step]({sc.name}) ![error vs step]({band.name})", ""]
    files = [r.path for kind in ("probe", "relax", "run") for r in res[kind]]
    lines += ["## Files", ""] + [f"- `{p}`" for p in files] + [""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b and math.isfinite(a / b) else "n/a"


def find_h5(items) -> list[Path]:
    """HDF5 files named, or found (recursively) in the folders named."""
    out = []
    for item in map(Path, items):
        if item.is_dir():
            out += sorted(p for p in item.rglob("*") if p.suffix in (".h5", ".hdf5"))
        elif item.exists():
            out.append(item)
        else:
            raise FileNotFoundError(f"no such file or folder: {item}")
    return out
