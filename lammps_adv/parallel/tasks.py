"""Independent tasks spread over MPI sub-communicators (one LAMMPS instance per group)."""
from __future__ import annotations


def split_tasks(comm, n_tasks: int, ranks_per_task: int = 1):
    """Split ``comm`` into groups of ``ranks_per_task`` ranks and deal tasks out round-robin.

    Returns (sub_communicator, task indices of this rank's group, number of groups). Each
    task runs on one group exactly as it would in a serial run, so results do not depend on
    the number of ranks. Free the sub-communicator when done.
    """
    size = comm.Get_size()
    if ranks_per_task < 1 or size % ranks_per_task:
        raise ValueError(f"ranks per task ({ranks_per_task}) must divide the {size} MPI ranks")
    group = comm.Get_rank() // ranks_per_task
    n_groups = size // ranks_per_task
    sub = comm.Split(color=group, key=comm.Get_rank())
    return sub, list(range(group, n_tasks, n_groups)), n_groups
