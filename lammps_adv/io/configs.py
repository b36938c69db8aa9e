"""The one reader of configurations: ``Configuration`` (positions, cell, names, source,
independent unit, temperature) from a dataset file or from any structure file ASE reads."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.io import iread

from lammps_adv.core.configuration import Configuration
from lammps_adv.io.dataset import frame_source, load as load_dataset


def load_configs(path: str | Path, split: str | None = "test",
                 limit: int | None = None, every: int = 1) -> list[Configuration]:
    """Configurations from a dataset file (a split of it) or from any structure file ASE
    reads (every frame); ``every``: only every k-th of them (in file order: with F frames per
    MD run, ``every=F`` takes one frame of each run, i.e. of each glass and temperature),
    then at most ``limit``.

    Each carries its independent unit, named with its file so that units of two files never
    merge: ``data.h5:glass0`` (the dataset's /configs/unit; ``data.h5#i`` when unknown), and
    the K of its MD run (the dataset's /configs/temperature). A frame of a structure file is
    its own unit (``file.xyz#k``, unless its extxyz info names an ``independent_unit``),
    temperature NaN."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"configuration file not found: {path}")
    if every < 1:
        raise ValueError(f"--every must be >= 1, got {every}")
    out = []
    if path.suffix in (".h5", ".hdf5"):
        ds = load_dataset(path)
        idx = ds.split(split) if split else np.arange(len(ds))
        for i in idx[::every][:limit]:
            c = ds.config(int(i))
            unit = f"{path.name}:{c['unit']}" if c["unit"] else frame_source(path, i)
            out.append(Configuration(c["positions"], c["cell"], c["names"],
                                     frame_source(path, i), unit, c["temperature"]))
    else:
        for k, atoms in enumerate(iread(str(path), index=f"::{every}")):
            if limit is not None and len(out) >= limit:
                break
            k *= every
            named = atoms.info.get("independent_unit")
            unit = f"{path.name}:{named}" if named else frame_source(path, k)
            out.append(Configuration(atoms.get_positions(), atoms.cell.array,
                                     atoms.get_chemical_symbols(), frame_source(path, k), unit))
    if not out:
        raise ValueError(f"no configurations in {path}" + (f" (split {split!r})" if split else ""))
    return out
