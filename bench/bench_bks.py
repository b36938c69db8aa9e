"""Time per MD step of a BKS silica glass: Ewald vs PPPM vs DSF, 1 and 2 MPI ranks.

    .venv/bin/python bench/bench_bks.py [--atoms 3000] [--steps 50]

Runs inputs/nvt_glass.in (NVT, 300 K, 1 fs) under `mpirun -np 1|2 lmp` for each Coulomb
treatment and prints ms/step plus the ratios measured in this one run: 2 ranks over 1,
and PPPM and DSF over Ewald. The glass is made once (short melt-quench) and cached.
"""
import argparse
import re
import subprocess
import sys
from pathlib import Path

from common import REPO, bench_glass

BIN = Path(sys.executable).parent

CASES = [  # name, potential file, extra variables, steps factor (Ewald is slow)
    ("bks Ewald 1e-6", "potentials/bks.lmp", ["-var", "bks_kspace", "ewald"], 0.2),
    ("bks PPPM 1e-6", "potentials/bks.lmp", ["-var", "bks_kspace", "pppm"], 1.0),
    ("bks-dsf", "potentials/bks_dsf.lmp", [], 1.0),
]


def ms_per_step(data, pot, extra, steps, ranks):
    cmd = [str(BIN / "lmp"), "-in", "inputs/nvt_glass.in", "-log", "none", "-nocite",
           "-var", "data", str(data), "-var", "potential_file", pot, "-var", "steps", str(steps),
           "-var", "out", "/dev/null"] + extra
    if ranks > 1:
        cmd = [str(BIN / "mpirun"), "-np", str(ranks)] + cmd
    text = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}).stdout
    loop = float(re.search(r"Loop time of ([0-9.e+-]+) on", text).group(1))
    return 1000.0 * loop / steps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atoms", type=int, default=3000, help="glass size, a multiple of 3 (default 3000)")
    ap.add_argument("--steps", type=int, default=50, help="MD steps per timing (Ewald: a fifth)")
    args = ap.parse_args()
    data = bench_glass(args.atoms)
    print(f"{args.atoms}-atom glass, NVT 300 K; ms per MD step (lower is better)")
    print(f"{'potential':18s} {'1 rank':>10s} {'2 ranks':>10s} {'speedup':>8s}")
    times = {}
    for name, pot, extra, factor in CASES:
        steps = max(5, int(args.steps * factor))
        t1 = ms_per_step(data, pot, extra, steps, 1)
        t2 = ms_per_step(data, pot, extra, steps, 2)
        times[name] = (t1, t2)
        print(f"{name:18s} {t1:10.2f} {t2:10.2f} {t1 / t2:7.2f}x", flush=True)
    ew = times["bks Ewald 1e-6"][0]
    print(f"PPPM over Ewald (1 rank): {ew / times['bks PPPM 1e-6'][0]:.2f}x faster")
    print(f"DSF over Ewald (1 rank):  {ew / times['bks-dsf'][0]:.2f}x faster")


if __name__ == "__main__":
    main()
