"""bks-dsf and graph-network energy+forces: each speed-up against its own baseline, one run.

    .venv/bin/python bench/bench_model_paths.py [--atoms 3000] [--threads 1] [--rounds 5]

On the SiO2 glass of bench/common.py (out/bench/glassN.data), one energy+forces evaluation
of the model's forward + backward on a fixed periodic graph (the graph is built once, as
LAMMPS' neighbour list would be), best of --rounds, with --threads torch threads:

  bks-dsf   the fused kernel (torch.ops.lammps_adv.bks_dsf_pairs) against the same
            closed-form terms as torch operations (model.fused = False, the CUDA path)
  gnn       the shipped graph network (potentials/gnn_bks_dsf.pt) called inside
            plain_execution() against the TorchScript graph executor's optimisations on
  periodic  the graph network's energies_periodic (images take their cell atom's state:
            edges centred on cell atoms only, what Python's periodic evaluations call)
            against its contract forward on the graph with images (what LAMMPS calls);
            forces folded onto the cell atoms for the comparison

Each path is called 3 times first (the graph executor profiles its first runs and optimises
after), then rounds of the two paths of one model alternate, so load on a shared machine hits
both.
"""
import argparse
import time

import numpy as np

from common import REPO, bench_glass


def graph_input(model, data, local_only: bool = False):
    """Positions, species and edges of the glass with its images, as the model takes them, and
    n and image_of (the cell atom of each position); local_only: edges centred on cell atoms
    only (for energies_periodic)."""
    import torch
    from lammps_adv.models.contract import periodic_input
    from lammps_adv.lammps.structures import read_lammps_data
    atoms = read_lammps_data(data)
    inp = periodic_input(model, atoms.get_positions(), atoms.cell.array,
                         atoms.get_chemical_symbols(), local_only=local_only)
    pos = torch.from_numpy(atoms.get_positions()[inp.image_of] + inp.offsets)
    return (pos, torch.from_numpy(inp.species[inp.image_of]),
            torch.from_numpy(inp.edge_index), inp.n), torch.from_numpy(inp.image_of)


def energy_forces(model, pos, species, edges, n):
    import torch
    p = pos.clone().requires_grad_(True)
    e = model(p, species, edges, n)[:n].sum()
    (g,) = torch.autograd.grad(e, p)
    return float(e.detach()), g


def folded(model, data, periodic: bool):
    """A call giving (energy, forces on the cell atoms) of the graph network on the glass:
    through energies_periodic (cell-atom edges) or the contract forward (images with state)."""
    import torch
    (pos, species, edges, n), image_of = graph_input(model, data, local_only=periodic)

    def call():
        p = pos.clone().requires_grad_(True)
        e = (model.energies_periodic(p, species, edges, n, image_of) if periodic
             else model(p, species, edges, n)[:n]).sum()
        (g,) = torch.autograd.grad(e, p)
        return float(e.detach()), torch.zeros(n, 3, dtype=g.dtype).index_add(0, image_of, g)
    return call


def race(paths: dict, inputs, rounds: int) -> dict:
    """Best wall time of each path (alternating rounds); the paths must agree."""
    best = {k: float("inf") for k in paths}
    results = {}
    for call in paths.values():         # warm-up: the graph executor profiles its first runs
        for _ in range(3):
            call(*inputs)
    for _ in range(rounds):
        for name, call in paths.items():
            t = time.perf_counter()
            results[name] = call(*inputs)
            best[name] = min(best[name], time.perf_counter() - t)
    (e0, g0), (e1, g1) = results.values()
    assert abs(e1 - e0) <= 1e-10 * abs(e0), (e0, e1)
    assert float((g1 - g0).abs().max()) <= 1e-9, "the two paths disagree in forces"
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--atoms", type=int, default=3000, help="glass size (multiple of 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--rounds", type=int, default=5, help="evaluations per path; keep the best")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    from lammps_adv.models.bks_dsf import BKSDSF
    from lammps_adv.models.contract import load, plain_execution
    data = bench_glass(args.atoms)

    fused, plain = torch.jit.script(BKSDSF()), BKSDSF()
    plain.fused = False
    plain = torch.jit.script(plain)
    inputs, _ = graph_input(fused, data)
    bks = race({"kernel": lambda *a: energy_forces(fused, *a),
                "torch ops": lambda *a: energy_forces(plain, *a)}, inputs, args.rounds)

    gnn = load(REPO / "potentials" / "gnn_bks_dsf.pt")
    inputs_gnn, _ = graph_input(gnn, data)

    def gnn_plain(*a):
        with plain_execution():
            return energy_forces(gnn, *a)
    graph = race({"plain": gnn_plain, "optimised": lambda *a: energy_forces(gnn, *a)},
                 inputs_gnn, args.rounds)
    with plain_execution():
        cells = race({"periodic": folded(gnn, data, True), "forward": folded(gnn, data, False)},
                     (), args.rounds)

    print(f"{args.atoms}-atom glass, {args.threads} thread(s), best of {args.rounds}; "
          f"{inputs[2].shape[1]:,} edges (bks-dsf, 8 A), {inputs_gnn[2].shape[1]:,} (graph "
          f"network, 5 A, 2 rounds)")
    rows = [("bks-dsf: fused kernel", bks["kernel"], "torch ops (fused=False)", bks["torch ops"]),
            ("graph network: plain_execution", graph["plain"], "graph executor optimised",
             graph["optimised"]),
            ("graph network: energies_periodic", cells["periodic"], "forward, images with state",
             cells["forward"])]
    for name, t, base, t0 in rows:
        print(f"  {name:32s} {1e3 * t:9.1f} ms   {base:26s} {1e3 * t0:9.1f} ms   "
              f"speed-up {t0 / t:5.2f}x")


if __name__ == "__main__":
    main()
