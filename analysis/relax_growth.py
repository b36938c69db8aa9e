#!/usr/bin/env python
"""Error growth of relaxations driven by the approximate model (`lammps-adv relax`).

    python analysis/relax_growth.py out/relax -o out/relax_growth

Reads every relaxation file named or found in the folders named (experiment "relax"; one
model pair), and per relaxation |E_acc - E_app| per atom (meV/atom, aligned energies) at
the end of each minimizer step and cos(theta) at the start.
Writes PREFIX_steps.csv (per step: relaxations still running, median and quartiles over all
relaxations; one that converged keeps its last value), PREFIX_relaxations.csv (per
relaxation: cos theta at the start, |error| at the first and last step, the first step's
rise), PREFIX_error_vs_step.png (median and quartile band) and PREFIX_first_step.png (rise
vs cos theta). Prints how many relaxations (the independent units) there are, the
correlation of the rise with cos theta and the growth of the median error, with 95 %
bootstrap intervals, or "not resolved" with fewer than 5 relaxations.
Metal units: eV, Angstrom, ps. A missing, corrupt or foreign file: one line, exit status 2.
"""
import argparse
import math
from pathlib import Path

from _script import kind_of, read_result, run_main
from lammps_adv.core.statistics import MIN_UNITS
from lammps_adv.core.summaries import relax_band_rows, relax_curves, relax_first_step, relax_start
from lammps_adv.io.results import find_h5
from lammps_adv.report.figures import plot_band, plot_scatter
from lammps_adv.report.labels import pair_label
from lammps_adv.report.tables import with_ci_if_resolved, write_table

ERROR = "|E_acc - E_app| (meV/atom)"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("relaxations", nargs="+", metavar="RELAX_DIR_OR_FILE",
                    help="files written by `lammps-adv relax`, or folders holding them")
    ap.add_argument("-o", "--out", metavar="PREFIX", default="relax_growth",
                    help="output prefix (default relax_growth, in the current folder)")
    args = ap.parse_args()
    files = find_h5(args.relaxations)
    if not files:
        raise FileNotFoundError(f"no .h5 files in {' '.join(args.relaxations)}")
    results = [read_result(p) for p in files]
    for r in results:
        if kind_of(r) != "relaxation":
            raise ValueError(f"{r.path}: a {kind_of(r)}, not a relaxation of `lammps-adv relax`")
    pairs = sorted({pair_label(r.params) for r in results})
    if len(pairs) > 1:
        raise ValueError(f"relaxations of {len(pairs)} model pairs ({'; '.join(pairs)}): "
                         "analyse one pair at a time")
    prefix = str(args.out)          # write_table creates its folder

    curves = [relax_curves(r)[1] for r in results]
    steps_csv, _ = write_table(relax_band_rows(curves), Path(prefix + "_steps"),
                               floatfmt="{:.9g}", markdown=False)
    rows = []
    for r, c in zip(results, curves):
        start = relax_start(r) or {}      # empty: the relaxation ended before its first step
        rows.append({"file": str(r.path), "source": str(r.params.get("source", "")),
                     "steps": len(c) - 1, "cos0": start.get("cos0", math.nan),
                     **{f"{k}_meV_per_atom": start.get(k, math.nan)
                        for k in ("error_first", "rise", "error_last")}})
    relax_csv, _ = write_table(rows, Path(prefix + "_relaxations"), floatfmt="{:.9g}",
                               markdown=False)
    s = relax_first_step(results)
    band = plot_band({pairs[0]: curves}, Path(prefix + "_error_vs_step.png"), "minimizer step",
                     ERROR)
    scatter = plot_scatter(s["cos0"], s["rise"], Path(prefix + "_first_step.png"),
                           r"cos$\theta$ at the start", "rise over the first step (meV/atom)",
                           f"{pairs[0]}: {s['n']} relaxations")

    n = s["n"]
    short = "" if n == len(results) else f", {len(results) - n} ended before their first step"
    print(f"{len(results)} relaxations of {pairs[0]} (the independent units{short}); 95 % "
          f"intervals need {MIN_UNITS}" + ("" if n >= MIN_UNITS else ": not resolved"))
    print("first-step rise vs cos theta at the start: Pearson "
          f"{with_ci_if_resolved(s['pearson'], s['pearson_ci'], n, '{:.2f}')}, Spearman "
          f"{with_ci_if_resolved(s['spearman'], s['spearman_ci'], n, '{:.2f}')}")
    print(f"median {ERROR}: first step {s['median_first']:.4g}, last step "
          f"{s['median_last']:.4g}; growth factor (last/first) "
          f"{with_ci_if_resolved(s['growth_factor'], s['growth_ci'], n)}")
    print(f"wrote {steps_csv}, {relax_csv}, {band} and {scatter}")


if __name__ == "__main__":
    run_main(main)
