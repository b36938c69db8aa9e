"""Demo stage wall times, and relaxation throughput serial vs 2 MPI ranks.

    .venv/bin/python bench/bench_demo.py [--demo out/demo] [--relaxations 4] [--steps 10]

Prints the stage times of the last `make demo` (out/demo/timings.json; run the demo first),
then relaxes the same configurations with `lammps-adv relax` on 1 and on 2 MPI ranks
(MPI sub-communicators, one relaxation per rank) and prints relaxations per minute and the
speed-up, measured in this one run. The approximate model is the shipped BP network
(potentials/bp_bks_dsf.pt), the reference bks-dsf.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", default=str(REPO / "out" / "demo"), help="demo output folder")
    ap.add_argument("--relaxations", type=int, default=4, help="relaxations per timing (default 4)")
    ap.add_argument("--steps", type=int, default=10, help="FIRE steps per relaxation (default 10)")
    args = ap.parse_args()
    timings = Path(args.demo) / "timings.json"
    if timings.is_file():
        t = json.loads(timings.read_text())
        print(f"demo stage wall times ({timings}):")
        for name, sec in t.items():
            print(f"  {sec:7.1f} s  {name}")
    else:
        print(f"no {timings}: run `make demo` first for the stage times")
    data = Path(args.demo) / "data" / "dataset.h5"
    with tempfile.TemporaryDirectory() as tmp:
        if not data.is_file():
            data = Path(tmp) / "md.h5"
            subprocess.run([str(BIN / "lammps-adv"), "dataset", "generate", "-o", str(data),
                            "--glass-atoms", "96", "--glass-temps", "300,1000", "--quartz", "0",
                            "--frames", str(args.relaxations), "--quiet"], check=True)
        rate = {}
        for ranks in (1, 2):
            cmd = [str(BIN / "lammps-adv"), "relax", str(data), "--approx",
                   f"torchscript:{REPO / 'potentials' / 'bp_bks_dsf.pt'}", "--reference", "bks-dsf",
                   "--split", "all", "--limit", str(args.relaxations), "--steps", str(args.steps),
                   "-o", str(Path(tmp) / f"relax{ranks}")]
            if ranks > 1:
                cmd = [str(BIN / "mpirun"), "-np", str(ranks)] + cmd
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                           env=dict(os.environ, OMP_NUM_THREADS="1"))
            dt = time.perf_counter() - t0
            rate[ranks] = 60.0 * args.relaxations / dt
            print(f"relax, {ranks} rank(s): {args.relaxations} relaxations x {args.steps} FIRE steps "
                  f"in {dt:.1f} s = {rate[ranks]:.2f} relaxations/min")
        print(f"speed-up of 2 ranks over 1: {rate[2] / rate[1]:.2f}x")


if __name__ == "__main__":
    main()
