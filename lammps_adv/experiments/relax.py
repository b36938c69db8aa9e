"""Relax: relaxations driven by the approximate model in LAMMPS, recorded step by step.

Each configuration is relaxed with the approximate model (``min_style`` fire, cg or sd;
extra ``min_modify`` options passed through) while the recorder evaluates the reference at
every force evaluation, writing one HDF5 file per relaxation (``relax_0000.h5``, ...).

Under ``mpirun -np N`` the ranks are split into groups of ``ranks_per_relax`` (MPI
sub-communicators, one LAMMPS instance each) and the relaxations are dealt out round-robin;
each relaxation is computed exactly as in a serial run, so the files are identical.
"""
from __future__ import annotations

import sys
from pathlib import Path

from lammps_adv.core.alignment import NONE, check_mode
from lammps_adv.core.progress import bar as progress_bar
from lammps_adv.experiments.align import fit_parallel
from lammps_adv.lammps.system import LammpsSystem
from lammps_adv.parallel.mpi import mpi_comm
from lammps_adv.parallel.tasks import split_tasks
from lammps_adv.recorder import Recorder

MIN_STYLES = ("fire", "cg", "sd")


def relax(configs, approx: str, reference: str, out_dir: str | Path = "relax",
          min_style: str = "fire", steps: int = 200, ftol: float = 1e-4,
          min_modify: str = "", frames_every: int = 0, ranks_per_relax: int = 1,
          overwrite: bool = False, comm=None, progress: bool = True,
          align: str = "per-species") -> list[Path]:
    """Relax every configuration of ``configs`` [(positions, cell, names, source)].

    steps: maximum minimizer iterations; ftol: force tolerance (eV/A) of the minimizer;
    overwrite: replace relaxation files already in ``out_dir`` (else they are an error);
    align: "per-species" fits energy shifts of the approximate model on the starting
    configurations (lammps_adv.core.alignment), "none" compares raw energies.
    Returns the paths of the files written by this rank's group (all of them in serial).
    """
    from ase import Atoms
    if min_style not in MIN_STYLES:
        raise ValueError(f"min_style must be one of {', '.join(MIN_STYLES)}, not {min_style!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    check_mode(align)
    comm = comm or mpi_comm()
    alignment = fit_parallel(configs, approx, reference, comm, ranks_per_relax) \
        if align == "per-species" else NONE
    sub, mine, n_groups = split_tasks(comm, len(configs), ranks_per_relax)
    out_dir = Path(out_dir)
    if comm.Get_rank() == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    comm.Barrier()
    written = []
    bar = progress_bar(len(configs), f"relaxations ({n_groups} at a time)", "relax", progress, comm)
    try:
        for i in mine:
            pos, cell, names, source = configs[i][:4]
            out = out_dir / f"relax_{i:04d}.h5"
            atoms = Atoms(names, positions=pos, cell=cell, pbc=True)
            with LammpsSystem(atoms, approx, comm=sub) as system:
                provenance = {"experiment": "relax", "source": source, "min_style": min_style,
                              "min_modify": min_modify, "steps": steps, "ftol": ftol,
                              "config_index": i, "command_line": " ".join(sys.argv)}
                with Recorder(system.lmp, reference, out=out, approx=approx,
                              frames_every=frames_every, provenance=provenance,
                              overwrite=overwrite, alignment=alignment, comm=sub) as rec:
                    cmds = [f"min_style {min_style}"]
                    if min_modify:
                        cmds.append(f"min_modify {min_modify}")
                    rec.commands(cmds)
                    rec.command(f"minimize 0.0 {ftol} {steps} {10 * steps}")
            written.append(out)
            bar.update(n_groups)
    finally:
        bar.close()
        sub.Free()
    comm.Barrier()
    return written

