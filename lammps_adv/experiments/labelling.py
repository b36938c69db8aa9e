"""Reference labels (energy, forces) of many configurations, spread over MPI groups.

Each configuration is labelled by exactly one group of ``ranks_per_task`` ranks, exactly as
in a serial run, so the labels do not depend on the number of ranks; every rank gets all of
them back, in the order given. Calculators that cache labels on disk (GFN-xTB, see
``label_cache``) read a label back instead of computing it again, so an interrupted
labelling resumes where it stopped and a rerun computes nothing.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from lammps_adv.calculators import get_calculator, spec_text
from lammps_adv.core.progress import bar as progress_bar
from lammps_adv.io.configs import load_configs
from lammps_adv.io.dataset import Dataset, from_frames, load
from lammps_adv.io.files import check_writable
from lammps_adv.parallel.mpi import mpi_comm
from lammps_adv.parallel.tasks import split_tasks


def label(configs, reference, comm, ranks_per_task: int = 1, what: str = "labels",
          progress: bool = False, stats: dict | None = None) -> list:
    """[(positions, cell, names, source)] -> [dict(positions, cell, names, energy, forces,
    source)] labelled by the calculator spec ``reference``.

    progress: a bar with an ETA on rank 0 (it counts the labels of rank 0's group times the
    number of groups). stats: filled, on every rank, with the totals over all ranks:
    labels, computed (real reference evaluations), cached (read back from the disk cache),
    seconds, groups, and the reference's description and settings."""
    sub, mine, n_groups = split_tasks(comm, len(configs), ranks_per_task)
    done = {}
    t0 = time.perf_counter()
    bar = progress_bar(len(configs), what, "label", progress, comm)
    info = {}
    try:
        with get_calculator(reference, comm=sub) as calc:
            for k, c in enumerate(mine):
                pos, cell, names, source = configs[c][:4]
                e, f = calc.evaluate(pos, cell, symbols=names, label=f"{source} ({what})")
                done[c] = {"positions": pos, "cell": cell, "names": list(names),
                           "energy": float(e), "forces": f, "source": source}
                # rank 0's group stands for all: k + 1 rounds of n_groups labels, at most all
                bar.update(min(len(configs), (k + 1) * n_groups) - min(len(configs), k * n_groups))
            counts = _counts(calc)
            info = {"reference_description": calc.description,
                    "reference_settings": getattr(calc, "settings", None)}
    finally:
        bar.close()
        sub.Free()
    leader = comm.Get_rank() % ranks_per_task == 0
    parts = comm.allgather(done if leader else {})
    merged = {k: v for part in parts for k, v in part.items()}
    if stats is not None:
        totals = comm.allreduce(np.array(counts if leader else (0, 0), dtype=np.int64))
        stats.update(labels=len(configs), computed=int(totals[0]), cached=int(totals[1]),
                     seconds=comm.allreduce(time.perf_counter() - t0, op=_max()),
                     groups=n_groups, **info)
    return [merged[c] for c in range(len(configs))]


def _counts(calc) -> tuple[int, int]:
    """(evaluations by the reference itself, labels read from the disk cache)."""
    if hasattr(calc, "n_backend"):
        return calc.n_backend, calc.n_cache_hits
    return calc.n_computed, 0


def _max():
    from mpi4py import MPI
    return MPI.MAX


def relabel(path, out, reference, split: str | None = None, limit: int | None = None,
            every: int = 1, ranks_per_task: int = 1, comm=None, progress: bool = True) -> tuple:
    """Label the configurations of a dataset or structure file with ``reference`` and write
    them as a dataset (lammps_adv.io.dataset): the source's splits, temperatures and
    sources are kept when it is a dataset of all its configurations. Returns (dataset,
    stats)."""
    comm = comm or mpi_comm()
    path = Path(path)
    if comm.Get_rank() == 0:
        check_writable(Path(out), "label file")     # fails before hours of labelling
    configs = load_configs(path, split=split, limit=limit, every=every)
    stats: dict = {}
    name = spec_text(reference)
    labelled = label(configs, reference, comm, ranks_per_task, what=f"labels ({name})",
                     progress=progress, stats=stats)
    source_ds = load(path) if path.suffix in (".h5", ".hdf5") else None
    species = list(source_ds.species) if source_ds is not None else \
        sorted({s for c in labelled for s in c["names"]})
    frames = []
    for k, c in enumerate(labelled):
        fr = {**c, "stress": None}
        if source_ds is not None:      # "file.h5#i": keep where it came from
            i = int(c["source"].rsplit("#", 1)[1])
            fr["temperature"] = float(source_ds.temperature[i])
            fr["source"] = source_ds.source[i] or c["source"]
            fr["unit"] = source_ds.unit[i] or c["source"]
        else:                          # a structure file: each frame its own unit
            fr["unit"] = c["source"]
        frames.append(fr)
    gen = {"kind": "relabel", "from": path.name, "split": split, "limit": limit,
           "reference_description": stats.get("reference_description"),
           "reference_settings": stats.get("reference_settings"),
           "ranks": comm.Get_size(), "ranks_per_task": ranks_per_task,
           # how the configurations were made (the source dataset's own recipe)
           "source_generator": source_ds.attrs.get("generator") if source_ds is not None else None,
           "source_reference": source_ds.attrs.get("reference") if source_ds is not None else None}
    ds = from_frames(frames, species, {"reference": name, "generator": gen})
    if isinstance(source_ds, Dataset) and split is None and limit is None:
        ds.splits = dict(source_ds.splits)
    if comm.Get_rank() == 0:
        ds.save(out)
    ds.path = str(out)
    return ds, stats


def describe_stats(stats: dict) -> str:
    """One line: how many labels were computed, read from the cache, and how fast."""
    n, s = stats["labels"], stats["seconds"]
    rate = f", {3600 * stats['computed'] / s:.0f} computed labels/hour" if stats["computed"] and s > 0 else ""
    return (f"{n} labels: {stats['computed']} computed, {stats['cached']} from the label "
            f"cache, in {s:.1f} s on {stats['groups']} MPI group(s){rate}")
