"""GFN-xTB labels per hour, 1 vs 2 MPI ranks, and the label cache's hit rate on a rerun.

    .venv/bin/python bench/bench_labelling.py [--configs 16] [--cells 2x2x1] [--reference xtb:GFN1]

Labels `--configs` rattled alpha-quartz supercells with `lammps-adv label` (one thread per
rank, each run with its own empty label cache): serially, then under `mpirun -np 2`, then
the 2-rank run again on its now filled cache. Prints labels/hour (labelling time as the
command reports it, start-up excluded), the speed-up of 2 ranks over 1, whether the labels
are bit-identical, and the cache hit rate of the rerun (goal: 100 %, zero new evaluations).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO  # noqa: E402

BIN = Path(sys.executable).parent
LINE = re.compile(r"(\d+) labels: (\d+) computed, (\d+) from the label cache, in ([\d.]+) s")


def label(args, src, out, cache, ranks):
    cmd = [str(BIN / "lammps-adv"), "label", str(src), "-o", str(out), "--reference",
           args.reference, "--label-cache", str(cache), "--quiet"]
    if ranks > 1:
        cmd = [str(BIN / "mpirun"), "-np", str(ranks)] + cmd
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"bench_labelling: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    n, computed, cached, seconds = LINE.search(proc.stdout).groups()
    return int(n), int(computed), int(cached), float(seconds), wall


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", type=int, default=16, help="configurations (default 16)")
    p.add_argument("--cells", default="2x2x1", help="quartz supercell (default 2x2x1: 36 atoms)")
    p.add_argument("--reference", default="xtb:GFN1", help="reference spec (default xtb:GFN1)")
    args = p.parse_args()
    import numpy as np
    from ase.io import write

    from lammps_adv.lammps.structures import quartz
    from lammps_adv.io.dataset import load
    cells = [int(x) for x in args.cells.split("x")]
    rng = np.random.default_rng(0)
    images = []
    for _ in range(args.configs):
        a = quartz(*cells)
        a.positions += rng.normal(0, 0.05, a.positions.shape)
        images.append(a)
    with tempfile.TemporaryDirectory(prefix="bench-labelling-") as tmp:
        tmp = Path(tmp)
        src = tmp / "configs.extxyz"
        write(str(src), images)
        print(f"{args.configs} rattled {len(images[0])}-atom alpha-quartz cells labelled by "
              f"{args.reference}, 1 thread per rank, empty label caches", flush=True)
        rates = {}
        for ranks in (1, 2):
            n, computed, cached, s, wall = label(args, src, tmp / f"r{ranks}.h5",
                                                tmp / f"cache{ranks}", ranks)
            rates[ranks] = 3600 * computed / s
            print(f"  {ranks} rank(s): {computed} computed in {s:.1f} s = {rates[ranks]:8.0f} "
                  f"labels/hour ({wall:.1f} s wall with start-up)", flush=True)
        a, b = load(tmp / "r1.h5"), load(tmp / "r2.h5")
        same = np.array_equal(a.energy, b.energy) and np.array_equal(a.forces, b.forces)
        n, computed, cached, s, wall = label(args, src, tmp / "again.h5", tmp / "cache2", 2)
        print(f"speed-up of 2 ranks over 1: {rates[2] / rates[1]:.2f}x")
        print(f"labels of 1 and 2 ranks bit-identical: {'yes' if same else 'NO'}")
        print(f"rerun on the filled cache (2 ranks): {computed} computed, {cached} read back: "
              f"hit rate {100 * cached / n:.0f} % (goal 100 %), {s:.2f} s ({wall:.1f} s wall)")


if __name__ == "__main__":
    main()
