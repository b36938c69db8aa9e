#!/usr/bin/env python
"""|cos theta| and the sign of E_acc - E_app along MD runs and relaxations driven by the
approximate model (`lammps-adv driven`, docs/driven.md).

    python analysis/model_driven.py out/model_driven/runs -o docs/model_driven/model_driven

Reads the MD recordings (experiment "driven") and the relaxations (experiment "relax",
under relax/) of one `lammps-adv driven` output folder (one model pair), and per MD
temperature and per relaxation start temperature (the MD temperature the relaxation
started from; with several, also all relaxations pooled):
  runs, independent units (glasses) and recorded rows;
  mean |cos theta| along the runs (every recorded row of a run averaged, then the runs
  averaged) and |cos theta| at the end (each run's last row), against the random-direction
  expectation sqrt(2 / (pi 3N)) (lammps_adv.core.adversarial.random_abs_cos);
  the fraction of rows with E_acc - E_app > 0 along the runs (per run, then averaged) and
  the fraction of runs ending with E_acc - E_app > 0;
  relaxations: converged / all, median minimizer steps.
Every interval is a 95 % cluster bootstrap over the independent units (the glasses: a
glass's runs move together), fixed seed; "not resolved" with fewer than 5 units.
Writes PREFIX.csv and PREFIX.md (byte-for-byte the same on a rerun) and PREFIX.png
(|cos theta| vs time of every MD run and vs minimizer step of every relaxation, per
temperature, and the fraction of MD runs with E_acc - E_app > 0 vs time); prints the table.
Energies as recorded (`lammps-adv driven` records raw energies: no alignment).
Metal units: eV, Angstrom, ps, K. A missing, corrupt or foreign file, or a file of another
experiment: one line, exit status 2.
"""
import argparse
import math
from pathlib import Path

import numpy as np

from _script import kind_of, read_result, run_main
from lammps_adv.core.adversarial import random_abs_cos
from lammps_adv.core.statistics import MIN_UNITS, cluster_bootstrap_ci, unit_count
from lammps_adv.core.summaries import relax_step_ends, temperature_group
from lammps_adv.io.results import find_h5
from lammps_adv.report.figures import pyplot
from lammps_adv.report.labels import alignment_of, pair_label
from lammps_adv.report.tables import with_ci_if_resolved, write_table

NOT_RESOLVED = "not resolved"
STATISTICS = (("abs_cos_along", "mean |cos theta| along"), ("abs_cos_end", "|cos theta| at the end"),
              ("positive_along", "E_acc - E_app > 0 along"),
              ("positive_end", "E_acc - E_app > 0 at the end"))


def per_run(result, sampling: str) -> dict:
    """What one recording says: |cos| and E_acc - E_app > 0 per row, their run means and
    end values, its unit, temperature and size."""
    d, p = result.data, result.params
    abs_cos = np.abs(np.asarray(d["cos_adversarial"], float))
    positive = (np.asarray(d["energy_error"], float) > 0).astype(float)
    temperature = float(p.get("temperature_K" if sampling == "MD" else "start_temperature_K",
                              math.nan))
    converged = p.get("converged")
    return {"sampling": sampling, "temperature": temperature,
            "unit": str(p.get("independent_unit") or result.path),
            "n_atoms": int(p.get("n_atoms", 0)), "rows": len(abs_cos),
            "abs_cos_along": float(abs_cos.mean()), "abs_cos_end": float(abs_cos[-1]),
            "positive_along": float(positive.mean()), "positive_end": float(positive[-1]),
            "converged": None if converged is None else bool(converged),
            "minimizer_steps": int(p.get("minimizer_steps", -1)),
            # for the figure
            "time": np.asarray(d["time"], float) - float(d["time"][0]),
            "step": np.asarray(d["step"], int), "abs_cos": abs_cos, "positive": positive,
            "ends": relax_step_ends(result) if sampling == "relaxation" else None}


def group_row(runs: list[dict], sampling: str, label: str) -> dict:
    """One row of the table: the runs of one group, intervals over their glasses."""
    units = np.array([r["unit"] for r in runs], dtype=str)
    k = unit_count(units)
    resolved = k >= MIN_UNITS
    row = {"sampling": sampling, "temperature": label, "runs": len(runs), "units": k,
           "rows": sum(r["rows"] for r in runs)}
    for key, _ in STATISTICS:
        x = np.array([r[key] for r in runs], float)
        lo, hi = cluster_bootstrap_ci(np.mean, x, units=units)
        row[f"{key}_mean"] = float(x.mean())
        row[f"{key}_lo"] = lo if resolved else NOT_RESOLVED
        row[f"{key}_hi"] = hi if resolved else NOT_RESOLVED
        if key == "abs_cos_end":      # the random expectation next to the |cos| columns
            row["random_abs_cos"] = float(np.mean([random_abs_cos(r["n_atoms"]) for r in runs]))
    relaxations = sampling == "relaxation"
    row["converged"] = f"{sum(bool(r['converged']) for r in runs)}/{len(runs)}" \
        if relaxations else ""
    row["median_minimizer_steps"] = float(np.median([r["minimizer_steps"] for r in runs])) \
        if relaxations else ""
    return row


def by_temperature(runs: list[dict]) -> dict[str, list[dict]]:
    """{'300 K': runs, ...} in order of temperature ('unknown' last), file order within."""
    groups: dict[str, list[dict]] = {}
    for r in sorted(runs, key=lambda r: (not math.isfinite(r["temperature"]),
                                         np.nan_to_num(r["temperature"]))):
        groups.setdefault(temperature_group(r["temperature"]), []).append(r)
    return groups


def plot(md: dict, relax: dict, path: Path, title: str) -> Path:
    """|cos| vs time of every MD run and vs minimizer step of every relaxation, one column
    per temperature, and the fraction of MD runs with E_acc - E_app > 0 vs time."""
    plt = pyplot()
    labels = list(dict.fromkeys(list(md) + list(relax)))
    rows = (["md"] if md else []) + (["relax"] if relax else []) + (["sign"] if md else [])
    fig, axes = plt.subplots(len(rows), len(labels), figsize=(3.6 * len(labels), 2.5 * len(rows)),
                             squeeze=False)
    for c, label in enumerate(labels):
        for r, kind in enumerate(rows):
            ax = axes[r, c]
            runs = (md if kind != "relax" else relax).get(label, [])
            if not runs:
                ax.set_visible(False)
                continue
            rnd = float(np.mean([random_abs_cos(x["n_atoms"]) for x in runs]))
            if kind == "md":
                for x in runs:
                    ax.plot(x["time"], x["abs_cos"], linewidth=0.8, alpha=0.8)
                ax.set_xlabel("time (ps)", fontsize=8)
                ax.set_title(f"MD {label} ({len(runs)} runs)", fontsize=8)
            elif kind == "relax":
                for x in runs:
                    ends = x["ends"]
                    ax.plot(x["step"][ends], x["abs_cos"][ends], linewidth=0.8, alpha=0.8)
                ax.set_xlabel("minimizer step", fontsize=8)
                ax.set_title(f"relaxations from {label} ({len(runs)})", fontsize=8)
            else:
                n = min(len(x["positive"]) for x in runs)
                frac = np.mean([x["positive"][:n] for x in runs], axis=0)
                ax.plot(runs[0]["time"][:n], frac, color="C3", linewidth=1.0)
                ax.axhline(0.5, color="0.4", linestyle=":", linewidth=0.9)
                ax.set_ylim(-0.05, 1.05)
                ax.set_xlabel("time (ps)", fontsize=8)
                ax.set_ylabel("runs with E_acc - E_app > 0", fontsize=7)
                ax.set_title(f"MD {label}: sign of the energy error", fontsize=8)
            if kind != "sign":
                ax.axhline(rnd, color="0.4", linestyle=":", linewidth=0.9,
                           label=r"random: $\sqrt{2/(\pi 3N)}$")
                ax.set_ylabel(r"|cos$\theta$|", fontsize=8)
                ax.legend(fontsize=6, frameon=False)
            ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", metavar="DIR", help="output folder of `lammps-adv driven`")
    ap.add_argument("-o", "--out", metavar="PREFIX", default="model_driven",
                    help="output prefix of PREFIX.csv, .md and .png (default model_driven, "
                    "in the current folder)")
    args = ap.parse_args()
    files = find_h5([args.folder])
    if not files:
        raise FileNotFoundError(f"no .h5/.h5md files in {args.folder}")
    results = [read_result(p) for p in files]
    md_runs, relaxations = [], []
    for r in results:
        experiment = r.params.get("experiment")
        if experiment == "driven":
            md_runs.append(per_run(r, "MD"))
        elif experiment == "relax":
            relaxations.append(per_run(r, "relaxation"))
        else:
            raise ValueError(f"{r.path}: a {kind_of(r)}, not an output of `lammps-adv driven`")
    settings = {(r.params.get("md_steps"), r.params.get("timestep_ps"), r.params.get("every"))
                for r in results if r.params.get("experiment") == "driven"}
    if len(settings) > 1:
        raise ValueError(f"MD runs of {len(settings)} settings (steps, timestep ps, every) in "
                         f"{args.folder}: {sorted(settings)}; analyse one `lammps-adv driven` "
                         "output at a time")
    pairs = sorted({pair_label(r.params) for r in results})
    if len(pairs) > 1:
        raise ValueError(f"files of {len(pairs)} model pairs ({'; '.join(pairs)}): analyse "
                         "one `lammps-adv driven` output at a time")
    md, relax = by_temperature(md_runs), by_temperature(relaxations)
    rows = [group_row(runs, "MD", label) for label, runs in md.items()]
    rows += [group_row(runs, "relaxation", label) for label, runs in relax.items()]
    if len(relax) > 1:
        rows.append(group_row(relaxations, "relaxation", "all"))
    prefix = str(args.out)
    csv_path, md_path = write_table(rows, Path(prefix), floatfmt="{:.6g}")
    figure = plot(md, relax, Path(prefix + ".png"), pairs[0])

    glasses = unit_count([r["unit"] for r in md_runs + relaxations])
    print(f"{len(md_runs)} MD runs and {len(relaxations)} relaxations of {pairs[0]} from "
          f"{glasses} independent units (glasses); alignment "
          f"{alignment_of(results[0].params)}; 95 % cluster-bootstrap intervals over the "
          f"glasses need {MIN_UNITS} units")
    for row in rows:
        k = row["units"]
        cells = {key: with_ci_if_resolved(
            row[f"{key}_mean"], (_num(row[f"{key}_lo"]), _num(row[f"{key}_hi"])), k,
            "{:.3f}") for key, _ in STATISTICS}
        tail = f"; converged {row['converged']}, median steps " \
               f"{row['median_minimizer_steps']:g}" if row["sampling"] == "relaxation" else ""
        print(f"{row['sampling']} {row['temperature']}: {row['runs']} runs, {k} units, "
              f"{row['rows']} rows{tail}")
        print(f"  |cos theta|: along {cells['abs_cos_along']}, at the end "
              f"{cells['abs_cos_end']}; random {row['random_abs_cos']:.3f}")
        print(f"  E_acc - E_app > 0: along {cells['positive_along']}, at the end "
              f"{cells['positive_end']}")
    print(f"wrote {csv_path}, {md_path} and {figure}")


def _num(value) -> float:
    return value if isinstance(value, float) else math.nan


if __name__ == "__main__":
    run_main(main)
