"""Whether an energy and its forces are finite numbers: the one check that every path
applies to a model's output (calculators, LAMMPS single points and relaxations, the
recorder), so that a NaN stops the command with an error instead of reaching a table."""
from __future__ import annotations

import math

import numpy as np


def nonfinite(energy, forces) -> str | None:
    """None when the energy (eV) and every force component (eV/A, [N, 3]) are finite;
    otherwise what is not, on one line (the first bad atom counted from 0)."""
    if energy is not None and not math.isfinite(float(energy)):
        return f"energy is {float(energy)} eV"
    f = np.asarray(forces, dtype=np.float64).reshape(-1, 3)
    bad = ~np.isfinite(f).all(axis=1)
    if bad.any():
        atoms = np.flatnonzero(bad)
        return (f"forces are not finite on {len(atoms)} of {len(f)} atoms (first: atom "
                f"{atoms[0]}, {f[atoms[0]].tolist()} eV/A)")
    return None
