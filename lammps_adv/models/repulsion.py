"""The repulsive baseline of every network (Delta-learning): E = E_baseline + E_network.

A network's features stay bounded as two atoms fall into each other (Gaussian radial terms
of BP, radial basis of the graph network), so nothing in the network stops a relaxation or
a probe from pushing a pair far inside the distances it was trained on. The baseline is a
pair term that is exactly zero at and above each species pair's closest approach in the
training data (``r_outer``, the model card's ``closest_pair_A``) and switches on smoothly
below it, to the ZBL universal screened Coulomb repulsion:

    phi_ZBL(r) = k_e Z_a Z_b / r * sum_m c_m exp(-d_m r / a),  a = 0.46850 / (Z_a^0.23 + Z_b^0.23) A
    S(t)       = 1 - t^3 (10 - 15 t + 6 t^2),  t = (r - r_inner) / (r_outer - r_inner) in [0, 1]
    phi(r)     = S(t) phi_ZBL(r),  r_inner = (1 - switch_width) r_outer

(Ziegler, Biersack, Littmark 1985; S is C2: energy, force and its derivative continuous at
both ends). Because phi is zero on every training configuration, the network learns the
reference energy there unchanged; below the training data the wall dominates any slope the
network extrapolates. Each atom gets half of each of its pair terms, from the edges centred
on it, so per-atom energies sum to the pair energy on one rank or many. Parameters at the
top; units eV and A.
"""
from typing import Dict, Optional, Sequence

import torch
from torch import nn

from lammps_adv.models.edges import local_edges

# the screening function's coefficients c_m and exponents d_m are written out in
# zbl_energy: (0.18175, 3.19980), (0.50986, 0.94229), (0.28022, 0.40290), (0.02817, 0.20162)
ZBL_SCREENING_A = 0.46850      # A (0.8854 bohr)
COULOMB_EV_A = 14.399645       # e^2 / (4 pi eps0) in eV A
DEFAULT_SWITCH_WIDTH = 0.2     # fraction of r_outer over which the wall switches on
FORMS = ("zbl", "none")


def pair_key(a: str, b: str) -> str:
    """Name of a species pair as the model card writes it: sorted, joined by '-' ("O-Si")."""
    return "-".join(sorted((str(a), str(b))))


def zbl_energy(r: torch.Tensor, kzz: torch.Tensor, inv_a: torch.Tensor) -> torch.Tensor:
    """ZBL universal screened Coulomb energy (eV) at distances r (A); kzz = k_e Z_a Z_b
    (eV A) and inv_a = 1 / screening length (1/A), per pair."""
    x = r * inv_a
    screen = 0.18175 * torch.exp(-3.19980 * x) + 0.50986 * torch.exp(-0.94229 * x) \
        + 0.28022 * torch.exp(-0.40290 * x) + 0.02817 * torch.exp(-0.20162 * x)
    return kzz / r * screen


def smooth_switch(r: torch.Tensor, r_inner: torch.Tensor, r_outer: torch.Tensor) -> torch.Tensor:
    """1 below r_inner, 0 above r_outer, C2 in between."""
    t = torch.clamp((r - r_inner) / (r_outer - r_inner), 0.0, 1.0)
    return 1.0 - t * t * t * (10.0 - 15.0 * t + 6.0 * t * t)


def baseline_hparams(species: Sequence[str], closest_pair_A: Dict[str, float],
                     atomic_numbers: Dict[str, int], form: str = "zbl",
                     switch_width: float = DEFAULT_SWITCH_WIDTH) -> dict:
    """The ``repulsion`` entry of a model's hyper-parameters (and of its card): one r_outer
    per species pair of ``species`` (the training data's closest approach), the atomic
    numbers, the switching width. ValueError for a pair the data never brings within reach
    (no closest approach to put the wall at) or a species without an atomic number."""
    if form not in FORMS:
        raise ValueError(f"unknown repulsion form {form!r}; known: {', '.join(FORMS)}")
    if not 0.0 < switch_width < 1.0:
        raise ValueError(f"switch_width must be in (0, 1), got {switch_width}")
    names = [str(s) for s in species]
    missing_z = [s for s in names if s not in atomic_numbers]
    if missing_z:
        raise ValueError(f"no atomic number for species {', '.join(missing_z)}")
    pairs = sorted({pair_key(a, b) for a in names for b in names})
    missing = [p for p in pairs if p not in closest_pair_A]
    if missing:
        raise ValueError(f"the training data has no closest approach for species pair(s) "
                         f"{', '.join(missing)}: no place to put the repulsive wall")
    return {"form": form, "r_outer_A": {p: float(closest_pair_A[p]) for p in pairs},
            "switch_width": float(switch_width),
            "atomic_numbers": {s: int(atomic_numbers[s]) for s in names}}


class PairRepulsion(nn.Module):
    """Per-atom energies of the baseline from a contract input (edges, n_local).

    Built from ``baseline_hparams`` (or None / form 'none': no baseline, zero energies).
    Its tensors are non-persistent buffers, rebuilt from the hyper-parameters, so a model's
    state dict is the same with or without it."""

    enabled: bool
    reach: float

    def __init__(self, species: Sequence[str], params: Optional[dict] = None):
        super().__init__()
        names = [str(s) for s in species]
        S = len(names)
        f64 = torch.float64
        r_outer = torch.zeros(S, S, dtype=f64)
        kzz = torch.zeros(S, S, dtype=f64)
        inv_a = torch.ones(S, S, dtype=f64)
        width = DEFAULT_SWITCH_WIDTH
        self.enabled = bool(params) and params.get("form", "zbl") != "none"
        if self.enabled:
            width = float(params["switch_width"])
            z = [int(params["atomic_numbers"][s]) for s in names]
            for i, a in enumerate(names):
                for j, b in enumerate(names):
                    r_outer[i, j] = float(params["r_outer_A"][pair_key(a, b)])
                    kzz[i, j] = COULOMB_EV_A * z[i] * z[j]
                    inv_a[i, j] = (z[i] ** 0.23 + z[j] ** 0.23) / ZBL_SCREENING_A
        self.reach = float(r_outer.max()) if self.enabled else 0.0
        self.register_buffer("r_outer", r_outer, persistent=False)
        self.register_buffer("r_inner", r_outer * (1.0 - width), persistent=False)
        self.register_buffer("kzz", kzz, persistent=False)
        self.register_buffer("inv_a", inv_a, persistent=False)

    def forward(self, positions: torch.Tensor, species: torch.Tensor,
                edge_index: torch.Tensor, n_local: int) -> torch.Tensor:
        """Energies [n_local] (eV): half of phi(r_ij) for every edge centred on a local atom."""
        out = torch.zeros(n_local, dtype=positions.dtype, device=positions.device)
        if not self.enabled or edge_index.shape[1] == 0:
            return out
        ctr, nbr, _, r = local_edges(positions, edge_index, n_local, self.reach)
        return self._add_pairs(out, r, ctr, species[ctr], species[nbr])

    def edge_energies(self, positions: torch.Tensor, r2: torch.Tensor, ctr: torch.Tensor,
                      nbr: torch.Tensor, species: torch.Tensor, n_local: int) -> torch.Tensor:
        """The same energies from edges centred on local atoms and their squared lengths
        (not differentiable), for a model that has them already: only the few edges within
        the baseline's reach take their vectors from the positions (differentiable)."""
        out = torch.zeros(n_local, dtype=positions.dtype, device=positions.device)
        if not self.enabled or ctr.numel() == 0:
            return out
        near = ((r2 < self.reach * self.reach) & (r2 > 0.0)).nonzero().squeeze(1)
        c = ctr[near]
        n = nbr[near]
        v = positions[n] - positions[c]
        return self._add_pairs(out, torch.sqrt((v * v).sum(1)), c, species[c], species[n])

    def _add_pairs(self, out: torch.Tensor, r: torch.Tensor, ctr: torch.Tensor,
                   a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """out plus half of phi(r) of each pair (species a, b) on its centre."""
        r_out = self.r_outer[a, b]
        inside = r < r_out
        phi = zbl_energy(r, self.kzz[a, b], self.inv_a[a, b]) \
            * smooth_switch(r, self.r_inner[a, b], r_out)
        phi = torch.where(inside, phi, torch.zeros_like(phi))
        return out.index_add(0, ctr, 0.5 * phi)
