"""A configuration of atoms in a periodic cell: the tuple every experiment passes around,
the hash that identifies it bit for bit, and its description in words."""
from __future__ import annotations

import hashlib
from collections import Counter
from typing import NamedTuple

import numpy as np


class Configuration(NamedTuple):
    """One periodic configuration: positions [N, 3] (A), cell rows a, b, c (A), the element of
    every atom, and where it came from (e.g. ``data.h5#3``).

    ``unit`` names its independent unit, what a statistic resamples (the melt-quenched glass
    it was made from, e.g. ``data.h5:glass0``; frames of one glass are correlated); '' when
    unknown (the configuration is then taken as its own unit). ``temperature`` is the K of
    the MD run it came from (NaN when unknown): the group its statistics are shown in."""
    positions: np.ndarray
    cell: np.ndarray
    names: list
    source: str
    unit: str = ""
    temperature: float = float("nan")


def config_key(symbols, positions, cell) -> str:
    """Hash of a configuration (bit-exact): the cache key of calculators and label stores."""
    h = hashlib.blake2b(digest_size=16)
    h.update(" ".join(symbols).encode())
    h.update(np.ascontiguousarray(cell, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(positions, dtype=np.float64).tobytes())
    return h.hexdigest()


def describe(symbols, positions, cell) -> str:
    """A configuration in words: 'configuration of 96 atoms (Si32 O64, cell 10.2 x ... A,
    id 3f2a9c01)' - what error messages name when the caller gives no label."""
    counts = " ".join(f"{s}{c}" for s, c in sorted(Counter(symbols).items()))
    lengths = " x ".join(f"{x:.3g}" for x in np.linalg.norm(cell, axis=1))
    return (f"configuration of {len(symbols)} atoms ({counts}, cell {lengths} A, "
            f"id {config_key(symbols, positions, cell)[:8]})")


def periodic_displacement(start, end, cell) -> np.ndarray:
    """end - start [N, 3] (A) under the minimum-image convention of the periodic cell (rows
    a, b, c): LAMMPS wraps atoms back into the box when it re-neighbours, so two records of
    one moving atom can differ by a cell vector. Exact for moves shorter than half the
    cell's smallest width (any minimizer step, MD records close together)."""
    cell = np.asarray(cell, dtype=np.float64)
    frac = (np.asarray(end, dtype=np.float64) - np.asarray(start, dtype=np.float64)) \
        @ np.linalg.inv(cell)
    return (frac - np.round(frac)) @ cell
