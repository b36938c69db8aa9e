#!/usr/bin/env python
"""Cost of the repulsive ZBL baseline (models/repulsion.py) inside the shipped networks.

    .venv/bin/python bench/bench_repulsion.py [--atoms 3000] [--rounds 5]

For the shipped BP and graph network: energy and forces of one glass through the Python
path (`get_calculator("torchscript:...")`), with the baseline and with the same weights
re-exported without it (`models.export.reexport(..., repulsion=None)`), interleaved, best
of the rounds. Prints the times and the ratio with / without (the baseline's overhead).
"""
import platform
import time

from common import OUT, REPO, bench_glass, glass_parser
from lammps_adv.calculators import get_calculator
from lammps_adv.lammps.structures import read_lammps_data
from lammps_adv.models.export import reexport

MODELS = ("bp_bks_dsf", "gnn_bks_dsf")


def best_time(calc, atoms, rounds: int, start: int) -> float:
    """Best wall time (s) of energy + forces; positions moved by 1e-9 A per call so that no
    call is answered from the calculator's per-configuration cache."""
    pos, cell, names = atoms.get_positions(), atoms.cell.array, atoms.get_chemical_symbols()
    best = float("inf")
    for k in range(rounds):
        t = time.perf_counter()
        calc.evaluate(pos + 1e-9 * (start + k + 1), cell, symbols=names)
        best = min(best, time.perf_counter() - t)
    return best


def main():
    a = glass_parser(__doc__).parse_args()
    atoms = read_lammps_data(bench_glass(a.atoms))
    print(f"host: {platform.processor() or platform.machine()}, {a.atoms}-atom glass, "
          f"energy + forces, best of {a.rounds} interleaved rounds")
    for name in MODELS:
        src = REPO / "potentials" / f"{name}.pt"
        bare = reexport(src, OUT / f"{name}_no_baseline.pt", repulsion=None)
        calcs = {"with": get_calculator(f"torchscript:{src}"),
                 "without": get_calculator(f"torchscript:{bare}")}
        try:
            best = {k: float("inf") for k in calcs}
            for r in range(a.rounds):       # interleave, so load drifts hit both alike
                for k, c in calcs.items():
                    best[k] = min(best[k], best_time(c, atoms, 1, 2 * r + (k == "with")))
        finally:
            for c in calcs.values():
                c.close()
        print(f"{name}: with baseline {1000 * best['with']:.1f} ms, without "
              f"{1000 * best['without']:.1f} ms, ratio {best['with'] / best['without']:.3f}")


if __name__ == "__main__":
    main()
