"""The shipped BP network beside n2p2, the reference C++ Behler-Parrinello code, in one run.

    LAMMPS_ADV_N2P2_SRC=<n2p2 source tree or git repository> \\
        OMP_WAIT_POLICY=passive .venv/bin/python bench/bench_n2p2.py [--atoms 3000]
        [--threads 1,2] [--rounds 3]

n2p2 is on no package registry: its public source tree (github.com/CompPhysVienna/n2p2)
is given through LAMMPS_ADV_N2P2_SRC (or --n2p2-src) and built once by tools/build_n2p2.sh
(its libnnp, Eigen from Debian, cached in ~/.cache/lammps-adv/). The shipped BP
(potentials/bp_bks_dsf.pt, without its ZBL baseline, which n2p2 has not) is written in
n2p2's format by bench/n2p2_model.py: the same 82 symmetry functions, standardisation and
networks. For the SiO2 glass out/bench/glassN.data, each code computes energy and forces,
the fastest of --rounds, with the same number of threads (torch threads for lammps-adv,
OpenMP threads for n2p2), the neighbour search left out of both (LAMMPS makes the lists):
  lammps-adv  the model call as pair_style torchscript makes it (forward + autograd forces
              on the periodic graph's positions, species and edges: bp_energies)
  n2p2        symmetry functions with derivatives, networks, energy, forces (libnnp's
              Mode, as its LAMMPS interface calls it every step)
Printed: both times, their ratio (goal: lammps-adv <= 1.0x n2p2), and the agreement of the
energies (eV/atom) and forces (eV/A), goal 1e-8. Results also go to out/bench/bench_n2p2.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from common import OUT, REPO, bench_glass, cpu
from n2p2_model import write_n2p2, write_structure

SHIPPED = REPO / "potentials" / "bp_bks_dsf.pt"


def build_n2p2(src: str) -> Path:
    proc = subprocess.run([str(REPO / "tools" / "build_n2p2.sh"), src], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"building n2p2 failed:\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def without_baseline(model_file: Path) -> Path:
    """The model with the same weights and no ZBL baseline (n2p2 has none)."""
    from lammps_adv.models.export import reexport
    return reexport(model_file, OUT / f"{model_file.stem}_no_baseline.pt", repulsion=None)


def lammps_adv_call(model_file: Path, atoms, threads: int, rounds: int) -> dict:
    """Energy, forces and the fastest time of the model call on the contract input (in a
    fresh process, so that the thread count holds)."""
    code = f"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads({threads})
from lammps_adv.models.contract import load, periodic_input, plain_execution
from lammps_adv.lammps.structures import read_lammps_data
atoms = read_lammps_data({str(atoms)!r})
model = load({str(model_file)!r})
pos = atoms.get_positions()
inp = periodic_input(model, pos, atoms.cell.array, atoms.get_chemical_symbols())
ext = torch.tensor(pos[inp.image_of] + inp.offsets, requires_grad=True)
species, edges = torch.tensor(inp.species[inp.image_of]), torch.tensor(inp.edge_index)
best = float("inf")
with plain_execution():
    for r in range({rounds} + 1):          # the first is a warm-up
        t = time.perf_counter()
        e = model(ext, species, edges, inp.n)[:inp.n].sum()
        g, = torch.autograd.grad(e, ext)
        if r:
            best = min(best, time.perf_counter() - t)
f = np.zeros((inp.n, 3))
np.add.at(f, inp.image_of, -g.numpy())
json.dump({{"time_s": best, "energy": float(e), "forces": f.tolist()}}, sys.stdout)
"""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"lammps-adv evaluation failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def n2p2_call(exe: Path, model_dir: Path, structure: Path, threads: int, rounds: int) -> dict:
    out = model_dir / f"result_t{threads}.txt"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run([str(exe), str(model_dir), str(structure), str(rounds), str(out)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"n2p2 failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    words = proc.stdout.split()
    return {"time_s": float(words[words.index("best") + 1]),
            "neighbour_list_s": float(words[words.index("neighbour_list") + 1]),
            "energy": float(np.loadtxt(out, max_rows=1)),
            "forces": np.loadtxt(out, skiprows=1, ndmin=2).tolist()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--atoms", type=int, default=3000, help="glass size (multiple of 3)")
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    ap.add_argument("--rounds", type=int, default=3, help="evaluations timed; the fastest counts")
    ap.add_argument("--n2p2-src", default=os.environ.get("LAMMPS_ADV_N2P2_SRC"),
                    help="n2p2 source tree or git repository (default: $LAMMPS_ADV_N2P2_SRC)")
    args = ap.parse_args()
    if not args.n2p2_src:
        ap.error("no n2p2 source: set LAMMPS_ADV_N2P2_SRC (or --n2p2-src) to a checkout or git "
                 "repository of github.com/CompPhysVienna/n2p2")
    from lammps_adv.lammps.structures import read_lammps_data

    exe = build_n2p2(args.n2p2_src)
    glass = bench_glass(args.atoms)
    atoms = read_lammps_data(glass)
    atoms.wrap()
    model = without_baseline(SHIPPED)
    model_dir = write_n2p2(model, OUT / "n2p2_bp")
    structure = write_structure(atoms, model_dir / "input.data")
    n = len(atoms)
    print(f"host CPU: {cpu()}; glass {glass} ({n} atoms); model {SHIPPED.name} without its "
          f"baseline, in n2p2's format in {model_dir}; n2p2 {exe.parent.name}")
    rows, results = [], {}
    for threads in [int(t) for t in args.threads.split(",")]:
        ours = lammps_adv_call(model, glass, threads, args.rounds)
        theirs = n2p2_call(exe, model_dir, structure, threads, args.rounds)
        de = abs(ours["energy"] - theirs["energy"]) / n
        df = float(np.abs(np.array(ours["forces"]) - np.array(theirs["forces"])).max())
        ratio = ours["time_s"] / theirs["time_s"]
        results[threads] = {"lammps_adv_s": ours["time_s"], "n2p2_s": theirs["time_s"],
                            "n2p2_neighbour_list_s": theirs["neighbour_list_s"],
                            "ratio": ratio, "energy_diff_ev_per_atom": de,
                            "force_diff_ev_per_a": df, "energy_ev": ours["energy"]}
        print(f"  {threads} thread(s): lammps-adv {ours['time_s']:.3f} s, n2p2 "
              f"{theirs['time_s']:.3f} s (its neighbour list {theirs['neighbour_list_s']:.3f} s, "
              f"not counted); |dE| {de:.1e} eV/atom, max |dF| {df:.1e} eV/A", flush=True)
        rows += [(f"lammps-adv / n2p2 time, {threads} thread(s)", f"{ratio:.2f}x", "<= 1.0x",
                  ratio <= 1.0),
                 (f"energy agreement, {threads} thread(s)", f"{de:.1e} eV/atom", "<= 1e-8",
                  de <= 1e-8),
                 (f"force agreement, {threads} thread(s)", f"{df:.1e} eV/A", "<= 1e-8",
                  df <= 1e-8)]
    for name, value, goal, ok in rows:
        print(f"{name:42s} {value:>14s}   goal {goal:9s} {'ok' if ok else 'MISSED'}")
    (OUT / "bench_n2p2.json").write_text(json.dumps(
        {"host": cpu(), "atoms": n, "n2p2": exe.parent.name, "results": results}, indent=1))


if __name__ == "__main__":
    main()
