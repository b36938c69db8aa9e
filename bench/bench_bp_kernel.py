"""Behler-Parrinello energy+forces: the fused C++ kernel against the pure-torch path.

    .venv/bin/python bench/bench_bp_kernel.py [--sizes 324,3000,24000] [--threads 2]
                                              [--rounds 3] [--baseline-upto 3000] [--model-file F]

For SiO2 glasses (out/bench/glassN.data, shared with the other benchmarks) one energy+forces
evaluation of the default BP network (8 A cutoff, 82 symmetry functions, MLP 30-30, random
weights: the cost does not depend on them), best of --rounds, each case in a fresh process
with --threads torch threads. Printed per size: wall time (s) of the whole evaluation and of
its periodic graph (KD-tree, Python), peak memory (max RSS, MB), angular pairs (pairs of
edges of one centre, before the r_jk < cutoff test), ns per pair per thread, and the
speed-up over the pure-torch path (``model.fused = False``, the implementation before the
kernel) for sizes up to --baseline-upto. Then the scaling exponent of time with atom count
(least squares on log-log). Goals (issue #12): 3000 atoms < 1 s and < 1 GB on 2 threads,
24000 atoms < 10 s. Last, one force-training step (energy + force loss of a batch of
--train-batch 192-atom glasses, 6 A cutoff, gradient with respect to the weights) on the
kernel against the pure-torch path. Then the operators alone (no graph around them): the
triplets whose r_jk < cutoff (exact count), torch.ops.lammps_adv.bp_features with its gradient
pass (training's operator) and bp_energies with dE/dvec (inference's: features, MLPs and
gradient in one scan), and ns per triplet per thread (issue #27's goal, inference: <= 10);
beside them the call of an exported model file (--model-file, default the shipped
potentials/bp_bks_dsf.pt) as pair_style torchscript makes it (forward on the local atoms'
edges sorted by centre, autograd forces) and its time outside the inference operator (edges,
baseline, autograd). Results also go to out/bench/bench_bp_kernel.json.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from common import OUT, REPO, bench_glass, best, cpu


def worker(data: str, fused: bool, threads: int, rounds: int) -> dict:
    import torch
    torch.set_num_threads(threads)
    from lammps_adv.models.bp import BehlerParrinello
    from lammps_adv.models.contract import evaluate, periodic_input
    from lammps_adv.lammps.structures import read_lammps_data
    atoms = read_lammps_data(data)
    torch.manual_seed(0)
    model = BehlerParrinello().eval()
    model.fused = fused
    args = (atoms.get_positions(), atoms.cell.array, atoms.get_chemical_symbols())
    t = time.perf_counter()
    inp = periodic_input(model, *args)
    graph_s = time.perf_counter() - t
    counts = np.bincount(inp.edge_index[0], minlength=inp.n).astype(np.float64)
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        energy, forces = evaluate(model, *args).values()
        best = min(best, time.perf_counter() - t)
    return {"time_s": best, "graph_s": graph_s, "energy": energy,
            "fmax": float(np.abs(forces).max()), "edges": int(inp.edge_index.shape[1]),
            "pairs": float((counts * (counts - 1) / 2).sum()),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def model_call(model_file: str, x, inp, rounds: int) -> float:
    """Best time (s) of the exported model's call as the LAMMPS plugin makes it: forward on
    the local atoms' edges (sorted by centre) of the periodic graph, forces by autograd."""
    import torch
    sm = torch.jit.load(model_file)
    pos = torch.from_numpy(x[inp.image_of] + inp.offsets)
    species = torch.from_numpy(inp.species[inp.image_of])
    edges = torch.from_numpy(inp.edge_index)
    edges = edges[:, edges[0] < inp.n]
    edges = edges[:, torch.argsort(edges[0], stable=True)].contiguous()

    def call():
        p = pos.clone().requires_grad_(True)
        return torch.autograd.grad(sm(p, species, edges, inp.n)[:inp.n].sum(), p)

    call()                                                           # warm-up
    return best(call, rounds)


def operator_only(data: str, threads: int, rounds: int, model_file: str) -> dict:
    """The features operator alone on the glass: forward and gradient pass, best of rounds
    each, and the exact number of triplets (j < k of one centre) with r_jk < cutoff."""
    import torch
    torch.set_num_threads(threads)
    from lammps_adv.models.bp import BehlerParrinello
    from lammps_adv.models.contract import periodic_input
    from lammps_adv.lammps.structures import read_lammps_data
    atoms = read_lammps_data(data)
    torch.manual_seed(0)
    m = BehlerParrinello().eval()
    x = atoms.get_positions()
    inp = periodic_input(m, x, atoms.cell.array, atoms.get_chemical_symbols())
    pos = torch.from_numpy(x[inp.image_of] + inp.offsets)
    species = torch.from_numpy(inp.species[inp.image_of])
    ctr, nbr, _, _ = m._local_edges(pos, torch.from_numpy(inp.edge_index), inp.n)
    vec = (pos[nbr] - pos[ctr]).contiguous().requires_grad_(True)
    v, o = vec.detach().numpy(), np.concatenate([[0], np.cumsum(np.bincount(ctr, minlength=inp.n))])
    passing = 0
    for i in range(inp.n):
        e = v[o[i]:o[i + 1]]
        d2 = ((e[:, None, :] - e[None, :, :]) ** 2).sum(-1)
        passing += int(np.triu(d2 < m.cutoff ** 2, 1).sum())
    weights = torch.randn(inp.n, m.n_features, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(1))
    torch.autograd.grad(m._fused_features(vec, ctr, species[nbr], inp.n), vec, weights)  # warm-up
    fwd = bwd = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        g = m._fused_features(vec, ctr, species[nbr], inp.n)
        fwd = min(fwd, time.perf_counter() - t)
        t = time.perf_counter()
        torch.autograd.grad(g, vec, weights)
        bwd = min(bwd, time.perf_counter() - t)
    # inference: bp_energies, energies and (autograd) dE/dvec in one call
    sp = species[nbr]
    offsets = torch.from_numpy(o)
    def energies_and_gradient():
        e = torch.ops.lammps_adv.bp_energies(
            vec, offsets, sp, species[:inp.n], m.radial_etas, m.angular_etas, m.lambdas,
            m.zetas, m.pair_index, m.pair_weight, m.cutoff, m.feature_mean, m.feature_std,
            m._linear_layers(), m.activation_code, m.energy_scale, m.energy_shift)
        return torch.autograd.grad(e.sum(), vec)
    energies_and_gradient()                                          # warm-up
    infer = best(energies_and_gradient, rounds)
    call = model_call(model_file, x, inp, rounds)
    return {"passing_triplets": passing, "forward_s": fwd, "gradient_s": bwd,
            "ns_per_triplet_thread": (fwd + bwd) / passing * 1e9 * threads,
            "inference_s": infer, "inference_ns_per_triplet_thread": infer / passing * 1e9 * threads,
            "model_call_s": call, "outside_s": call - infer}


def training_step(fused: bool, batch: int, rounds: int) -> float:
    """Best time (s) of one force-training step: loss of energies and forces, backward to
    the weights (second derivatives through the features' gradient pass)."""
    import torch
    from lammps_adv.models.bp import BehlerParrinello
    from lammps_adv.training.train import item, loss_terms
    from lammps_adv.models.contract import evaluate
    from lammps_adv.lammps.structures import read_lammps_data
    atoms = read_lammps_data(bench_glass(192))
    torch.manual_seed(0)
    model = BehlerParrinello(cutoff=6.0).train()
    model.fused = fused
    x, cell, names = atoms.get_positions(), atoms.cell.array, atoms.get_chemical_symbols()
    e, f = evaluate(BehlerParrinello(cutoff=6.0).eval(), x, cell, names).values()
    items = [item(model, x + 0.01 * k, cell, names, e, f) for k in range(batch)]
    weights = [q for q in model.parameters() if q.requires_grad]
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        loss, _, _ = loss_terms(model, items, 1.0, create_graph=True)
        loss.backward(inputs=weights)
        best = min(best, time.perf_counter() - t)
    return best


def run_case(n: int, fused: bool, threads: int, rounds: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", str(bench_glass(n)), str(int(fused)),
           str(threads), str(rounds)]
    env = dict(os.environ, OMP_WAIT_POLICY="passive", OMP_NUM_THREADS=str(threads))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["?"])[-1]
        return {"status": f"failed: {tail}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="324,3000,24000", help="atom counts (default 324,3000,24000)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="evaluations per case; best kept")
    ap.add_argument("--baseline-upto", type=int, default=3000,
                    help="largest size also timed with the pure-torch path (default 3000)")
    ap.add_argument("--train-batch", type=int, default=8,
                    help="configurations in the force-training step (default 8)")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--model-file", default=str(REPO / "potentials" / "bp_bks_dsf.pt"),
                    help="exported BP model whose call is timed beside the operators "
                         "(default: the shipped potentials/bp_bks_dsf.pt)")
    ap.add_argument("--operator-worker", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        data, fused, threads, rounds = a.worker
        print(json.dumps(worker(data, bool(int(fused)), int(threads), int(rounds))))
        return 0
    if a.operator_worker:
        data, threads, rounds, model_file = a.operator_worker
        print(json.dumps(operator_only(data, int(threads), int(rounds), model_file)))
        return 0
    sizes = [int(s) for s in a.sizes.split(",")]
    rows = []
    print(f"BP energy+forces, default parameters, {a.threads} threads, best of {a.rounds}")
    print(f"{'atoms':>6} {'time s':>8} {'graph s':>8} {'peak MB':>8} {'pairs':>11} "
          f"{'ns/pair/thr':>11} {'torch s':>8} {'speed-up':>8}")
    for n in sizes:
        r = run_case(n, True, a.threads, a.rounds)
        if "status" in r:
            print(f"{n:>6} {r['status']}")
            continue
        r["atoms"] = n
        r["ns_per_pair_thread"] = r["time_s"] / r["pairs"] * 1e9 * a.threads
        if n <= a.baseline_upto:
            b = run_case(n, False, a.threads, 1 if n > 1000 else a.rounds)
            if "status" not in b:
                r["torch_s"] = b["time_s"]
                r["torch_peak_mb"] = b["peak_mb"]
                r["speedup"] = b["time_s"] / r["time_s"]
                r["energy_rel_diff"] = abs(b["energy"] - r["energy"]) / abs(b["energy"])
        rows.append(r)
        tt = f"{r['torch_s']:8.2f} {r['speedup']:7.1f}x" if "speedup" in r else f"{'-':>8} {'-':>8}"
        print(f"{n:>6} {r['time_s']:8.3f} {r['graph_s']:8.3f} {r['peak_mb']:8.0f} "
              f"{r['pairs']:11.3g} {r['ns_per_pair_thread']:11.1f} {tt}", flush=True)
    if len(rows) >= 2:
        slope = np.polyfit(np.log([r["atoms"] for r in rows]), np.log([r["time_s"] for r in rows]), 1)[0]
        print(f"scaling exponent (time ~ atoms^k): k = {slope:.2f}")
    else:
        slope = None
    import torch
    torch.set_num_threads(a.threads)
    train = {"kernel_s": training_step(True, a.train_batch, a.rounds),
             "torch_s": training_step(False, a.train_batch, 2)}
    train["speedup"] = train["torch_s"] / train["kernel_s"]
    print(f"force-training step, {a.train_batch} x 192 atoms (6 A): kernel {train['kernel_s']:.3f} s, "
          f"pure torch {train['torch_s']:.3f} s, speed-up {train['speedup']:.1f}x")
    ops = []
    print(f"\nthe operators alone: bp_features + its gradient pass (training), and bp_energies "
          f"+ dE/dvec (inference: what LAMMPS runs), {a.threads} threads, best of {a.rounds}; "
          f"host CPU: {cpu()}; model call: {a.model_file}")
    print(f"{'atoms':>6} {'triplets':>11} {'forward s':>10} {'gradient s':>11} {'ns/triplet/thr':>15} "
          f"{'inference s':>12} {'ns/triplet/thr':>15} {'model call s':>13} {'outside s':>10}")
    for n in sizes:
        cmd = [sys.executable, __file__, "--operator-worker", str(bench_glass(n)), str(a.threads),
               str(a.rounds), a.model_file]
        env = dict(os.environ, OMP_WAIT_POLICY="passive", OMP_NUM_THREADS=str(a.threads))
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            print(f"{n:>6} failed: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        o = dict(json.loads(p.stdout.strip().splitlines()[-1]), atoms=n)
        ops.append(o)
        print(f"{n:>6} {o['passing_triplets']:11.4g} {o['forward_s']:10.3f} {o['gradient_s']:11.3f} "
              f"{o['ns_per_triplet_thread']:15.1f} {o['inference_s']:12.3f} "
              f"{o['inference_ns_per_triplet_thread']:15.1f} {o['model_call_s']:13.3f} "
              f"{o['outside_s']:10.3f}", flush=True)
    if ops:
        worst = max(o["inference_ns_per_triplet_thread"] for o in ops)
        print(f"ns per triplet with r_jk < cutoff per thread, inference: {worst:.1f}   goal <= 10   "
              f"{'ok' if worst <= 10 else 'MISSED'}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_bp_kernel.json").write_text(json.dumps(
        {"threads": a.threads, "rounds": a.rounds, "cpu": cpu(), "rows": rows,
         "scaling_exponent": slope, "force_training_step": train, "operator": ops}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
