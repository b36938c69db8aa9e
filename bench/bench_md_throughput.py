"""Model-driven MD throughput: NVT steps per second driven by the shipped networks in LAMMPS.

    OMP_WAIT_POLICY=passive .venv/bin/python bench/bench_md_throughput.py \
        [--sizes 192,648,3000] [--threads 2] [--rounds 3] [--seconds 3]

For SiO2 glasses of each size (out/bench/glassN.data, shared with the other benchmarks), NVT
MD at 300 K (1 fs, Nose-Hoover) driven by:
  native   LAMMPS' own bks-dsf (coul/dsf + buck + mie/cut): the baseline, with more than one
           thread the OPENMP package's styles on the same threads (coul/dsf/omp, buck/omp;
           mie/cut has none)
  bp       potentials/bp_bks_dsf.pt through pair_style torchscript
  gnn      potentials/gnn_bks_dsf.pt through pair_style torchscript
and the BP- and graph-network-driven runs again under the recorder, against bks-dsf every
10 steps (what `lammps-adv run --every 10` and the model-driven study do). Each case runs in
a fresh process with --threads torch/OpenMP threads; a block of steps long enough to take
about --seconds is timed --rounds times and the fastest kept (the host may be shared).
Printed: steps per second and atom-steps per second of each case, each network's time per
step over native bks-dsf's at the same size and threads (issue #27's goal: BP <= 12x at 3000
atoms), and the recorder's cost (recorded over plain time per step). Results also go to
out/bench/bench_md_throughput.json.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import OUT, REPO, bench_glass, best_step_time, cpu

MODELS = {"bp": REPO / "potentials" / "bp_bks_dsf.pt", "gnn": REPO / "potentials" / "gnn_bks_dsf.pt"}
GOAL_BP_3000 = 12.0      # BP step / native bks-dsf step at 3000 atoms, same threads


def potential_lines(case: str, threads: int) -> list:
    if case == "native":     # with the OPENMP package's styles on the same threads
        omp = threads > 1
        return (["suffix omp"] if omp else []) + [f"include {REPO / 'potentials' / 'bks_dsf.lmp'}"] \
            + (["suffix off"] if omp else [])
    return ["pair_style torchscript", f"pair_coeff * * {MODELS[case]} Si O"]


def worker(args) -> dict:
    """Time NVT steps of one case in this process."""
    import torch
    torch.set_num_threads(args.threads)
    from lammps_adv.lammps.engine import open_lammps
    from lammps_adv.plugin.kernels import load_kernels
    from lammps_adv.recorder import Recorder
    load_kernels()
    lmp = open_lammps()
    rec = None
    if args.record:
        rec = Recorder(lmp, "bks-dsf", out=Path(args.result).with_suffix(".h5md"), every=10,
                       frames_every=0, overwrite=True)
    run = rec.command if rec else lmp.command
    omp = [f"package omp {args.threads}"] if args.case == "native" and args.threads > 1 else []
    for cmd in [*omp, "units metal", "atom_style full", "atom_modify map yes",
                f"read_data {args.glass}", *potential_lines(args.case, args.threads), "neighbor 2.0 bin",
                "neigh_modify every 1 delay 0 check yes",
                "velocity all create 300 4 mom yes rot yes dist gaussian",
                "fix nvt all nvt temp 300 300 0.1", "timestep 0.001", "thermo 0"]:
        run(cmd)
    best, steps = best_step_time(run, args.seconds, args.rounds, min_steps=10, multiple=10)
    if rec:
        rec.close()
    lmp.close()
    return {"seconds_per_step": best, "steps": steps}


def run_case(args, case: str, size: int, record: bool, tmp: Path) -> dict:
    out = tmp / f"{case}_{size}_{int(record)}.json"
    cmd = [sys.executable, __file__, "--worker", case, "--glass", str(bench_glass(size)),
           "--threads", str(args.threads), "--rounds", str(args.rounds),
           "--seconds", str(args.seconds), "--result", str(out)] + (["--record"] if record else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    env.setdefault("OMP_WAIT_POLICY", "passive")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{case} at {size} atoms failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(out.read_text())


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="192,648,3000", help="glass sizes (atoms, multiples of 3)")
    ap.add_argument("--threads", type=int, default=2, help="torch/OpenMP threads (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="timed blocks per case, fastest kept")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of a timed block (s)")
    ap.add_argument("--worker", choices=["native", "bp", "gnn"], help=argparse.SUPPRESS)
    ap.add_argument("--glass", help=argparse.SUPPRESS)
    ap.add_argument("--record", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.case = args.worker
        Path(args.result).write_text(json.dumps(worker(args)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            for case, record in [("native", False), ("bp", False), ("gnn", False),
                                 ("bp", True), ("gnn", True)]:
                key = f"{case}{'+rec' if record else ''}@{size}"
                results[key] = run_case(args, case, size, record, Path(tmp))
                s = results[key]["seconds_per_step"]
                print(f"  {key:>16}: {1 / s:9.1f} steps/s  {size / s:12,.0f} atom-steps/s", flush=True)
    print(f"\nNVT MD at 300 K, {args.threads} thread(s), fastest of {args.rounds} blocks of "
          f"~{args.seconds:g} s; host CPU: {cpu()}")
    print(f"{'atoms':>6} {'native/s':>9} {'BP/s':>8} {'GNN/s':>8} {'BP/native':>10} "
          f"{'GNN/native':>11} {'BP rec 10':>10} {'GNN rec 10':>11}")
    ratios = {}
    for size in sizes:
        t = {k.split("@")[0]: v["seconds_per_step"] for k, v in results.items()
             if k.endswith(f"@{size}")}
        r = {"bp": t["bp"] / t["native"], "gnn": t["gnn"] / t["native"],
             "bp_record": t["bp+rec"] / t["bp"], "gnn_record": t["gnn+rec"] / t["gnn"]}
        ratios[size] = r
        print(f"{size:6d} {1 / t['native']:9.1f} {1 / t['bp']:8.2f} {1 / t['gnn']:8.2f} "
              f"{r['bp']:9.1f}x {r['gnn']:10.1f}x {r['bp_record']:9.3f}x {r['gnn_record']:10.3f}x")
    print("(BP/native, GNN/native: time per step over native bks-dsf's; rec 10: recorded "
          "against bks-dsf every 10 steps over the same run unrecorded)")
    if 3000 in ratios:
        r = ratios[3000]["bp"]
        print(f"BP step / native bks-dsf step at 3000 atoms: {r:.1f}x   goal <= {GOAL_BP_3000:g}x   "
              f"{'ok' if r <= GOAL_BP_3000 else 'MISSED'}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_md_throughput.json").write_text(json.dumps(
        {"threads": args.threads, "cpu": cpu(), "results": results,
         "ratios": {str(k): v for k, v in ratios.items()}}, indent=1))


if __name__ == "__main__":
    main()
