"""Benchmark of pair_style torchscript/kk (the Kokkos twin) on the KOKKOS LAMMPS of
`make test-kokkos` (LAMMPS 29 Sep 2021 + Kokkos 3.4.01, OpenMP backend).

Atom-steps per second of NVE MD (1 fs) on the 3000-atom glass of bench/common.py, with 1 and
2 threads, each variant in a fresh `lmp` process, --rounds rounds interleaved, the fastest
round kept (the machine may be shared):
  native      LAMMPS' bks-dsf (coul/dsf + buck + mie/cut), without Kokkos (OpenMP threads do
              not apply: a serial run)
  native/kk   the same deck under -k on t N -sf kk (coul/dsf/kk, buck/kk; mie/cut has no
              Kokkos style and runs on the host)
  ts          pair_style torchscript (TorchScript bks-dsf), no Kokkos, N torch threads
  ts/kk       pair_style torchscript/kk under -k on t N -sf kk (N Kokkos and torch threads)

    python bench/bench_kokkos.py [--steps 20] [--rounds 2] [--atoms 3000]

Needs the Kokkos plugin build (`make test-kokkos` or tools/build_kokkos_plugin.sh).
"""
import argparse
import re
import sys
from pathlib import Path

from common import OUT, REPO, bench_glass

sys.path.insert(0, str(REPO / "tests" / "kokkos"))
from conftest import PLUGIN_DIR, KokkosLammps, strip_type_labels  # noqa: E402


def run(kk, data, pot, steps, threads, kokkos, cwd) -> float:
    """Atom-steps per second of `steps` NVE steps (after 5 warm-up steps)."""
    lines = ["units metal", "atom_style full", f"read_data {data}", *pot, "neighbor 2.0 bin",
             "velocity all create 300 5 dist gaussian", "fix nve all nve", "timestep 0.001",
             "thermo 1000", "run 5", f"run {steps}"]
    proc = kk.run(lines, cwd, kokkos=threads if kokkos else None, threads=threads)
    loops = re.findall(r"Loop time of (\S+) on \d+ procs for (\d+) steps with (\d+) atoms",
                       proc.stdout)
    t, n, atoms = loops[-1]
    if kokkos:
        assert "pair_style torchscript/kk" in proc.stdout or "torchscript" not in " ".join(pot)
    return int(atoms) * int(n) / float(t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--atoms", type=int, default=3000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    kk = KokkosLammps(PLUGIN_DIR)
    work = OUT / "kokkos"
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"glass{args.atoms}.data"
    data.write_text(Path(bench_glass(args.atoms)).read_text())
    strip_type_labels(data)
    from lammps_adv.models import bks_dsf
    model = bks_dsf.export(work / "bks_dsf.pt")
    native = [f"include {REPO / 'potentials' / 'bks_dsf.lmp'}"]
    ts = ["pair_style torchscript", f"pair_coeff * * {model} Si O"]

    variants = [("native", native, 1, False)]
    for t in (1, 2):
        variants += [(f"native/kk t{t}", native, t, True), (f"ts t{t}", ts, t, False),
                     (f"ts/kk t{t}", ts, t, True)]
    best = {}
    for r in range(args.rounds):
        for name, pot, t, kokkos in variants:
            rate = run(kk, data, pot, args.steps, t, kokkos, work)
            best[name] = max(best.get(name, 0.0), rate)
            print(f"  round {r + 1}  {name:14s} {rate:12.0f} atom-steps/s", flush=True)
    print(f"\nfastest of {args.rounds} rounds, {args.atoms}-atom glass, {args.steps} NVE steps, "
          f"KOKKOS LAMMPS {kk.entry.name}:")
    for name, _, _, _ in variants:
        print(f"  {name:14s} {best[name]:12.0f} atom-steps/s")
    for t in (1, 2):
        print(f"  t{t}: ts/kk / ts = {best[f'ts/kk t{t}'] / best[f'ts t{t}']:.2f}x, "
              f"ts/kk / native = {best[f'ts/kk t{t}'] / best['native']:.2f}x, "
              f"ts/kk / native/kk = {best[f'ts/kk t{t}'] / best[f'native/kk t{t}']:.2f}x")


if __name__ == "__main__":
    main()
