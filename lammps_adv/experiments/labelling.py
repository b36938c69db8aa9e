"""Reference labels (energy, forces) of many configurations, spread over MPI groups.

Each configuration is labelled by exactly one group of ``ranks_per_task`` ranks, exactly as
in a serial run, so the labels do not depend on the number of ranks; every rank gets all of
them back, in the order given.
"""
from __future__ import annotations

from lammps_adv.calculators import get_calculator
from lammps_adv.experiments.parallel import split_tasks


def label(configs, reference: str, comm, ranks_per_task: int = 1, what: str = "labels") -> list:
    """[(positions, cell, names, source)] -> [dict(positions, cell, names, energy, forces,
    source)] labelled by the calculator spec ``reference``."""
    sub, mine, _ = split_tasks(comm, len(configs), ranks_per_task)
    done = {}
    try:
        with get_calculator(reference, comm=sub) as calc:
            for c in mine:
                pos, cell, names, source = configs[c]
                e, f = calc.evaluate(pos, cell, symbols=names, label=f"{source} ({what})")
                done[c] = {"positions": pos, "cell": cell, "names": list(names),
                           "energy": float(e), "forces": f, "source": source}
    finally:
        sub.Free()
    leader = comm.Get_rank() % ranks_per_task == 0
    parts = comm.allgather(done if leader else {})
    merged = {k: v for part in parts for k, v in part.items()}
    return [merged[c] for c in range(len(configs))]
