#!/usr/bin/env python
"""Follow a recording while `lammps-adv run` writes it: cos(theta) as it grows.

    python analysis/follow_run.py run.h5md [--interval 5] [--window 100] [--plot live.png]

Every INTERVAL seconds: reads the rows flushed so far (the project's reader, which opens a
file under a writer in SWMR-read mode and reads again what a flush was rewriting, see
docs/recorder.md "Watching a run") and prints one line: rows, the last step and time (ps),
cos(theta) of the last row, mean |cos theta| over the last WINDOW rows and over all, against
a random direction's sqrt(2 / (pi 3N)), and the last energy error E_ref - E_app (meV/atom).
With --plot, rewrites a PNG of cos(theta) against time each time. Waits for the file to appear; stops once no writer holds the file and every row has
been shown (the run ended, or was stopped), or after --timeout seconds. Metal units.
"""
import argparse
import time
from pathlib import Path

import numpy as np

from _script import run_main
from lammps_adv.core.adversarial import random_abs_cos
from lammps_adv.io.files import lock_holder
from lammps_adv.io.h5md import read_observables, read_parameters
from lammps_adv.report.figures import plot_timeseries


def line(obs: dict, window: int, random: float) -> str:
    cos = obs["cos_adversarial"]
    last = np.abs(cos[-window:]).mean()
    return (f"{len(cos)} rows, step {int(obs['step'][-1])}, t = {obs['time'][-1]:.4f} ps: "
            f"cos {cos[-1]:+.4f}; mean |cos| last {min(window, len(cos))} {last:.4f}, "
            f"all {np.abs(cos).mean():.4f} (random {random:.4f}); E_ref - E_app "
            f"{1e3 * obs['energy_error_per_atom'][-1]:+.3f} meV/atom")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="recording being written by `lammps-adv run` (.h5md)")
    ap.add_argument("--interval", type=float, default=5.0,
                    help="seconds between reads (default 5)")
    ap.add_argument("--window", type=int, default=100,
                    help="rows of the recent mean |cos theta| (default 100)")
    ap.add_argument("--plot", metavar="PNG", help="rewrite this figure after every read")
    ap.add_argument("--timeout", type=float, default=None,
                    help="stop after this many seconds (default: when the run ends)")
    args = ap.parse_args()
    if args.interval <= 0 or args.window < 1:
        raise ValueError("--interval must be > 0 and --window >= 1")
    path = Path(args.run)
    start = time.monotonic()

    def timed_out():
        return args.timeout is not None and time.monotonic() - start > args.timeout

    while not path.exists():
        if timed_out():
            raise FileNotFoundError(f"{path} did not appear in {args.timeout:g} s")
        time.sleep(min(args.interval, 0.5))
    shown, random = 0, None
    while True:
        writing = lock_holder(path) is not None      # before the read: no row is missed
        obs = read_observables(path)
        if random is None and len(obs["step"]):
            n_atoms = int(read_parameters(path, texts=False).get("n_atoms", 0))
            random = random_abs_cos(n_atoms) if n_atoms else float("nan")
        if len(obs["step"]) > shown:
            shown = len(obs["step"])
            print(line(obs, args.window, random), flush=True)
            if args.plot:
                plot_timeseries(obs["time"], {r"cos$\theta$": obs["cos_adversarial"]},
                                Path(args.plot), "time (ps)", [],
                                guides={r"cos$\theta$": (random, "+-|cos| of a random "
                                                                 "direction")})
        if not writing:
            print(f"{path}: no writer holds it; {shown} rows in all", flush=True)
            return
        if timed_out():
            print(f"stopped after {args.timeout:g} s; {shown} rows so far", flush=True)
            return
        time.sleep(args.interval)


if __name__ == "__main__":
    run_main(main)
