"""Datasets made by LAMMPS MD: NVT runs of melt-quenched glass and alpha-quartz driven by a
catalogue potential, each frame labelled through the calculator interface (which validates
every label), written as a dataset file (``lammps_adv.io.dataset``)."""
from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from lammps_adv.calculators import get_calculator
from lammps_adv.core.errors import DatasetError
from lammps_adv.core.progress import bar as progress_bar
from lammps_adv.io.dataset import Dataset, from_frames
from lammps_adv.lammps.snippets import get as get_potential
from lammps_adv.lammps.structures import SPECIES, amorphous, quartz
from lammps_adv.lammps.system import LammpsSystem
from lammps_adv.parallel.mpi import is_root, mpi_comm


def md_frames(atoms, potential: str, temperature: float, frames: int, stride: int,
              equil: int, seed: int, timestep: float = 0.001, label: str = "",
              comm=None, reference=None) -> list[dict]:
    """NVT MD in LAMMPS driven by ``potential`` at ``temperature``; after ``equil`` steps,
    one frame every ``stride`` steps: positions, cell, species, energy, forces (and stress
    when the driver is the reference). Energies and forces come from ``reference`` (a
    Calculator; default: ``potential``'s) through the calculator interface, which validates
    them; the driver only moves the atoms."""
    if frames < 1 or stride < 1 or equil < 0:
        raise DatasetError(f"frames and stride must be >= 1 and equil >= 0, got "
                           f"{frames}, {stride}, {equil}")
    own = reference is None
    reference = get_calculator(potential, comm=comm) if own else reference
    with LammpsSystem(atoms, potential, comm=comm) as system, \
            (reference if own else contextlib.nullcontext()):
        lmp = system.lmp
        system.track_stress()
        lmp.commands_list([
            f"thermo {stride}", f"timestep {timestep}",
            f"velocity all create {temperature} {seed} mom yes rot yes dist gaussian",
            f"fix adv_md all nvt temp {temperature} {temperature} {100 * timestep}",
            f"run {equil}"])
        types = np.array(lmp.gather_atoms("type", 0, 1), dtype=np.int64)
        names = [SPECIES[t - 1] for t in types]
        same = reference.spec == potential     # the driver's virial is the reference's stress
        out = []
        for k in range(frames):
            lmp.command(f"run {stride}")
            pe = float(lmp.last_thermo()["PotEng"])
            source = f"{label}-T{temperature:g}#{k}"
            positions, cell = system.frame()
            energy, forces = reference.evaluate(positions, cell, symbols=names,
                                                label=f"dataset frame {source}")
            if same and not abs(energy - pe) <= 1e-6 * max(1.0, abs(pe)):
                raise DatasetError(f"{potential}: the energy of {source} differs between the "
                                   f"MD ({pe} eV) and the calculator ({energy} eV)")
            out.append({"positions": positions, "cell": cell, "species": types - 1,
                        "energy": energy, "forces": forces,
                        "stress": system.stress() if same else None,
                        "temperature": temperature, "source": source, "unit": label})
    return out


def generate(out: str | Path, reference: str = "bks-dsf", driver: str | None = None,
             glass_atoms: int = 96,
             n_glasses: int = 1, glass_temps: Sequence[float] = (300, 1000, 2000, 3000),
             quartz_cells: Sequence[int] | None = (2, 2, 2),
             quartz_temps: Sequence[float] = (300, 900, 1500), frames: int = 20,
             stride: int = 50, equil: int = 500, timestep: float = 0.001, seed: int = 1,
             melt_ps: float = 5.0, quench_ps: float = 10.0,
             split: Sequence[float] = (0.8, 0.1, 0.1), comm=None,
             progress: bool = True) -> Dataset:
    """Dataset labelled by the calculator ``reference`` (any spec of
    lammps_adv.calculators) on LAMMPS NVT MD driven by the catalogue potential ``driver``
    (default: the reference): melt-quenched glasses (``glass_atoms`` each, ``n_glasses``
    of them) at ``glass_temps`` and an alpha-quartz supercell at ``quartz_temps``;
    ``frames`` frames per run, ``stride`` steps apart after ``equil`` steps.
    glass_atoms = 0 or quartz_cells = None leaves one out.

    Each glass is its own melt-quench (an independent unit, /configs/unit "glass<g>"), run
    at every temperature of ``glass_temps``; the quartz crystal is one unit ("quartz")."""
    driver = driver or reference
    get_potential(driver)          # clear error for an unknown spec before any work
    labeller = get_calculator(reference, comm=comm)
    runs = []
    comm = comm or mpi_comm()
    # one folder for every rank: LAMMPS's rank 0 writes each glass file, all ranks read it
    tmp = Path(comm.bcast(tempfile.mkdtemp(prefix="lammps-adv-glass-")
                          if comm.Get_rank() == 0 else None, root=0))
    try:
        structures = []
        for g in range(n_glasses if glass_atoms else 0):
            structures.append((f"glass{g}", lambda g=g: amorphous(
                glass_atoms, potential=driver, out=tmp / f"glass{g}.data",
                seed=seed + 1000 * g, melt_ps=melt_ps, quench_ps=quench_ps, comm=comm),
                glass_temps))
        if quartz_cells:
            nx, ny, nz = (int(v) for v in quartz_cells)
            structures.append(("quartz", lambda: quartz(nx, ny, nz), quartz_temps))
        if not structures:
            raise DatasetError("nothing to generate: no glass (glass_atoms = 0) and no quartz")
        total = sum(len(t) for _, _, t in structures)
        bar = _bar(total, progress, comm)
        k = 0
        for label, make, temps in structures:
            bar.set_description(f"{label}: structure")
            atoms = make()
            for T in temps:
                bar.set_description(f"{label} T={T:g} K")
                runs += md_frames(atoms, driver, float(T), frames, stride, equil,
                                  seed=seed + 17 * k + 1, timestep=timestep, label=label,
                                  comm=comm, reference=labeller)
                k += 1
                bar.update(1)
        bar.close()
    finally:
        comm.Barrier()
        if comm.Get_rank() == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        labeller.close()
    gen = {"kind": "lammps-md", "reference": reference, "driver": driver,
           "reference_description": labeller.description,
           "reference_settings": getattr(labeller, "settings", None),
           "glass_atoms": glass_atoms,
           "n_glasses": n_glasses, "glass_temps": list(map(float, glass_temps)),
           "quartz_cells": list(quartz_cells) if quartz_cells else None,
           "quartz_temps": list(map(float, quartz_temps)), "frames": frames,
           "stride": stride, "equil": equil, "timestep_ps": timestep, "seed": seed,
           "melt_ps": melt_ps, "quench_ps": quench_ps, "split": list(split),
           "ensemble": "NVT (Nose-Hoover, damping 100 steps)",
           "frame_spacing_ps": stride * timestep,
           # /configs/unit: what statistics resample (frames of one glass are correlated)
           "units": "one per melt-quench (glass<g>, melt-quench seed = seed + 1000 g), one "
                    "for the quartz crystal; every unit is run at each of its temperatures"}
    ds = from_frames(runs, SPECIES, {"reference": reference, "generator": gen},
                     split=split, seed=seed)
    if is_root(comm):          # under mpirun every rank has the frames; one writes
        ds.save(out)
    ds.path = str(out)
    return ds


def _bar(total: int, progress: bool, comm):
    return progress_bar(total, "dataset", "run", progress, comm or mpi_comm())
