#!/usr/bin/env python
"""Compare two recordings (`lammps-adv run`, or two relaxations) or two probe files.

    python analysis/compare_runs.py bp.h5md gnn.h5md -o out/bp_vs_gnn

Reads cos(theta) (cos_adversarial), the energy error |E_acc - E_app| per atom in meV/atom
and, for recordings, the force RMSE in eV/Angstrom: one value per recorded row (recordings)
or per configuration (probe files, at the undisplaced configuration).
Writes PREFIX.csv and PREFIX.md (side by side for A and B, with B - A: n, mean, median and
the 5/25/75/95 % quantiles of abs(cos theta), cos theta, the energy error and the force RMSE)
and PREFIX_cos_hist.png (the two cos theta histograms overlaid). No intervals: the rows of a
run are correlated in time, not independent units. Files of different kinds (run,
relaxation, probe file) are refused.
Metal units: eV, Angstrom, ps. A missing, corrupt or foreign file: one line, exit status 2.
"""
import argparse
from pathlib import Path

import numpy as np

from _script import kind_of, read_result, run_main
from lammps_adv.core.adversarial import random_abs_cos
from lammps_adv.core.summaries import distribution_summary, error_observables
from lammps_adv.report.figures import plot_cos_grid
from lammps_adv.report.labels import pair_label
from lammps_adv.report.tables import write_table


def quantities(result) -> dict[str, tuple[str, np.ndarray]]:
    """{quantity: (unit, values)} of one file."""
    obs = error_observables(result)
    out = {"abs(cos theta)": ("", np.abs(obs["cos_adversarial"])),
           "cos theta": ("", obs["cos_adversarial"]),
           "abs(E_acc - E_app) per atom": ("meV/atom", np.abs(obs["energy_error_meV_per_atom"]))}
    if "force_rmse_eV_per_A" in obs:
        out["force RMSE"] = ("eV/A", obs["force_rmse_eV_per_A"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", metavar="A", help="first recording or probe file")
    ap.add_argument("b", metavar="B", help="second file, of the same kind")
    ap.add_argument("-o", "--out", metavar="PREFIX",
                    help="output prefix (default compare_A_B, in the current folder)")
    args = ap.parse_args()
    a, b = read_result(args.a), read_result(args.b)
    if kind_of(a) != kind_of(b):
        raise ValueError(f"{a.path} is a {kind_of(a)}, {b.path} a {kind_of(b)}: "
                         "compare two files of one kind")
    prefix = Path(args.out or f"compare_{a.path.stem}_{b.path.stem}")
    qa, qb = quantities(a), quantities(b)

    rows = []
    for name, (unit, va) in qa.items():
        sa, sb = distribution_summary(va), distribution_summary(qb[name][1])
        rows += [{"quantity": name, "unit": unit, "statistic": stat, "A": sa[stat], "B": sb[stat],
                  "B - A": sb[stat] - sa[stat]} for stat in sa]
    csv, md = write_table(rows, prefix)
    title = f"cos theta of two {kind_of(a)}s"
    def panel(r, q):
        n_atoms = r.params.get("n_atoms") or float(np.median(r.data["natoms"]))
        return ({f"n={len(q['cos theta'][1])}": q["cos theta"][1]}, random_abs_cos(int(n_atoms)))
    png = plot_cos_grid({f"A: {a.path.name}\n{pair_label(a.params)}": panel(a, qa),
                         f"B: {b.path.name}\n{pair_label(b.params)}": panel(b, qb)},
                        Path(f"{prefix}_cos_hist.png"), columns=2, title=title,
                        note="Dotted: +-sqrt(2/(pi 3N)), the mean |cos| of a random direction.")

    for tag, r, q in (("A", a, qa), ("B", b, qb)):
        n_atoms = r.params.get("n_atoms") or float(np.median(r.data["natoms"]))
        print(f"{tag}: {r.path} ({kind_of(r)}, {pair_label(r.params)}, {len(q['cos theta'][1])} "
              f"values): mean |cos theta| {q['abs(cos theta)'][1].mean():.4g} (a random direction: "
              f"{random_abs_cos(n_atoms):.4g}), mean |E_acc - E_app| "
              f"{q['abs(E_acc - E_app) per atom'][1].mean():.4g} meV/atom")
    print(f"wrote {csv}, {md} and {png}")


if __name__ == "__main__":
    run_main(main)
