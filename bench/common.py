"""What the benchmarks share: the repository paths and one cache of silica glasses.

Every benchmark times the same glass for a given size (out/bench/glassN.data), so their
figures are comparable whichever ran first.
"""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "out" / "bench"
sys.path.insert(0, str(REPO))


def bench_glass(n: int) -> Path:
    """An n-atom SiO2 glass at 2.20 g/cm^3 (short BKS-DSF melt-quench), made once and cached.

    Sizes that are 8 times a cached-able size of at least 1000 atoms are the smaller glass
    tiled 2x2x2 (a 24000-atom melt-quench would take hours here)."""
    from lammps_adv.lammps.structures import (amorphous, data_atom_style, read_lammps_data,
                                              sort_species, write_lammps_data)
    path = OUT / f"glass{n}.data"
    if path.is_file():
        if data_atom_style(path) != "full":       # cached by a version before atom_style full
            write_lammps_data(path, read_lammps_data(path))
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    if n % 8 == 0 and n // 8 >= 1000 and n // 8 % 3 == 0:
        base = read_lammps_data(bench_glass(n // 8))
        print(f"  tiling the {n // 8}-atom glass 2x2x2 -> {path}", flush=True)
        write_lammps_data(path, sort_species(base.repeat((2, 2, 2))))
        return path
    print(f"  making a {n}-atom BKS-DSF glass (short melt-quench) -> {path}", flush=True)
    amorphous(n, potential="bks-dsf", out=path, seed=11, melt_ps=1.0, quench_ps=2.0)
    return path


def cpu() -> str:
    """The host's CPU model, for the line every benchmark prints with its times."""
    import platform
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def best(fn, rounds: int) -> float:
    """Best wall time (s) of ``rounds`` calls of ``fn`` (noisy hosts: the minimum)."""
    import time
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_step_time(run, seconds: float, rounds: int, min_steps: int = 2,
                   multiple: int = 1) -> tuple:
    """Fastest seconds per MD step of ``rounds`` blocks, each about ``seconds`` long, of a
    LAMMPS run driven by ``run(command)`` (after a warm-up); returns (seconds, steps per
    block). ``multiple``: block lengths are a multiple of it (e.g. a recording interval)."""
    import time
    warm = max(min_steps, multiple)
    run(f"run {warm}")                                   # set-up, TorchScript warm-up
    t0 = time.perf_counter()
    run(f"run {warm} pre no post no")
    per_step = (time.perf_counter() - t0) / warm
    steps = max(warm, min(5000, int(seconds / per_step) // multiple * multiple))
    fastest = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        run(f"run {steps} pre no post no")
        fastest = min(fastest, (time.perf_counter() - t0) / steps)
    return fastest, steps


def glass_parser(doc: str, atoms: int = 3000, rounds: int = 5):
    """The argument parser of a benchmark on one glass: --atoms and --rounds."""
    import argparse
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atoms", type=int, default=atoms, help=f"glass size (default {atoms})")
    ap.add_argument("--rounds", type=int, default=rounds,
                    help=f"rounds, best taken (default {rounds})")
    return ap

