"""Cost of recording adversarial measures during MD, and HDF5 write rates.

    .venv/bin/python bench/bench_recorder.py [--atoms 3000] [--steps 50] [--reference bks-dsf]

Runs inputs/nvt_glass.in (BKS-DSF, NVT 300 K) on a glass of --atoms atoms twice in this
process: plain (baseline) and under the recorder (``Recorder.file``, recording every step and
every 10 steps). Prints the cost per recorded step split into the driving step, the
reference evaluation, gathering the atoms by ID, the measures, the HDF5 write and the rest
(the Python callback at every step and the energy tally), and the ratio the goal is about:
everything except the reference evaluation, over an unrecorded step (goal <= 10 %).
Then the HDF5 write rates of the writer alone: scalar rows per second, frames in MB/s, and
one-row flushes per second (`--flush-every 1`, the setting for watching a run live: every
flush opens the file with SWMR-write access, writes and closes it), against the rows/s of
flushing every 100 rows.
The recorder's own cost is measured by Python timers around its callback (all of it but
the reference evaluation), against the unrecorded step from LAMMPS' "Loop time"; the
wall-clock difference of the two runs is printed too (noisy on a shared machine; it also
holds the energy tally on recorded steps). The glass is made once (short melt-quench) and
cached in out/bench/.
"""
import argparse
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from common import REPO, bench_glass
DECK = REPO / "inputs" / "nvt_glass.in"


def loop_time(log: Path) -> float:
    return sum(float(x) for x in re.findall(r"Loop time of ([0-9.e+-]+) on", log.read_text()))


def run_deck_timed(data, steps, tmp, reference=None, every=1, tag="base"):
    from lammps_adv.lammps.engine import open_lammps
    from lammps_adv.recorder import Recorder
    log = tmp / f"{tag}.log"
    args = ["-var", "data", str(data), "-var", "steps", str(steps), "-var", "out", "/dev/null"]
    lmp = open_lammps(log=str(log), args=args)
    try:
        if reference is None:
            lmp.file(str(DECK))
            return loop_time(log), None
        with Recorder(lmp, reference, out=tmp / f"{tag}.h5", every=every, frames_every=0,
                      progress=False, provenance={"deck": DECK.read_text()}) as rec:
            rec.file(DECK)
            timings, n = dict(rec.timings), rec.n_records
        return loop_time(log), (timings, n)
    finally:
        lmp.close()


def bench_h5(n_atoms, tmp, rows=50000, frames=100):
    from lammps_adv.io.h5md import H5MDWriter
    from lammps_adv.io.schema import RECORDING_OBSERVABLES as OBSERVABLES
    w = H5MDWriter(tmp / "rows.h5", OBSERVABLES)
    w.start(["Si"] * n_atoms, frames=False)
    vals = {k: 1.0 for k in OBSERVABLES}
    t = time.perf_counter()
    for i in range(rows):
        w.add_row(i, 0.001 * i, vals)
        if (i + 1) % 100 == 0:
            w.flush()
    w.close()
    row_rate = rows / (time.perf_counter() - t)
    w = H5MDWriter(tmp / "frames.h5", OBSERVABLES)
    w.start(["Si"] * n_atoms, frames=True)
    rng = np.random.default_rng(0)
    pos, fa, fr = (rng.standard_normal((n_atoms, 3)) for _ in range(3))
    cell = np.eye(3) * 30.0
    t = time.perf_counter()
    for i in range(frames):
        row = w.add_row(i, 0.001 * i, vals)
        w.add_frame(i, 0.001 * i, row, pos, fa, fr, cell)
        if (i + 1) % 10 == 0:
            w.flush()
    w.close()
    dt = time.perf_counter() - t
    mbytes = frames * (3 * n_atoms * 3 * 8 + 9 * 8 + 8) / 1e6
    w = H5MDWriter(tmp / "live.h5", OBSERVABLES)
    w.start(["Si"] * n_atoms, frames=False)
    t = time.perf_counter()
    for i in range(300):
        w.add_row(i, 0.001 * i, vals)
        w.flush()
    w.close()
    return row_rate, mbytes / dt, 300 / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atoms", type=int, default=3000, help="glass size, a multiple of 3 (default 3000)")
    ap.add_argument("--steps", type=int, default=50, help="MD steps per timing (default 50)")
    ap.add_argument("--reference", default="bks-dsf", help="reference model (default bks-dsf)")
    ap.add_argument("--repeat", type=int, default=2, help="timings repeated, best taken (default 2)")
    args = ap.parse_args()
    data = bench_glass(args.atoms)
    steps = args.steps
    everies = (1, 10)
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        base, rec = [], {e: [] for e in everies}
        for r in range(args.repeat):              # interleaved: the machine is shared
            base.append(run_deck_timed(data, steps, tmp)[0] / steps)
            for e in everies:
                rec[e].append(run_deck_timed(data, steps, tmp, args.reference, e, f"rec{e}_{r}"))
        base = min(base)
        print(f"{args.atoms}-atom glass, inputs/nvt_glass.in (BKS-DSF, NVT 300 K), {steps} steps, "
              f"reference {args.reference}, 1 MPI rank, best of {args.repeat}")
        print(f"unrecorded step: {1000 * base:.2f} ms")
        ratios = {}
        for e in everies:
            loop, (tm, n) = min(rec[e], key=lambda t: t[0] - t[1][0]["reference"])
            per = {k: 1000 * tm[k] / n for k in ("reference", "gather", "measures", "write")}
            # everything the recorder does in Python except the reference, per MD step
            direct = (tm["callback"] - tm["reference"]) / steps
            wall = (loop - tm["reference"] * (n - 1) / n) / steps - base
            ratios[e] = direct / base
            print(f"\nrecording every {e} step(s): {n} records")
            print(f"  {'per recorded step':26s} {'ms':>9s}")
            print(f"  {'driving step (unrecorded)':26s} {1000 * base:9.3f}")
            print(f"  {'reference evaluation':26s} {per['reference']:9.3f}")
            print(f"  {'gather by atom ID':26s} {per['gather']:9.3f}")
            print(f"  {'measures':26s} {per['measures']:9.3f}")
            print(f"  {'HDF5 write (buffered)':26s} {per['write']:9.3f}")
            print(f"  {'callback, all but ref.':26s} {1000 * direct * steps / n:9.3f}"
                  f"   (= {1000 * direct:.3f} ms per MD step)")
            print(f"  recorder without the reference: {100 * ratios[e]:.2f} % of an unrecorded step "
                  f"(Python timers); wall-clock difference {100 * wall / base:+.1f} % (noisy)")
        row_rate, frame_rate, flush_rate = bench_h5(args.atoms, tmp)
    print(f"\nHDF5 scalar rows (13 observables, flush every 100): {row_rate:,.0f} rows/s")
    print(f"HDF5 frames ({args.atoms} atoms, positions + 2 force sets + box): {frame_rate:.1f} MB/s")
    print(f"HDF5 one-row flushes (--flush-every 1, SWMR-write open each): {flush_rate:,.0f} "
          f"rows/s, {row_rate / flush_rate:.0f}x fewer than flushing every 100")
    print("ratio recorded/unrecorded step without the reference (goal <= 1.10): "
          + ", ".join(f"every {e}: {1 + ratios[e]:.3f}" for e in everies))

if __name__ == "__main__":
    main()
