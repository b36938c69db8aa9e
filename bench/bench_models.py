"""Behler-Parrinello energy+forces: lammps-adv (PyTorch) vs JAX MD, and training throughput.

    .venv/bin/python bench/bench_models.py [--sizes 324,3000,24000] [--jax-sizes ...]
                                           [--timeout 1800] [--mem-limit-gb 16] [--no-jax]
                                           [--no-train]

For SiO2 glasses (2.20 g/cm^3, short BKS-DSF melt-quench, cached in out/bench/; a size that
is 8x a made one is its 2x2x2 tiling) it times one energy+forces evaluation of the BP
network with the default parameters (8 A cutoff, 82 symmetry functions, MLP 30-30; random
weights: the cost does not depend on them) and reads the peak memory (max RSS of a fresh
process per case, and its increase over the process after imports and set-up). Side by
side, JAX MD's ``energy.behler_parrinello_neighbor_list`` on the same structure: once with
its defaults, once with a Dense neighbour list, float64, CPU; a case that fails (out of
memory under --mem-limit-gb, or past --timeout) is reported as such. Then the training
throughput (configurations/s) of both models of ``lammps-adv train`` on the 96-atom dataset
of ``make models`` (made small here if missing). JAX MD is an optional extra:
``pip install -e '.[bench]'``. Results also go to out/bench/bench_models.json.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import OUT, REPO, bench_glass as glass


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------------- workers
def worker_torch(data: str, threads: int) -> dict:
    import numpy as np
    import torch
    if threads:
        torch.set_num_threads(threads)
    from lammps_adv.models.bp import BehlerParrinello
    from lammps_adv.models.contract import evaluate, periodic_input
    from lammps_adv.lammps.structures import read_lammps_data
    atoms = read_lammps_data(data)
    torch.manual_seed(0)
    model = BehlerParrinello().eval()
    pos, cell, names = atoms.get_positions(), atoms.cell.array, atoms.get_chemical_symbols()
    base = _rss_mb()
    t = time.perf_counter()
    inp = periodic_input(model, pos, cell, names)
    t_graph = time.perf_counter() - t
    t = time.perf_counter()
    e, f = evaluate(model, pos, cell, names).values()
    t_total = time.perf_counter() - t
    return {"energy": e, "fmax": float(np.abs(f).max()), "time_s": t_total,
            "graph_s": t_graph, "edges": int(inp.edge_index.shape[1]),
            "peak_mb": _rss_mb(), "base_mb": base, "threads": torch.get_num_threads()}


def worker_jax(data: str, fmt: str) -> dict:
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    from jax_md import energy, partition, space
    from lammps_adv.lammps.structures import read_lammps_data
    atoms = read_lammps_data(data)
    cell = atoms.cell.array
    if np.abs(cell - np.diag(np.diag(cell))).max() > 1e-9:
        raise SystemExit("JAX MD bench needs an orthorhombic box")
    box = jnp.array(np.diag(cell))
    R = jnp.array(atoms.get_positions() % np.diag(cell))
    species = jnp.array([0 if s == "Si" else 1 for s in atoms.get_chemical_symbols()])
    displacement, _ = space.periodic(box)
    kw = {} if fmt == "default" else {"format": partition.Dense}
    neighbor_fn, energy_fn = energy.behler_parrinello_neighbor_list(
        displacement, box, species=species, key=jax.random.PRNGKey(0), **kw)
    base = _rss_mb()
    t = time.perf_counter()
    nbrs = neighbor_fn.allocate(R)
    t_nbr = time.perf_counter() - t
    fn = jax.jit(jax.value_and_grad(lambda r: energy_fn(r, neighbor=nbrs)))
    t = time.perf_counter()
    e, g = fn(R)
    e = float(e)
    t_first = time.perf_counter() - t
    t = time.perf_counter()
    e2, g2 = fn(R)
    float(e2)
    t_second = time.perf_counter() - t
    return {"energy": e, "fmax": float(jnp.abs(g).max()), "time_s": t_second,
            "first_call_s": t_first, "neighbor_s": t_nbr, "peak_mb": _rss_mb(),
            "base_mb": base, "format": fmt, "jax": jax.__version__}


def run_case(kind: str, data: Path, timeout: float, mem_gb: float, fmt: str = "",
             threads: int = 0) -> dict:
    """One case in a fresh process (clean peak memory), with memory and time limits."""
    cmd = [sys.executable, __file__, "--worker", kind, "--data", str(data),
           "--threads", str(threads)]
    if fmt:
        cmd += ["--format", fmt]
    limit = int(mem_gb * 1024 ** 3)

    def set_limit():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, JAX_PLATFORMS="cpu")
    if threads == 1:
        env["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1")
        env["OMP_NUM_THREADS"] = "1"
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           preexec_fn=set_limit, env=env)
    except subprocess.TimeoutExpired:
        return {"status": f"timeout after {timeout:.0f} s"}
    wall = time.perf_counter() - t
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()
        why = next((ln for ln in reversed(tail) if "rror" in ln or "memory" in ln.lower()),
                   tail[-1] if tail else f"exit {p.returncode}")
        return {"status": f"failed (exit {p.returncode}): {why.strip()[:300]}", "wall_s": wall}
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["status"] = "ok"
    res["wall_s"] = wall
    return res


# ---------------------------------------------------------------------------- training
def training_throughput(epochs: int = 2) -> dict:
    from lammps_adv.io.dataset import load
    from lammps_adv.training.sampling import generate
    from lammps_adv.training.train import TrainSettings, train
    data = REPO / "out" / "models" / "bks_dsf_sio2.h5"
    if not data.is_file():
        data = OUT / "train_small.h5"
        if not data.is_file():
            print("  making a small training dataset -> " + str(data), flush=True)
            generate(data, glass_atoms=96, glass_temps=(300, 2000), quartz_temps=(300,),
                     frames=10, progress=False)
    ds = load(data)
    out = {"dataset": str(data.relative_to(REPO)), "n_train": len(ds.split("train")),
           "atoms_per_config": float(ds.natoms.mean())}
    gnn_kw = {"width": 32, "hidden": [32, 32]}          # as the shipped model
    for name, s in (("bp (energies)", TrainSettings(model="bp", epochs=epochs, batch_size=8)),
                    ("gnn (energies+forces)", TrainSettings(model="gnn", force_weight=1.0,
                                                           model_kwargs=gnn_kw,
                                                           epochs=epochs, batch_size=4))):
        t = time.perf_counter()
        card = train(data, OUT / f"tp_{s.model}.pt", s, progress=False, log=None,
                     write_card=False)
        perf = card["performance"]
        out[name] = {"configs_per_s": perf["throughput_configs_per_s"],
                     "preparation_s": perf["preparation_time_s"],
                     "total_s": round(time.perf_counter() - t, 1)}
        print(f"  {name:24s} {perf['throughput_configs_per_s']:10.1f} configurations/s "
              f"(preparation {perf['preparation_time_s']:.0f} s, e.g. BP symmetry "
              f"functions once per configuration)", flush=True)
    return out


# ---------------------------------------------------------------------------- main
def fmt_case(r: dict) -> str:
    if r.get("status") != "ok":
        return r.get("status", "?")
    return (f"{r['time_s']:8.2f} s  peak {r['peak_mb']:8.0f} MB "
            f"(+{r['peak_mb'] - r['base_mb']:.0f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="324,3000,24000", help="glass sizes (atoms)")
    ap.add_argument("--jax-sizes", default=None, help="sizes for JAX MD (default: --sizes)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="s per case (default 1800)")
    ap.add_argument("--mem-limit-gb", type=float, default=None,
                    help="address-space limit per case (default 70%% of available memory)")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--train-epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0,
                    help="threads per case, torch and XLA (default: their defaults; on a "
                    "shared machine 1 avoids oversubscription)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--format", default="default", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "torch":
        print(json.dumps(worker_torch(args.data, args.threads)))
        return
    if args.worker == "jax":
        print(json.dumps(worker_jax(args.data, args.format)))
        return

    sizes = [int(s) for s in args.sizes.split(",") if s]
    jax_sizes = sizes if args.jax_sizes is None else [int(s) for s in args.jax_sizes.split(",") if s]
    mem_gb = args.mem_limit_gb
    if mem_gb is None:
        avail = int(next(ln.split()[1] for ln in open("/proc/meminfo")
                         if ln.startswith("MemAvailable"))) / 1024 ** 2
        mem_gb = round(0.7 * avail, 1)
    have_jax = False
    if not args.no_jax:
        import importlib.util
        if importlib.util.find_spec("jax_md") is not None:    # not imported here: JAX
            have_jax = True                                    # threads and fork do not mix
        else:
            print("JAX MD not installed (pip install 'jax[cpu]' jax-md): its column is skipped")
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"BP energy+forces, default parameters (8 A, 82 features, 30-30); torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; memory limit per case "
          f"{mem_gb} GB, timeout {args.timeout:.0f} s")
    results = {"sizes": sizes, "mem_limit_gb": mem_gb, "cases": {}}
    for n in sorted(set(sizes) | (set(jax_sizes) if have_jax else set())):
        data = glass(n)
        row = {}
        if n in sizes:
            row["lammps-adv"] = run_case("torch", data, args.timeout, mem_gb,
                                         threads=args.threads)
            print(f"{n:6d} atoms  lammps-adv BP      {fmt_case(row['lammps-adv'])}", flush=True)
        if have_jax and n in jax_sizes:
            for fmt in ("default", "dense"):
                r = run_case("jax", data, args.timeout, mem_gb, fmt, threads=args.threads)
                row[f"jax-md ({fmt})"] = r
                print(f"{n:6d} atoms  JAX MD BP {fmt:8s} {fmt_case(r)}", flush=True)
            a, b = row.get("lammps-adv", {}), row.get("jax-md (dense)", {})
            if a.get("status") == "ok" and b.get("status") == "ok":
                print(f"        energy lammps-adv {a['energy']:.6g} / JAX MD {b['energy']:.6g} "
                      "(different random weights); time ratio JAX MD / lammps-adv "
                      f"{b['time_s'] / a['time_s']:.2f}, memory ratio "
                      f"{b['peak_mb'] / a['peak_mb']:.2f}", flush=True)
        results["cases"][n] = row
    if not args.no_train:
        print("training throughput (lammps-adv train, 2 epochs each):", flush=True)
        results["training"] = training_throughput(args.train_epochs)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_models.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {OUT / 'bench_models.json'}")


if __name__ == "__main__":
    main()
