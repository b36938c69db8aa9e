#!/usr/bin/env python
"""Cost of driving ASE with a lammps-adv model (calculators/for_ase.py) against calling the
model's own calculator on the same configurations.

    .venv/bin/python bench/bench_ase.py [--atoms 3000] [--rounds 5]

Energy and forces of one glass, positions moved a little before every call (no cache hit):
`Calculator.evaluate` directly, and `atoms.get_forces()` with `ase_calculator(spec)` as the
atoms' calculator, interleaved, best of the rounds, for bks-dsf (LAMMPS) and the shipped
graph network (PyTorch). Prints both times and their ratio (the bridge's overhead), and
the cost of adding the stress (`atoms.get_stress()` after the forces of a new configuration,
against the forces alone): LAMMPS tallies the virial in the same run, a TorchScript model
needs a second call with the strain derivative.
"""
import time
import warnings

import numpy as np

from common import bench_glass, cpu, glass_parser
from lammps_adv.calculators import ase_calculator, get_calculator
from lammps_adv.lammps.structures import read_lammps_data


def main():
    a = glass_parser(__doc__).parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    atoms = read_lammps_data(bench_glass(a.atoms))
    names = atoms.get_chemical_symbols()
    print(f"host: {cpu()}; {len(atoms)}-atom glass, energy and forces per call")
    print(f"{'model':24s} {'evaluate':>10s} {'through ASE':>12s} {'ratio':>6s} "
          f"{'+ stress':>10s} {'ratio':>6s}")
    for spec in ("bks-dsf", "torchscript:gnn_bks_dsf"):
        direct = get_calculator(spec)
        bridged = atoms.copy()
        bridged.calc = ase_calculator(spec)
        t_direct = t_ase = t_stress = float("inf")
        for k in range(a.rounds):
            shift = 1e-6 * (k + 1)
            t = time.perf_counter()
            direct.evaluate(atoms.positions + shift, atoms.cell[:], symbols=names)
            t_direct = min(t_direct, time.perf_counter() - t)
            bridged.positions = atoms.positions + shift + 1e-7
            t = time.perf_counter()
            np.asarray(bridged.get_forces())
            t_ase = min(t_ase, time.perf_counter() - t)
            bridged.positions = atoms.positions + shift + 2e-7
            t = time.perf_counter()
            np.asarray(bridged.get_forces())
            np.asarray(bridged.get_stress())
            t_stress = min(t_stress, time.perf_counter() - t)
        direct.close()
        print(f"{spec:24s} {1e3 * t_direct:8.1f} ms {1e3 * t_ase:9.1f} ms {t_ase / t_direct:6.2f}x "
              f"{1e3 * t_stress:7.1f} ms {t_stress / t_ase:6.2f}x")


if __name__ == "__main__":
    main()
