#!/usr/bin/env python
"""Error growth of relaxations driven by the approximate model (`lammps-adv relax`).

    python analysis/relax_growth.py out/relax -o out/relax_growth

Reads every relaxation file named or found in the folders named (experiment "relax"; one
model pair), and per relaxation |E_acc - E_app'| per atom (meV/atom, aligned energies) at
the end of each minimizer step, cos(theta) at the start, the first step's change of
E_acc - E_app against its first-order prediction, convergence and the end state.
Writes PREFIX_steps.csv (per step: relaxations still running, median and quartiles over all
relaxations; one that converged keeps its last value), PREFIX_relaxations.csv (one row per
relaxation, lammps_adv.core.summaries.relax_start), PREFIX_error_vs_step.png (median and
quartile band) and PREFIX_first_step.png (rise vs cos theta, coloured by start temperature).
Prints, per start temperature, the relaxations and independent units, the first step's
change / first-order prediction, the correlation of the rise with cos theta, the growth of
the median error, the fraction ending with E_acc - E_app' > 0 and the alignment-free change
of E_acc - E_app, with 95 % cluster-bootstrap intervals over the independent units, or
"not resolved" with fewer than 5 units.
Metal units: eV, Angstrom, ps. A missing, corrupt or foreign file: one line, exit status 2.
"""
import argparse
from pathlib import Path

from _script import kind_of, read_result, run_main
from lammps_adv.core.statistics import MIN_UNITS
from lammps_adv.core.summaries import relax_band_rows, relax_curves, relax_first_step
from lammps_adv.io.results import find_h5
from lammps_adv.report.figures import plot_band, plot_scatter_groups
from lammps_adv.report.labels import alignment_of, pair_label
from lammps_adv.report.tables import with_ci_if_resolved, write_table

ERROR = "|E_acc - E_app'| (meV/atom)"


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
        raise FileNotFoundError(f"no .h5/.h5md files in {' '.join(args.relaxations)}")
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
    s = relax_first_step(results)
    steps_csv, _ = write_table(relax_band_rows(curves, units=[row["unit"] for row in s["rows"]]),
                               Path(prefix + "_steps"), floatfmt="{:.9g}", markdown=False)
    energies = ("error_first", "rise", "change_first", "predicted_first", "error_last",
                "drift")     # meV/atom
    named = {"final_fmax": "final_fmax_eV_per_A", "fmax": "fmax_eV_per_A",
             "temperature": "temperature_K", **{k: f"{k}_meV_per_atom" for k in energies}}
    rows = [{"file": str(r.path), "source": str(r.params.get("source", "")),
             **{named.get(k, k): v for k, v in row.items()}}
            for r, row in zip(results, s["rows"])]
    relax_csv, _ = write_table(rows, Path(prefix + "_relaxations"), floatfmt="{:.9g}",
                               markdown=False)
    band = plot_band({pairs[0]: curves}, Path(prefix + "_error_vs_step.png"), "minimizer step",
                     ERROR, integer_x=True)
    scatter = plot_scatter_groups(s["points"], Path(prefix + "_first_step.png"),
                                  r"cos$\theta$ at the start",
                                  "rise over the first step (meV/atom)",
                                  f"{pairs[0]}: {s['n']} relaxations")

    known = [row for row in s["rows"] if row["converged"] is not None]
    print(f"{len(results)} relaxations of {pairs[0]}, {s['all']['units']} independent units; "
          f"95 % intervals need {MIN_UNITS} units; alignment {alignment_of(results[0].params)}")
    if known:
        stuck = [f"{Path(r.path).name} ({row['steps']} steps)"
                 for r, row in zip(results, s["rows"]) if row["converged"] is False]
        print(f"converged (max per-atom |F_app| <= fmax): {len(known) - len(stuck)} of "
              f"{len(known)}" + (f"; unconverged: {', '.join(stuck)}" if stuck else ""))
    else:
        print("convergence not recorded")
    for label, g in s["groups"].items():
        k, ks = g["units"], g["stepped_units"]
        short = "" if g["stepped"] == g["relaxations"] else \
            f", {g['relaxations'] - g['stepped']} ended before their first step"
        print(f"start temperature {label}: {g['relaxations']} relaxations, {k} units{short}")
        print("  first step, change of E_acc - E_app / first-order prediction: median "
              + (f"{with_ci_if_resolved(g['first_order_ratio'], g['first_order_ci'], ks, '{:.3f}')}"
                 f", same sign {g['first_order_same_sign']:.0%}"
                 if g["first_order_n"] else "not recorded"))
        print("  first-step rise vs cos theta at the start: Spearman "
              f"{with_ci_if_resolved(g['spearman'], g['spearman_ci'], ks, '{:.2f}')}, Pearson "
              f"{with_ci_if_resolved(g['pearson'], g['pearson_ci'], ks, '{:.2f}')}")
        print(f"  median {ERROR}: first step {g['median_first']:.4g}, last step "
              f"{g['median_last']:.4g}; growth factor (last/first) "
              f"{with_ci_if_resolved(g['growth_factor'], g['growth_ci'], k)}")
        print("  ending with E_acc - E_app' > 0: "
              f"{with_ci_if_resolved(g['end_positive_fraction'], g['end_positive_ci'], k, '{:.2f}')}"
              "; E_acc - E_app, last - first (median, meV/atom, alignment-free): "
              f"{with_ci_if_resolved(g['drift_median'], g['drift_ci'], k)}")
    print(f"wrote {steps_csv}, {relax_csv}, {band} and {scatter}")

if __name__ == "__main__":
    run_main(main)
