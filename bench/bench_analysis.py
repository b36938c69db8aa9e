"""Cost of the analysis's honest parts, each against its natural baseline in the same run.

    .venv/bin/python bench/bench_analysis.py [--atoms 3000] [--rounds 5]

- The probe's flag search: closest pairs per species pair of one displaced glass, looked
  for as far as a flag reaches (the largest threshold, 0.9 x the closest pair of the
  undisplaced glass) against a 5 A neighbour list (what the probe did first).
- The report's intervals: a 95 % cluster bootstrap over independent units (60
  configurations of 5 glasses, 2000 resamples) against the plain bootstrap of the same
  60 numbers, the cost of resampling glasses instead of frames.

Best of several rounds; the host's CPU is printed with the times.
"""
import argparse

import numpy as np

from common import bench_glass, best, cpu
from lammps_adv.core.statistics import bootstrap_ci, cluster_bootstrap_ci
from lammps_adv.experiments.probe import CLOSEST_PAIR_FACTOR
from lammps_adv.lammps.structures import (CLOSEST_PAIR_CUTOFF, closest_pairs,
                                          read_lammps_data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--atoms", type=int, default=3000, help="glass size (default 3000)")
    ap.add_argument("--rounds", type=int, default=5, help="timing rounds, best taken (default 5)")
    args = ap.parse_args()
    print(f"host: {cpu()}")

    glass = read_lammps_data(bench_glass(args.atoms))
    pos, cell, names = glass.get_positions(), glass.cell.array, glass.get_chemical_symbols()
    reach = CLOSEST_PAIR_FACTOR * max(closest_pairs(pos, cell, names).values())
    moved = pos + np.random.default_rng(0).normal(0, 0.05, pos.shape)
    full = best(lambda: closest_pairs(moved, cell, names, CLOSEST_PAIR_CUTOFF), args.rounds)
    near = best(lambda: closest_pairs(moved, cell, names, reach), args.rounds)
    print(f"flag search, {args.atoms} atoms: to {CLOSEST_PAIR_CUTOFF:g} A {1000 * full:.0f} ms, "
          f"to the flag reach {reach:.2f} A {1000 * near:.0f} ms: {full / near:.1f}x faster")

    rng = np.random.default_rng(1)
    units = np.repeat([f"glass{k}" for k in range(5)], 12)
    values = rng.normal(0.3, 0.1, len(units)) + np.repeat(rng.normal(0, 0.1, 5), 12)
    plain = best(lambda: bootstrap_ci(np.mean, values), args.rounds)
    cluster = best(lambda: cluster_bootstrap_ci(np.mean, values, units=units), args.rounds)
    print(f"interval of a mean, 60 configurations of 5 glasses: plain bootstrap "
          f"{1000 * plain:.0f} ms, cluster bootstrap {1000 * cluster:.0f} ms: "
          f"{cluster / plain:.2f}x the plain one")


if __name__ == "__main__":
    main()
