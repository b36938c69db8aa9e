"""Model-driven sampling: NVT MD and relaxations driven by the approximate model in LAMMPS,
recorded step by step against the reference.

The probe and the recorded runs of ``lammps-adv run`` usually start from configurations the
reference made; the study's argument is about the configurations the approximate model
visits when it drives the dynamics itself. For every glass and temperature, ``driven``
runs NVT MD driven by ``approx`` (Nose-Hoover, as ``inputs/nvt_glass.in``: velocities
drawn at T with zero total momentum and angular momentum, ``fix nvt`` damping 100
timesteps), recorded against ``reference`` every ``every`` steps and at step 0, one file
per run, ``md_T{T}_{k:02d}.h5md`` (k: the glass). Then, with ``relax``, the end configuration
of every run is relaxed by FIRE driven by ``approx`` to ``fmax``
(``lammps_adv.experiments.relax``; files ``relax/relax_{i:04d}.h5md``, i the run's place in
temperature-then-glass order, source ``md_T{T}_{k:02d}.h5md#end``).

Energies are raw (no alignment): the approximate models of this study are trained on the
reference's own energies. Every file's /parameters names its independent unit, the glass
(``independent_unit``: what the statistics resample), and its temperature
(``temperature_K`` for MD, ``start_temperature_K`` for a relaxation); MD files add
``experiment`` "driven", ``driver`` (the approx spec), ``source``, ``glass_index``,
``timestep_ps``, ``md_steps``, ``velocity_seed`` and ``thermostat``.

Under ``mpirun -np N`` the ranks are split into groups of ``ranks_per_run`` (one LAMMPS
instance each, as ``relax`` does) and the runs are dealt out round-robin; the relaxations
are then spread the same way. A run on one rank is computed exactly as in a serial run, so
the files are the same for any N.
"""
from __future__ import annotations

import sys
from pathlib import Path

from lammps_adv.core import specs
from lammps_adv.core.alignment import NONE
from lammps_adv.core.configuration import Configuration
from lammps_adv.core.progress import bar as progress_bar
from lammps_adv.experiments.relax import relax as relax_configs
from lammps_adv.io.files import file_sha256, refuse_existing, remove_earlier_outputs
from lammps_adv.io.resources import shipped_model
from lammps_adv.io.schema import RECORDING_SUFFIX
from lammps_adv.lammps.snippets import get as get_potential
from lammps_adv.lammps.system import LammpsSystem
from lammps_adv.parallel.mpi import mpi_comm
from lammps_adv.parallel.tasks import split_tasks
from lammps_adv.recorder import Recorder

# what an MD file adds to a recording's /parameters (the relaxations' keys are relax's)
DRIVEN_PARAMETERS = ("experiment", "driver", "source", "glass_index", "independent_unit",
                     "temperature_K", "timestep_ps", "md_steps", "velocity_seed",
                     "thermostat", "command_line")
THERMOSTAT = "Nose-Hoover (fix nvt), damping 100 timesteps"
VELOCITY_SEED = 4928           # inputs/nvt_glass.in's default velocity seed


def md_name(temperature: float, k: int) -> str:
    """The file of the MD run of glass k at ``temperature`` (K): md_T300_00.h5md."""
    return f"md_T{temperature:g}_{k:02d}{RECORDING_SUFFIX}"


def velocity_seed(seed: int, k: int, j: int) -> int:
    """LAMMPS velocity seed of glass k at the j-th temperature: one per run, none shared."""
    return seed + 1000 * k + j


def one_per_unit(configs, limit: int | None = None) -> list[Configuration]:
    """One configuration per independent unit (glass), in file order: its relaxed one
    (temperature 0 K) when there is one, else its first; then at most ``limit`` units."""
    if limit is not None and limit < 1:
        raise ValueError(f"--glasses must be >= 1, got {limit}")
    chosen: dict[str, Configuration] = {}
    for c in (Configuration(*c) for c in configs):
        unit = c.unit or c.source
        if unit not in chosen or (c.temperature == 0 and chosen[unit].temperature != 0):
            chosen[unit] = c
    return list(chosen.values())[:limit]


def driven(glasses, approx: str, reference: str, out_dir: str | Path = "driven",
           temps=(300, 1000), ps: float = 2.0, every: int = 10, timestep_ps: float = 0.001,
           relax: bool = True, fmax: float = 1e-3, relax_steps: int = 2000,
           seed: int = VELOCITY_SEED, ranks_per_run: int = 1, overwrite: bool = False,
           comm=None, progress: bool = True) -> dict[str, list[Path]]:
    """NVT MD of every glass at every temperature of ``temps`` (K) driven by ``approx``,
    ``ps`` ps each with a ``timestep_ps`` timestep, recorded against ``reference`` every
    ``every`` steps; then (``relax``) each run's end relaxed by FIRE driven by ``approx``
    until no atom feels a force above ``fmax`` (eV/A) or ``relax_steps`` steps.

    glasses: Configurations or (positions, cell, names, source[, unit, temperature]) tuples;
    each is its own independent unit (its ``unit``, else its source). seed: velocity seeds
    are ``seed + 1000 k + j`` for glass k at the j-th temperature. overwrite: replace the
    MD and relaxation recordings of an earlier run in ``out_dir``, all of them (else one this
    run would write is an error, raised before any run).
    Returns {"md": paths, "relax": paths} of every file written (all ranks).
    """
    glasses = [Configuration(*g) for g in glasses]
    temps = [float(t) for t in temps]
    steps = int(round(ps / timestep_ps)) if timestep_ps > 0 else 0
    if not glasses:
        raise ValueError("no glasses to run")
    if not temps or not all(t > 0 for t in temps):
        raise ValueError(f"temperatures must be positive (K), got {temps}")
    if len(set(temps)) != len(temps):
        raise ValueError(f"temperatures repeat: {temps}")
    if not timestep_ps > 0 or not ps > 0 or steps < 1:
        raise ValueError(f"need a positive run length and timestep (ps), got {ps} and "
                         f"{timestep_ps}")
    if every < 1:
        raise ValueError(f"every must be >= 1 step, got {every}")
    if relax_steps < 1 or not fmax > 0:
        raise ValueError(f"need relax_steps >= 1 and a positive fmax (eV/A), got "
                         f"{relax_steps} and {fmax}")
    if seed < 1:
        raise ValueError(f"the velocity seed must be a positive integer, got {seed}")
    get_potential(approx)              # one that cannot drive LAMMPS fails before any run
    out_dir = Path(out_dir)
    runs = [(j, t, k) for j, t in enumerate(temps) for k in range(len(glasses))]
    md_paths = [out_dir / md_name(t, k) for _, t, k in runs]
    relax_paths = [out_dir / "relax" / f"relax_{i:04d}{RECORDING_SUFFIX}" for i in range(len(runs))] \
        if relax else []
    if not overwrite:            # every rank sees the same files: all fail alike, at once
        refuse_existing(md_paths + relax_paths)
    comm = comm or mpi_comm()
    if comm.Get_rank() == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        if overwrite:
            remove_earlier_outputs(out_dir, "md_T*_*")
    comm.Barrier()
    hashes = _model_hashes(approx)
    sub, mine, n_groups = split_tasks(comm, len(runs), ranks_per_run)
    ends = {}
    bar = progress_bar(len(runs), f"MD runs ({n_groups} at a time)", "run", progress, comm)
    try:
        for i in mine:
            j, t, k = runs[i]
            glass = glasses[k]
            provenance = {"experiment": "driven", "driver": approx, "source": glass.source,
                          "glass_index": k, "independent_unit": glass.unit or glass.source,
                          "temperature_K": t, "timestep_ps": float(timestep_ps),
                          "md_steps": steps, "velocity_seed": velocity_seed(seed, k, j),
                          "thermostat": THERMOSTAT, "command_line": " ".join(sys.argv),
                          "seeds": {"velocity": velocity_seed(seed, k, j)},
                          "file_hashes": hashes}
            ends[i] = _md_run(glass, approx, reference, md_paths[i], t, steps, every,
                              timestep_ps, velocity_seed(seed, k, j), provenance, overwrite,
                              sub)
            bar.update(n_groups)
    finally:
        bar.close()
        sub.Free()
    # every rank needs every end configuration: the relaxations are dealt out anew
    merged = {}
    for part in comm.allgather(ends):
        merged.update(part)
    if relax:
        starts = [Configuration(*merged[i], glasses[k].names, f"{md_paths[i].name}#end",
                                glasses[k].unit or glasses[k].source, t)
                  for i, (_, t, k) in enumerate(runs)]
        relax_configs(starts, approx, reference, out_dir / "relax", min_style="fire",
                      steps=relax_steps, fmax=fmax, ranks_per_relax=ranks_per_run,
                      overwrite=overwrite, comm=comm, progress=progress, align="none")
    comm.Barrier()
    return {"md": md_paths, "relax": relax_paths}


def _md_run(glass: Configuration, approx, reference, out: Path, temperature: float,
            steps: int, every: int, timestep_ps: float, vseed: int, provenance: dict,
            overwrite: bool, comm):
    """One recorded NVT run (collective on ``comm``); returns its end (positions relative to
    the box origin, cell), both in A."""
    from ase import Atoms
    atoms = Atoms(glass.names, positions=glass.positions, cell=glass.cell, pbc=True)
    with LammpsSystem(atoms, approx, comm=comm) as system:
        with Recorder(system.lmp, reference, out=out, every=every, approx=approx,
                      provenance=provenance, overwrite=overwrite, alignment=NONE,
                      comm=comm) as rec:
            rec.commands([f"timestep {timestep_ps!r}",
                          f"velocity all create {temperature!r} {vseed} mom yes rot yes "
                          "dist gaussian",
                          f"fix adv_nvt all nvt temp {temperature!r} {temperature!r} "
                          f"{100 * timestep_ps!r}"])
            rec.command(f"run {steps}")
        return system.frame()


def _model_hashes(spec: str) -> dict:
    """{file: sha256} of the driving model's file (torchscript, lammps snippets): which
    network drove the runs, recorded in /parameters model_hashes."""
    model = specs.parse(spec)
    if model.kind not in specs.FILE_KINDS:
        return {}
    path = specs.model_file(model, shipped_model)
    return {str(path): file_sha256(path)} if path.is_file() else {}
