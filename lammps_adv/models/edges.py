"""Edges of a ghost-atom graph that a local atom's energy needs (shared by the models)."""
from typing import Tuple

import torch


def local_edges(positions: torch.Tensor, edge_index: torch.Tensor, n_local: int,
                reach: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(centre, neighbour, vector r_j - r_i, length) of every edge centred on one of the
    first ``n_local`` atoms with 0 < r < ``reach`` (A). The selection uses detached
    positions: which edges count is not differentiated, their vectors are."""
    ctr = edge_index[0]
    nbr = edge_index[1]
    pd = positions.detach()
    d = pd[nbr] - pd[ctr]
    r2 = (d * d).sum(1)
    keep = ((ctr < n_local) & (r2 < reach * reach) & (r2 > 0.0)).nonzero().squeeze(1)
    ctr = ctr[keep]
    nbr = nbr[keep]
    vec = positions[nbr] - positions[ctr]
    return ctr, nbr, vec, torch.sqrt((vec * vec).sum(1))
