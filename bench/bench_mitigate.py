"""Reference labels per second (serial vs 2 MPI ranks) and wall time per mitigation round.

    .venv/bin/python bench/bench_mitigate.py [--configs 32] [--atoms 24] [--reference bks-dsf]

1. Labels `--configs` glass configurations with the reference through
   lammps_adv.experiments.labelling, on 1 rank and under `mpirun -np 2` (one configuration
   per rank), and prints labels/s and the speed-up of 2 ranks over 1 (same run).
2. Runs `lammps-adv mitigate` with 1 seed, strategies more-md and adversarial, 2 rounds of
   4 labels, and prints the wall time per round (pick + label + warm-started retraining)
   against the time of training the base model.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent

LABEL = """
import sys, time
from lammps_adv.experiments.labelling import label
from lammps_adv.io.configs import load_configs
from lammps_adv.parallel.mpi import mpi_comm
comm = mpi_comm()
configs = load_configs(sys.argv[1], split=None)
comm.Barrier()
t = time.perf_counter()
label(configs, sys.argv[2], comm)
comm.Barrier()
if comm.Get_rank() == 0:
    print(len(configs) / (time.perf_counter() - t))
"""


def run(args, **kw):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", type=int, default=32, help="configurations to label (default 32)")
    ap.add_argument("--atoms", type=int, default=24, help="atoms per glass (default 24)")
    ap.add_argument("--reference", default="bks-dsf", help="labelling calculator (default bks-dsf)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of the labelling timing, best kept")
    a = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        gen = [BIN / "lammps-adv", "dataset", "generate", "--reference", "bks-dsf", "--glass-atoms",
               a.atoms, "--quartz", 0, "--stride", 20, "--equil", 100, "--melt-ps", 2,
               "--quench-ps", 3, "--quiet"]
        half = max(1, a.configs // 2)
        run(gen + ["-o", tmp / "pool.h5", "--glass-temps", "600,1200", "--frames", half,
                   "--seed", 22, "--split", "1,0,0"], env=env)
        script = tmp / "label.py"
        script.write_text(LABEL)
        rates = {}
        for n in (1, 2):
            best = 0.0
            for _ in range(a.repeat):
                cmd = ([BIN / "mpirun", "-np", n] if n > 1 else []) + [
                    BIN / "python", script, tmp / "pool.h5", a.reference]
                best = max(best, float(run(cmd, env=env).stdout.split()[-1]))
            rates[n] = best
        print(f"{2 * half} configurations of {a.atoms} atoms labelled by {a.reference} "
              f"(best of {a.repeat}):")
        for n, r in rates.items():
            print(f"  {n} rank(s): {r:8.1f} labels/s")
        print(f"  speed-up of 2 ranks over 1: {rates[2] / rates[1]:.2f}x")

        run(gen + ["-o", tmp / "base.h5", "--glasses", 2, "--glass-temps", "300,1500,3000",
                   "--frames", 4, "--seed", 21, "--split", "0.6,0.2,0.2"], env=env)
        run(gen + ["-o", tmp / "eval.h5", "--glass-temps", "300,2000", "--frames", 2,
                   "--seed", 23, "--split", "1,0,0"], env=env)
        t0 = time.perf_counter()
        run([BIN / "lammps-adv", "mitigate", tmp / "base.h5", "--evaluation", tmp / "eval.h5",
             "--pool", tmp / "pool.h5", "-o", tmp / "m", "--strategies", "more-md,adversarial",
             "--budget", 8, "--rounds", 2, "--seeds", 0, "--cutoff", 5, "--hidden", 16,
             "--epochs", 60, "--warm-epochs", 20, "--relaxations", 2, "--probe-configs", 2,
             "--relax-steps", 3], env=env)
        total = time.perf_counter() - t0
        cards = {p: json.loads(p.read_text()) for p in (tmp / "m" / "seed0").rglob("*.card.json")}
        base = next(c for p, c in cards.items() if p.name == "base.card.json")
        rounds = [c for c in cards.values() if c.get("round", 0) > 0]
        t_base = base["performance"]["training_time_s"] + base["performance"]["preparation_time_s"]
        t_round = [c["performance"]["training_time_s"] + c["performance"]["preparation_time_s"]
                   for c in rounds]
        print(f"mitigate, 1 seed, 2 strategies x 2 rounds of 4 labels: {total:.1f} s wall in all")
        print(f"  base model training: {t_base:.1f} s (60 epochs)")
        print(f"  retraining per round (warm start, 20 epochs): {sum(t_round) / len(t_round):.1f} s "
              f"= {sum(t_round) / len(t_round) / t_base:.2f} x the base training")
        print(f"  wall time per round: {total / 4:.1f} s (the whole run, base model and "
              "measures included, over its 4 strategy-rounds)")


if __name__ == "__main__":
    main()
