"""The one reader of configurations: ``Configuration`` (positions, cell, names, source)
from a dataset file or from any structure file ASE reads."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.io import iread

from lammps_adv.core.configuration import Configuration
from lammps_adv.io.dataset import load as load_dataset


def load_configs(path: str | Path, split: str | None = "test",
                 limit: int | None = None) -> list[Configuration]:
    """Configurations (positions, cell, names, source) from a dataset file (a split of it)
    or from any structure file ASE reads (every frame)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"configuration file not found: {path}")
    out = []
    if path.suffix in (".h5", ".hdf5"):
        ds = load_dataset(path)
        idx = ds.split(split) if split else np.arange(len(ds))
        for i in idx[:limit]:
            c = ds.config(int(i))
            out.append(Configuration(c["positions"], c["cell"], c["names"],
                                     f"{path.name}#{int(i)}"))
    else:
        for k, atoms in enumerate(iread(str(path), index=":")):
            if limit is not None and k >= limit:
                break
            out.append(Configuration(atoms.get_positions(), atoms.cell.array,
                                     atoms.get_chemical_symbols(), f"{path.name}#{k}"))
    if not out:
        raise ValueError(f"no configurations in {path}" + (f" (split {split!r})" if split else ""))
    return out
