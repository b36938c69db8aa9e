"""Relax: relaxations driven by the approximate model in LAMMPS, recorded step by step.

Each configuration is relaxed with the approximate model (``min_style`` fire, cg or sd;
extra ``min_modify`` options passed through) while the recorder evaluates the reference at
every force evaluation, writing one HDF5 file per relaxation (``relax_0000.h5md``, ...).

Convergence is one criterion, the one ASE and most relaxation studies use: the largest
per-atom force norm max_i |F_app,i| below ``fmax`` (eV/A; LAMMPS ``min_modify norm max``
with the force tolerance ``fmax`` and no energy criterion), within ``steps`` minimizer
steps. Each file's /parameters says whether it got there: ``converged``,
``minimizer_steps`` (steps done) and ``final_fmax_eV_per_A`` (max_i |F_app,i| at the end).
A relaxation stopped by the cap is unconverged and is reported with its step count.

Under ``mpirun -np N`` the ranks are split into groups of ``ranks_per_relax`` (MPI
sub-communicators, one LAMMPS instance each) and the relaxations are dealt out round-robin;
each relaxation is computed exactly as in a serial run, so the files are identical.
"""
from __future__ import annotations

import sys
from pathlib import Path

from lammps_adv.core.adversarial import max_atom_norm
from lammps_adv.core.alignment import NONE, Alignment, check_fit, check_mode
from lammps_adv.core.configuration import Configuration
from lammps_adv.core.progress import bar as progress_bar
from lammps_adv.experiments.align import fit_parallel
from lammps_adv.io.files import refuse_existing, remove_earlier_outputs
from lammps_adv.io.schema import RECORDING_SUFFIX
from lammps_adv.lammps.system import LammpsSystem, minimize_commands
from lammps_adv.parallel.mpi import mpi_comm
from lammps_adv.parallel.tasks import split_tasks
from lammps_adv.recorder import Recorder

MIN_STYLES = ("fire", "cg", "sd")


def relax(configs, approx: str, reference: str, out_dir: str | Path = "relax",
          min_style: str = "fire", steps: int = 2000, fmax: float = 1e-3,
          min_modify: str = "", frames_every: int = 0, ranks_per_relax: int = 1,
          overwrite: bool = False, comm=None, progress: bool = True,
          align: str = "per-species", alignment: Alignment | None = None) -> list[Path]:
    """Relax every configuration of ``configs`` [(positions, cell, names, source)].

    steps: maximum minimizer steps (the cap); fmax: convergence when no atom feels a force
    above it (eV/A, per-atom norm of the driving model's force; ``min_modify`` must not set
    ``norm``); min_modify: further LAMMPS min_modify options (e.g. "dmax 0.05");
    overwrite: replace the relaxation recordings in ``out_dir``, every earlier one of them
    (``files.remove_earlier_outputs``; else one this run would write is an error);
    alignment: applied unchanged when given (fitted on an independent set, read from an
    earlier result or given by the user); else ``align``: "per-species" fits energy shifts
    of the approximate model on the starting configurations (recorded as self-fitted,
    lammps_adv.core.alignment), "none" compares raw energies.
    Returns the paths of the files written by this rank's group (all of them in serial).
    """
    from ase import Atoms
    if min_style not in MIN_STYLES:
        raise ValueError(f"min_style must be one of {', '.join(MIN_STYLES)}, not {min_style!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not fmax > 0:
        raise ValueError(f"fmax must be a positive force (eV/A), got {fmax}")
    if "norm" in min_modify.split():
        raise ValueError("--min-modify must not set norm: --fmax is the largest per-atom "
                         "force norm (min_modify norm max)")
    check_mode(align)
    out_dir = Path(out_dir)
    if not overwrite:            # every rank sees the same files: all fail alike, at once
        refuse_existing(out_dir / f"relax_{i:04d}{RECORDING_SUFFIX}" for i in range(len(configs)))
    comm = comm or mpi_comm()
    if alignment is None and align == "per-species":
        check_fit([c[2] for c in configs])        # no degree of freedom: fails before any work
        alignment = fit_parallel(configs, approx, reference, comm, ranks_per_relax)
    alignment = alignment or NONE
    sub, mine, n_groups = split_tasks(comm, len(configs), ranks_per_relax)
    if comm.Get_rank() == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        if overwrite:
            remove_earlier_outputs(out_dir, "relax_*")
    comm.Barrier()
    written = []
    bar = progress_bar(len(configs), f"relaxations ({n_groups} at a time)", "relax", progress, comm)
    try:
        for i in mine:
            start = Configuration(*configs[i])
            pos, cell, names, source = start[:4]
            out = out_dir / f"relax_{i:04d}{RECORDING_SUFFIX}"
            atoms = Atoms(names, positions=pos, cell=cell, pbc=True)
            with LammpsSystem(atoms, approx, comm=sub) as system:
                provenance = {"experiment": "relax", "source": source, "min_style": min_style,
                              "min_modify": min_modify, "steps": steps, "fmax_eV_per_A": fmax,
                              "config_index": i, "command_line": " ".join(sys.argv),
                              # what the report's intervals resample; K of its MD run
                              "independent_unit": start.unit or source,
                              "start_temperature_K": float(start.temperature)}
                with Recorder(system.lmp, reference, out=out, approx=approx,
                              frames_every=frames_every, provenance=provenance,
                              overwrite=overwrite, alignment=alignment, comm=sub) as rec:
                    *setup, run = minimize_commands(min_style, fmax, steps, min_modify)
                    rec.commands(setup)
                    rec.command(run)
                    rec.set_parameters(outcome(system, fmax))
            written.append(out)
            bar.update(n_groups)
    finally:
        bar.close()
        sub.Free()
    comm.Barrier()
    return written


def outcome(system: LammpsSystem, fmax: float) -> dict:
    """How a minimization ended (collective): steps done (LAMMPS counts from 0 in the fresh
    instance), the largest per-atom |F_app| (eV/A) of the final configuration and whether it
    is within ``fmax``."""
    final = max_atom_norm(system.forces())
    return {"converged": bool(final <= fmax),
            "minimizer_steps": int(system.lmp.extract_global("ntimestep")),
            "final_fmax_eV_per_A": final}
