"""Aggregate many HDF5 result files into tables (CSV + Markdown) and figures (PNG).

Files are read only through the readers of ``lammps_adv.h5md`` (which owns the format).
Files that are not ours (no `/h5md` group with creator "lammps-adv") or that are
truncated/corrupt are skipped with one warning naming the file; the rest is aggregated.
Every number is computed from the files, so rerunning gives identical tables.
"""
from __future__ import annotations

import csv
import json
import math
import os
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


def with_ci(value: float, ci: tuple[float, float], fmt: str = "{:.3g}") -> str:
    """'12.3 [10.1, 14.2]' (a value and its 95 % interval) for tables."""
    if not math.isfinite(value):
        return "n/a"
    if not all(math.isfinite(c) for c in ci):
        return fmt.format(value)
    return f"{fmt.format(value)} [{fmt.format(ci[0])}, {fmt.format(ci[1])}]"


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


def cos_stats(cos) -> dict:
    """n, mean, median and fraction > 0 of cos(theta), each with its 95 % bootstrap interval."""
    c = np.asarray(cos, float)
    if not len(c):
        return {"n": 0, "mean": "n/a", "median": "n/a", "fraction_positive": "n/a"}

    def positive(x):
        return float((x > 0).mean())
    return {"n": int(len(c)),
            "mean": with_ci(float(c.mean()), bootstrap_ci(np.mean, c)),
            "median": with_ci(float(np.median(c)), bootstrap_ci(np.median, c)),
            "fraction_positive": with_ci(positive(c), bootstrap_ci(positive, c))}


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


def plot_epsilon(rows: list[dict], path: Path, unit: str = "meV/atom",
                 xlabel: str = r"total distortion $\epsilon$ ($\AA^2$)") -> Path:
    """Mean |E_acc - E_app| vs epsilon, adversarial and random, with 95 % intervals."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    eps = [r["epsilon_A2"] for r in rows]
    for key, label, color in (("adversarial", "adversarial direction", "C3"),
                              ("random", "random direction", "C0")):
        mean = np.array([r[f"{key}_mean"] for r in rows])
        err = np.array([[m - r[f"{key}_lo"], r[f"{key}_hi"] - m] for m, r in zip(mean, rows)]).T
        ax.errorbar(eps, mean, yerr=np.nan_to_num(err), marker="o", capsize=3, label=label,
                    color=color)
    ax.set_xlabel(xlabel)
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
    """Read every file and sort it by experiment: 'probe', 'relax', 'run' (a recording) or
    'mitigate' (a summary of remedies)."""
    paths = sorted(set(Path(p) for p in paths))
    kinds = {p: _experiment(p) for p in paths}
    probes = read_files([p for p in paths if kinds[p] == "probe"], probe_arrays)
    mitigations = read_files([p for p in paths if kinds[p] == "mitigate"], h5md.read_mitigation)
    recs = read_files([p for p in paths if kinds[p] not in ("probe", "mitigate")], _recording)
    out = {"probe": probes, "relax": [], "run": [], "mitigate": mitigations}
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
        return f"{kind}:{Path(path).name}" if kind in ("torchscript", "labels") else spec
    return f"{short(params.get('approx', '?'))} vs {short(params.get('reference', '?'))}"


# the study's epsilon table (same units in both rows, presumably meV/atom), eps 0 .. 0.5 A^2
STUDY_EPSILON = {0.0: (5.1, 5.1), 0.1: (5.3, 15.4), 0.3: (5.9, 31.9), 0.5: (6.8, 42.0)}


def epsilon_rows(probe: Result) -> list[dict]:
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


def epsilon_table(rows: list[dict], study: bool) -> list[dict]:
    """The rows of the report's epsilon table (strings 'mean [95 % interval]')."""
    out = []
    for r in rows:
        row = {"epsilon (A^2)": f"{r['epsilon_A2']:g}",
               "adversarial": with_ci(r["adversarial_mean"], (r["adversarial_lo"], r["adversarial_hi"])),
               "random": with_ci(r["random_mean"], (r["random_lo"], r["random_hi"])),
               "increase adv.": with_ci(r["adversarial_increase"], r["adversarial_increase_ci"])
               if r["epsilon_A2"] else "-",
               "increase random": with_ci(r["random_increase"], r["random_increase_ci"])
               if r["epsilon_A2"] else "-",
               "ratio of increases": with_ci(r["ratio"], r["ratio_ci"]),
               "pushed into the core": f"{r['core_fraction']:.0%}"
               if math.isfinite(r["core_fraction"]) else "n/a"}
        if study:
            rnd, adv = STUDY_EPSILON.get(round(r["epsilon_A2"], 6), (None, None))
            row["study: adversarial / random"] = f"{adv} / {rnd}" if adv is not None else "-"
        out.append(row)
    return out


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


def build_report(paths, out: str | Path) -> Path:
    """Tables, figures and report.md from result files; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = read_results(paths)
    lines = ["# lammps-adv report", "",
             "Every number here is computed by `analysis/report.py` from the HDF5 files listed at "
             "the end; energies in meV/atom unless stated, distortion epsilon in A^2. Intervals "
             f"in brackets are 95 % percentile-bootstrap intervals ({BOOTSTRAP_SAMPLES} "
             f"resamples of the configurations, seed {BOOTSTRAP_SEED}: rerunning reproduces "
             "them exactly). Errors use the aligned approximate energy: see each section's "
             "alignment.", ""]
    # --- 1. epsilon table
    for i, p in enumerate(res["probe"]):
        if len(p.data["epsilon"]) < 2:
            continue        # a cos(theta)-only probe (e.g. on stored labels): section 2 only
        rows = epsilon_rows(p)
        stem = out / f"epsilon_table_{i}"
        total = p.params.get("distortion", "total") == "total"
        write_table(epsilon_table(rows, study=total), stem)
        png = plot_epsilon(rows, stem.with_suffix(".png"), xlabel=(
            r"total distortion $\epsilon$ ($\AA^2$)" if total else
            r"distortion per atom $\epsilon$ ($\AA^2$)"))
        steps = int(p.params.get("ascent_steps", 1))
        lines += [f"## Error along the adversarial vs random directions ({pair_label(p.params)})", "",
                  f"{len(p.data['natoms'])} configurations ({p.path.name}), "
                  f"{p.data['error_random'].shape[1]} random directions each; distortion "
                  f"{'sum_i |dr_i|^2 = epsilon over the cell' if total else 'epsilon per atom'}; "
                  f"{'one step' if steps == 1 else f'{steps} steps of projected gradient ascent'}"
                  f" along A. |E_acc - E_app| in meV/atom. Alignment: "
                  f"{alignment_of(p.params)}.", "",
                  stem.with_suffix(".md").read_text(), ""]
        if total:
            lines += [study_sentence(rows), ""]
        lines += [f"![epsilon]({png.name})", ""]
    # --- 2. cos theta distributions
    groups, aligned = {}, {}
    for kind, what, values in (("probe", None, lambda r: r.data["cos_adversarial"]),
                               ("run", "MD driven by the approximate model",
                                lambda r: r.data["cos_adversarial"]),
                               ("relax", "start of relaxations",
                                lambda r: r.data["cos_adversarial"][:1])):
        for r in res[kind]:
            key = (f"{pair_label(r.params)}, {what or r.params.get('sampling', 'probe configurations')}"
                   f", alignment {r.params.get('alignment', 'none')}")
            groups[key] = np.concatenate([groups.get(key, np.zeros(0)), values(r)])
            aligned.setdefault(key, set()).add(alignment_of(r.params))
    aligned = {k: "; ".join(sorted(v)) for k, v in aligned.items()}
    if groups:
        rows = [{"configurations": k, **cos_stats(v), "alignment": aligned[k]}
                for k, v in groups.items()]
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
        rows = [{"model_pair": label, "relaxations": s["n"],
                 "Pearson r (cos0, first-step rise)": with_ci(s["pearson"], s["pearson_ci"], "{:.2f}"),
                 "Spearman rho": with_ci(s["spearman"], s["spearman_ci"], "{:.2f}"),
                 "median error, first step": f"{s['median_first']:.3g}",
                 "median error, last step": f"{s['median_last']:.3g}",
                 "growth factor (last/first)": with_ci(s["growth_factor"], s["growth_ci"]),
                 "alignment": "; ".join(sorted({alignment_of(r.params) for r in rs}))}]
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
    # --- 4. quantum-mechanical reference
    lines += qm_section(res, out)
    # --- 5. remedies
    if res["mitigate"]:
        from lammps_adv.mitigation_report import section
        for i, m in enumerate(res["mitigate"]):
            lines += section(m, out, i)
    files = [r.path for kind in ("probe", "relax", "run", "mitigate") for r in res[kind]]
    # named from the folder that holds them all, so a report never shows machine paths
    root = Path(os.path.commonpath([p.resolve().parent for p in files])).parent if files else None
    lines += ["## Files", ""] + [f"- `{p.resolve().relative_to(root)}`" for p in files] + [""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report


def is_qm(params: dict) -> bool:
    """A result whose reference is quantum mechanical: live GFN-xTB, or stored labels that
    GFN-xTB or DFT made (as the label file's description says)."""
    ref, desc = str(params.get("reference", "")), str(params.get("reference_description", ""))
    return ref.startswith("xtb:") or (ref.startswith("labels:") and
                                      any(w in desc for w in ("xTB", "xtb:", "DFT")))


def trained_on(spec: str) -> str:
    """'energies' / 'energies and forces' for a TorchScript model with a model card, else
    'analytic' (a catalogue potential) or '?'."""
    kind, _, path = str(spec).partition(":")
    if kind != "torchscript":
        return "analytic" if kind not in ("labels", "xtb", "ase") else "?"
    card = Path(path).parent / f"{Path(path).stem}.card.json"
    try:
        settings = json.loads(card.read_text())["settings"]
        return "energies and forces" if float(settings.get("force_weight", 0)) > 0 else "energies"
    except (OSError, ValueError, KeyError, TypeError):
        return "?"


def qm_section(res: dict, out: Path) -> list[str]:
    """Model pairs judged against GFN-xTB or DFT: cos(theta) with intervals per pair, and
    whether training on forces lowered it (the study: it does, a lot)."""
    probes = [p for p in res["probe"] if is_qm(p.params)]
    if not probes:
        return []
    rows, by_training = [], {}
    for p in probes:
        cos = np.asarray(p.data["cos_adversarial"], float)
        kind = trained_on(p.params.get("approx"))
        rows.append({"model pair": pair_label(p.params), "approximate model": kind,
                     **cos_stats(cos), "reference": p.params.get("reference_description", "")})
        if kind in ("energies", "energies and forces"):
            by_training.setdefault(kind, []).append(cos)
    write_table(rows, out / "qm_cos_stats")
    lines = ["## Judged against a quantum-mechanical reference", "",
             "Analytic force fields and networks trained on GFN-xTB (or DFT) labels, each against "
             "that reference; cos(theta) per configuration with 95 % bootstrap intervals. The "
             "reference's settings (method, accuracy, electronic temperature, k-points) are in "
             "the last column, as the result files record them.", "",
             (out / "qm_cos_stats.md").read_text(), ""]
    if len(by_training) == 2:
        e_only = np.concatenate(by_training["energies"])
        forces = np.concatenate(by_training["energies and forces"])
        diff = float(forces.mean() - e_only.mean())
        lo, hi = _difference_ci(forces, e_only)
        verdict = ("yes: training on forces lowered the mean cos(theta), as the study found"
                   if hi < 0 else
                   "no: the mean cos(theta) is higher with force training, unlike the study"
                   if lo > 0 else
                   "not resolved: the interval of the difference includes 0 (more "
                   "configurations are needed)")
        lines += [f"Does force training lower the correlation? Mean cos(theta) of the networks "
                  f"trained on energies only: {e_only.mean():.3g} ({len(e_only)} configurations); "
                  f"on energies and forces: {forces.mean():.3g} ({len(forces)}); difference "
                  f"{with_ci(diff, (lo, hi))}: {verdict}.", ""]
    return lines


def _difference_ci(a, b, n_boot: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED):
    """95 % bootstrap interval of mean(a) - mean(b), a and b resampled independently."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    d = (a[rng.integers(0, len(a), (n_boot, len(a)))].mean(axis=1)
         - b[rng.integers(0, len(b), (n_boot, len(b)))].mean(axis=1))
    lo, hi = np.percentile(d, [2.5, 97.5])
    return float(lo), float(hi)


def alignment_of(params: dict) -> str:
    """How a file's approximate energies were aligned, in words."""
    from lammps_adv.alignment import from_attrs
    if "alignment" not in params:
        return "none (raw energies; file written before alignment existed)"
    return from_attrs(params).describe()


def study_sentence(rows: list[dict]) -> str:
    """One sentence comparing an epsilon table with the study's (mission: eps 0.1-0.5)."""
    ours = {round(r["epsilon_A2"], 6): r for r in rows}
    common = [e for e in (0.1, 0.3, 0.5) if e in ours]
    if not common:
        return "The study's epsilon values (0.1, 0.3, 0.5 A^2) are not among these."
    e = common[-1]
    r = ours[e]
    if not math.isfinite(r["ratio"]):
        lo = r["adversarial_increase_ci"][0]
        return (f"At epsilon = {e:g} A^2 the random directions did not raise the error "
                f"measurably (increase {with_ci(r['random_increase'], r['random_increase_ci'])}"
                f" meV/atom), so no ratio is given; the step along A raised it by "
                f"{with_ci(r['adversarial_increase'], r['adversarial_increase_ci'])} meV/atom "
                f"(study: {STUDY_EPSILON[e][1] - STUDY_EPSILON[0.0][1]:.1f} along A vs "
                f"{STUDY_EPSILON[e][0] - STUDY_EPSILON[0.0][0]:.1f} at random). "
                + ("As in the study, the adversarial direction is the worse one."
                   if lo > 0 else "Unlike the study, the step along A did not raise it either."))
    study_ratio = (STUDY_EPSILON[e][1] - STUDY_EPSILON[0.0][1]) / (STUDY_EPSILON[e][0] - STUDY_EPSILON[0.0][0])
    lo, hi = ours[e]["ratio_ci"]
    verdict = ("agrees with" if lo <= study_ratio <= hi else
               "is larger than" if lo > study_ratio else "is smaller than")
    return (f"At epsilon = {e:g} A^2 the study's adversarial step raised the error "
            f"{study_ratio:.0f}x more than a random one ({STUDY_EPSILON[0.0][1]} -> "
            f"{STUDY_EPSILON[e][1]} vs {STUDY_EPSILON[0.0][0]} -> {STUDY_EPSILON[e][0]}); ours "
            f"{with_ci(ours[e]['ratio'], ours[e]['ratio_ci'])} {verdict} it. "
            + ("As in the study, the adversarial direction is the worse one (interval above 1). "
               if lo > 1 else "Unlike the study, the interval does not exclude 1. ")
            + "Absolute errors differ: other models, and the study's 3000-atom cell took "
            "epsilon as a much smaller distortion per atom.")


def find_h5(items) -> list[Path]:
    """HDF5 files named, or found (recursively) in the folders named. Of a folder holding a
    mitigation summary (``mitigate.h5``) only the summary counts: the rest are the run's
    training sets, models' probes and relaxations."""
    out = []
    for item in map(Path, items):
        if item.is_dir():
            runs = [p.parent for p in item.rglob("mitigate.h5")]
            out += sorted(p for p in item.rglob("*") if p.suffix in (".h5", ".hdf5")
                          and not any(r in p.parents for r in runs))
            out += sorted(r / "mitigate.h5" for r in runs)
        elif item.exists():
            out.append(item)
        else:
            raise FileNotFoundError(f"no such file or folder: {item}")
    return out
