"""The periodic graph of the TorchScript model contract, built in Python.

LAMMPS hands a model the local atoms followed by ghost atoms (periodic images within the
ghost cutoff), so the model needs no cell shifts. ``periodic_graph`` builds the same input
for a whole periodic cell on one process: the N atoms of the cell first, then every image
within ``halo`` of the cell, and the directed edges (centre, neighbour) within ``cutoff``.
"""
from __future__ import annotations

import itertools

import numpy as np
from scipy.spatial import cKDTree


def periodic_graph(positions, cell, cutoff: float, halo: float | None = None,
                   ghost_edges: bool = False):
    """Return (ext_positions [M,3], image_of [M] (index of the original atom), edge_index [2,E]).

    halo: how far outside the cell images are kept (default cutoff; a message-passing
    model needs its receptive field). ghost_edges: also list edges centred on images
    (needed when halo > cutoff), else only edges centred on the N cell atoms.
    """
    pos = np.asarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    n = len(pos)
    halo = cutoff if halo is None else halo
    inv = np.linalg.inv(cell)
    frac = pos @ inv
    frac -= np.floor(frac)
    wrapped = frac @ cell
    # plane spacings give how many images each direction needs
    spacing = 1.0 / np.linalg.norm(inv, axis=0)
    reps = np.ceil(halo / spacing).astype(int)
    shifts = np.array([s for s in itertools.product(*[range(-r, r + 1) for r in reps])
                       if any(s)], dtype=np.float64).reshape(-1, 3)
    ext_frac = (frac[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    image_of = np.tile(np.arange(n), len(shifts))
    # keep images within halo of the cell faces (LAMMPS' ghost rule: a superset of the
    # images within distance halo, also for triclinic cells)
    lo = -halo / spacing
    hi = 1.0 + halo / spacing
    keep = np.all((ext_frac >= lo) & (ext_frac <= hi), axis=1)
    ext_frac, image_of = ext_frac[keep], image_of[keep]
    ext = ext_frac @ cell
    all_pos = np.concatenate([wrapped, ext])
    all_image = np.concatenate([np.arange(n), image_of])
    tree = cKDTree(all_pos)
    pairs = tree.query_pairs(cutoff, output_type="ndarray")
    edges = np.concatenate([pairs, pairs[:, ::-1]])
    if not ghost_edges:
        edges = edges[edges[:, 0] < n]
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    return all_pos, all_image, edges[order].T.copy()

