"""Behler-Parrinello network (atom-centred symmetry functions + one MLP per species).

Model contract (docs/models.md, docs/plugin.md): a TorchScript-able module with ``cutoff``,
``species``, ``receptive_field`` and ``forward(positions, species, edge_index, n_local)``
returning per-atom energies (eV, float64).

Features of a centre atom i (defaults: Artrith, Hiller, Behler 2013 as in JAX MD, r_c = 8 A,
82 features for SiO2):

    fc(r)          = 0.5 [cos(pi r / r_c) + 1]  for r < r_c, else 0
    G2_i[a, eta]   = sum_{j in N(i), s_j = a} exp(-eta r_ij^2) fc(r_ij)
    G4_i[ab, m]    = 2^(1-zeta_m) sum_{j in N(i), s_j = a} sum_{k in N(i), s_k = b, k != j}
                       (1 + lambda_m cos theta_jik)^zeta_m
                       exp(-eta_m (r_ij^2 + r_ik^2 + r_jk^2)) fc(r_ij) fc(r_ik) fc(r_jk)

for every neighbour species a (radial) and unordered neighbour species pair a <= b
(angular). As in JAX MD, for a == b the double sum runs over ordered pairs (each unordered
pair counts twice); for a != b each pair counts once. Layout of the feature vector:
[G2 for a = species[0] (8), G2 for species[1] (8), ..., G4 for (0,0) (22), (0,1), (1,1)].

Triplets (j, k) are built inside ``forward`` from the edge list with index arithmetic: edges
are sorted by centre, and each edge is paired with the later edges of the same centre. They
are processed in chunks of ``triplet_chunk`` so that memory stays bounded.

On CPU the features and their first derivatives come from the fused C++ operator
``torch.ops.lammps_adv.bp_features`` (lammps_adv/plugin/kernels/, threads of torch's pool),
force training included: the operator's gradient pass is differentiable in dE/dG, which is
all the weights' gradient of a force loss needs (second derivatives with respect to the
positions, Hessians, are refused with a clear error). In evaluation mode (not
``self.training``: LAMMPS, relaxations, probes) one call of
``torch.ops.lammps_adv.bp_energies_from_positions`` gives the energies, and through autograd
the forces: per centre one scan of its triplets, the features, its species' MLP and the
gradient pass from the terms kept since, added to the positions' gradient in one pass (first
derivatives with respect to the positions only; the weights' gradients need ``train()``).
``fused = False`` (also on a loaded model) selects the pure-torch paths below, the reference
the operators are tested against, and the path for CUDA tensors. Model files exported before the operator existed keep their own
(pure-torch) code and still load. On the pure-torch path, when forces are asked for in
evaluation mode (``positions.requires_grad`` and not ``self.training``) the model uses a memory-lean path: angular features are first computed without an autograd
graph, dE/dG comes from the MLPs, and the gradient with respect to the edge vectors is
accumulated chunk by chunk with the analytic derivative of G4 (``_triplet_grad``); the
returned energies carry that gradient through a zero-valued surrogate term. The plain
path (training mode) keeps the full graph and supports second derivatives (force training).
"""

import json
import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from lammps_adv.models.repulsion import PairRepulsion

BOHR = 0.529177  # A, the unit of the published eta values

RADIAL_ETAS = [9e-4, 0.01, 0.02, 0.035, 0.06, 0.1, 0.2, 0.4]
ANGULAR_ETAS = [1e-4] * 4 + [0.003] * 4 + [0.008] * 2 + [0.015] * 4 + [0.025] * 4 + [0.045] * 4
LAMBDAS = [-1.0, 1.0] * 4 + [1.0] * 14
ZETAS = [1.0, 1.0, 2.0, 2.0] * 2 + [1.0, 2.0] + [1.0, 2.0, 4.0, 16.0] * 3

ACTIVATIONS = {"tanh": nn.Tanh, "softplus": nn.Softplus, "silu": nn.SiLU}
ACTIVATION_CODES = {"tanh": 0, "softplus": 1, "silu": 2}    # bp_energies' activation argument


def default_radial_etas() -> List[float]:
    """Radial eta values in A^-2 (published in bohr^-2)."""
    return [e / BOHR ** 2 for e in RADIAL_ETAS]


def default_angular_etas() -> List[float]:
    return [e / BOHR ** 2 for e in ANGULAR_ETAS]


def make_mlp(n_in: int, hidden: Sequence[int], n_out: int, activation: str) -> nn.Sequential:
    """Linear layers of widths ``hidden`` with ``activation`` between, float64."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, int(h), dtype=torch.float64), ACTIVATIONS[activation]()]
        width = int(h)
    layers.append(nn.Linear(width, n_out, dtype=torch.float64))
    return nn.Sequential(*layers)


def cosine_cutoff(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """0.5 [cos(pi r / r_c) + 1] inside the cutoff, 0 outside (smooth to first order)."""
    fc = 0.5 * (torch.cos(r * (math.pi / cutoff)) + 1.0)
    return torch.where(r < cutoff, fc, torch.zeros_like(fc))


def check_species_names(species: Sequence[str]) -> List[str]:
    names = [str(s) for s in species]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"species must be a non-empty list of distinct names, got {names}")
    return names


class BehlerParrinello(nn.Module):
    """Behler-Parrinello network under the lammps-adv model contract."""

    cutoff: float
    receptive_field: float
    species: List[str]
    hparams: str
    triplet_chunk: int
    n_species: int
    n_pairs: int
    n_radial: int
    n_angular: int
    n_features: int
    lz_lambdas: List[float]
    lz_zetas: List[float]
    fused: bool
    activation_code: int

    def __init__(self, species: Sequence[str] = ("Si", "O"), cutoff: float = 8.0,
                 radial_etas: Sequence[float] | None = None,
                 angular_etas: Sequence[float] | None = None,
                 lambdas: Sequence[float] | None = None, zetas: Sequence[float] | None = None,
                 hidden: Sequence[int] = (30, 30), activation: str = "tanh",
                 triplet_chunk: int = 400_000, repulsion: dict | None = None):
        super().__init__()
        self.species = check_species_names(species)
        if not cutoff > 0:
            raise ValueError(f"cutoff must be > 0, got {cutoff}")
        self.cutoff = float(cutoff)
        self.receptive_field = float(cutoff)
        radial_etas = default_radial_etas() if radial_etas is None else list(radial_etas)
        angular_etas = default_angular_etas() if angular_etas is None else list(angular_etas)
        lambdas = list(LAMBDAS) if lambdas is None else list(lambdas)
        zetas = list(ZETAS) if zetas is None else list(zetas)
        if not (len(angular_etas) == len(lambdas) == len(zetas)):
            raise ValueError("angular_etas, lambdas and zetas must have the same length, got "
                             f"{len(angular_etas)}, {len(lambdas)}, {len(zetas)}")
        if not radial_etas:
            raise ValueError("at least one radial eta is needed")
        S = len(self.species)
        self.n_species = S
        self.n_pairs = S * (S + 1) // 2
        self.n_radial = len(radial_etas)
        self.n_angular = len(angular_etas)
        self.n_features = S * self.n_radial + self.n_pairs * self.n_angular
        self.triplet_chunk = int(triplet_chunk)
        self.fused = True
        self.activation_code = ACTIVATION_CODES[activation]
        self.hparams = json.dumps({
            "kind": "bp", "species": self.species, "cutoff": self.cutoff,
            "radial_etas": radial_etas, "angular_etas": angular_etas, "lambdas": lambdas,
            "zetas": zetas, "hidden": [int(h) for h in hidden], "activation": activation,
            "triplet_chunk": self.triplet_chunk, "repulsion": repulsion})
        # the repulsive baseline (models/repulsion.py): E = baseline + network
        self.repulsion = PairRepulsion(self.species, repulsion)
        f64 = torch.float64
        self.register_buffer("radial_etas", torch.tensor(radial_etas, dtype=f64))
        self.register_buffer("angular_etas", torch.tensor(angular_etas, dtype=f64))
        self.register_buffer("lambdas", torch.tensor(lambdas, dtype=f64))
        self.register_buffer("zetas", torch.tensor(zetas, dtype=f64))
        lz = sorted(set(zip(lambdas, zetas)))
        etas_u = sorted(set(angular_etas))
        self.lz_lambdas = [float(a) for a, _ in lz]
        self.lz_zetas = [float(z) for _, z in lz]
        self.register_buffer("lz_of", torch.tensor([lz.index(p) for p in zip(lambdas, zetas)],
                                                   dtype=torch.int64))
        self.register_buffer("eta_unique", torch.tensor(etas_u, dtype=f64))
        self.register_buffer("eta_of", torch.tensor([etas_u.index(e) for e in angular_etas],
                                                    dtype=torch.int64))
        # one-hot maps from the distinct (lambda, zeta) / eta values to the functions
        na = len(angular_etas)
        self.register_buffer("expand_lz", torch.zeros(len(lz), na, dtype=f64).index_put_(
            (self.lz_of, torch.arange(na)), torch.ones(na, dtype=f64)))
        self.register_buffer("expand_eta", torch.zeros(len(etas_u), na, dtype=f64).index_put_(
            (self.eta_of, torch.arange(na)), torch.ones(na, dtype=f64)))
        pair_index = torch.zeros(S, S, dtype=torch.int64)
        pair_weight = torch.zeros(S, S, dtype=f64)
        p = 0
        for a in range(S):
            for b in range(a, S):
                pair_index[a, b] = pair_index[b, a] = p
                pair_weight[a, b] = pair_weight[b, a] = 2.0 if a == b else 1.0
                p += 1
        self.register_buffer("pair_index", pair_index)
        self.register_buffer("pair_weight", pair_weight)
        # standardisation of features per centre species, energy scale and per-species shift
        self.register_buffer("feature_mean", torch.zeros(S, self.n_features, dtype=f64))
        self.register_buffer("feature_std", torch.ones(S, self.n_features, dtype=f64))
        self.register_buffer("energy_shift", torch.zeros(S, dtype=f64))
        self.register_buffer("energy_scale", torch.ones((), dtype=f64))
        self.mlps = nn.ModuleList([make_mlp(self.n_features, hidden, 1, activation)
                                   for _ in self.species])

    # ------------------------------------------------------------------ geometry
    def _local_edges(self, positions: torch.Tensor, edge_index: torch.Tensor,
                     n_local: int
                     ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Edges centred on local atoms within the cutoff, sorted by centre: (centre,
        neighbour, vector r_j - r_i (differentiable), r^2 (not)). The LAMMPS plugin hands
        exactly such edges: then they are used as they are, with no copy and no sort."""
        ctr = edge_index[0]
        nbr = edge_index[1]
        vec = positions[nbr] - positions[ctr]
        vd = vec.detach()
        r2 = (vd * vd).sum(1)
        idx = self._kept_in_order(ctr, r2, n_local)
        if idx is not None:
            return ctr[idx], nbr[idx], vec[idx], r2[idx]
        return ctr, nbr, vec, r2

    def _kept_in_order(self, ctr: torch.Tensor, r2: torch.Tensor,
                       n_local: int) -> Optional[torch.Tensor]:
        """Which edges to keep (centre local, 0 < r < cutoff), in centre order (stable), as
        indices; None when every edge is kept and already in order."""
        keep = (ctr < n_local) & (r2 < self.cutoff * self.cutoff) & (r2 > 0.0)
        idx: Optional[torch.Tensor] = None
        if not bool(keep.all()):
            idx = keep.nonzero().squeeze(1)
            ctr = ctr[idx]
        if ctr.numel() > 1 and not bool((ctr[1:] >= ctr[:-1]).all()):
            order = torch.sort(ctr, stable=True)[1]
            idx = order if idx is None else idx[order]
        return idx

    def _radial(self, vec: torch.Tensor, ctr: torch.Tensor, nbr_sp: torch.Tensor,
                n_local: int) -> torch.Tensor:
        r2 = (vec * vec).sum(1)
        r = torch.sqrt(r2)
        fc = cosine_cutoff(r, self.cutoff)
        g = torch.exp(-self.radial_etas[None, :] * r2[:, None]) * fc[:, None]
        out = torch.zeros(n_local * self.n_species, self.n_radial, dtype=vec.dtype,
                          device=vec.device)
        out = out.index_add(0, ctr * self.n_species + nbr_sp, g)
        return out.reshape(n_local, self.n_species * self.n_radial)

    def _partners(self, ctr: torch.Tensor, n_local: int) -> torch.Tensor:
        """For each edge (sorted by centre): how many later edges share its centre."""
        counts = torch.bincount(ctr, minlength=n_local)
        starts = torch.cumsum(counts, 0) - counts
        pos_in_block = torch.arange(ctr.numel(), device=ctr.device) - starts[ctr]
        return counts[ctr] - 1 - pos_in_block

    def _chunks(self, partners: torch.Tensor) -> List[int]:
        """Edge boundaries [e_0 = 0, ..., e_K = E] so each chunk has ~triplet_chunk triplets."""
        E = partners.numel()
        bounds: List[int] = [0]
        if E == 0:
            bounds.append(0)
            return bounds
        cum = torch.cumsum(partners, 0)
        total = int(cum[-1].item())
        n_chunks = max(1, (total + self.triplet_chunk - 1) // self.triplet_chunk)
        if n_chunks > 1:
            targets = torch.arange(1, n_chunks, device=partners.device,
                                   dtype=torch.int64) * self.triplet_chunk
            cuts: List[int] = torch.searchsorted(cum, targets, right=True).tolist()
            for c in cuts:
                if c > bounds[-1] and c < E:
                    bounds.append(int(c))
        bounds.append(E)
        return bounds

    def _triplet_pairs(self, vec: torch.Tensor, partners: torch.Tensor, a: int, b: int):
        """Triplets whose first edge lies in [a, b): (first, second) edge indices of the
        pairs of edges of one centre with r_jk < cutoff, and r_jk^2."""
        p = partners[a:b]
        first = torch.repeat_interleave(torch.arange(a, b, device=vec.device), p)
        starts = torch.cumsum(p, 0) - p
        T = first.numel()
        second = first + 1 + torch.arange(T, device=vec.device) \
            - torch.repeat_interleave(starts, p)
        vd = vec.detach()
        d = vd[second] - vd[first]
        r3sq = (d * d).sum(1)
        keep = (r3sq < self.cutoff * self.cutoff).nonzero().squeeze(1)
        return first[keep], second[keep]

    def _triplet_terms(self, vec: torch.Tensor, r2: torch.Tensor, fc: torch.Tensor,
                       ctr: torch.Tensor, nbr_sp: torch.Tensor, first: torch.Tensor,
                       second: torch.Tensor):
        """Angular terms (differentiable): (row [T] = centre * n_pairs + pair,
        terms [T, n_angular])."""
        v1 = vec[first]
        v2 = vec[second]
        d = v2 - v1
        r3sq = (d * d).sum(1)
        r1sq = r2[first]
        r2sq = r2[second]
        cos = torch.clamp((v1 * v2).sum(1) / torch.sqrt(r1sq * r2sq), -1.0, 1.0)
        sj = nbr_sp[first]
        sk = nbr_sp[second]
        w = fc[first] * fc[second] * cosine_cutoff(torch.sqrt(r3sq), self.cutoff) \
            * self.pair_weight[sj, sk]
        s = r1sq + r2sq + r3sq
        # (1 + lambda cos)^zeta and exp(-eta s) for the distinct parameter values only,
        # then expanded to the n_angular functions (one-hot matrices)
        powers: List[torch.Tensor] = []
        for lam, zeta in zip(self.lz_lambdas, self.lz_zetas):
            powers.append(torch.pow(1.0 + lam * cos, zeta) * 2.0 ** (1.0 - zeta))
        angle = torch.stack(powers, dim=1)                                     # [T, n_lz]
        radial = torch.exp(-s[:, None] * self.eta_unique[None, :]) * w[:, None]  # [T, n_eta]
        terms = (angle @ self.expand_lz) * (radial @ self.expand_eta)
        row = ctr[first] * self.n_pairs + self.pair_index[sj, sk]
        return row, terms

    def _triplet_grad(self, vec: torch.Tensor, ctr: torch.Tensor, nbr_sp: torch.Tensor,
                      first: torch.Tensor, second: torch.Tensor,
                      weights: torch.Tensor) -> torch.Tensor:
        """Analytic gradient of sum_t sum_m weights[row_t, m] terms[t, m] with respect to
        the edge vectors (no autograd graph; the memory-lean path). Returns [E, 3]."""
        rc = self.cutoff
        v1 = vec[first]
        v2 = vec[second]
        d = v2 - v1
        r1sq = (v1 * v1).sum(1)
        r2sq = (v2 * v2).sum(1)
        r3sq = (d * d).sum(1)
        r1 = torch.sqrt(r1sq)
        r2 = torch.sqrt(r2sq)
        r3 = torch.sqrt(r3sq)
        inv12 = 1.0 / (r1 * r2)
        cos = (v1 * v2).sum(1) * inv12
        sj = nbr_sp[first]
        sk = nbr_sp[second]
        k = math.pi / rc
        f1 = 0.5 * (torch.cos(k * r1) + 1.0)
        f2 = 0.5 * (torch.cos(k * r2) + 1.0)
        f3 = 0.5 * (torch.cos(k * r3) + 1.0)
        pw = self.pair_weight[sj, sk]
        w = f1 * f2 * f3 * pw
        # d w / d r_n (fc' = -0.5 k sin(k r))
        dw1 = -0.5 * k * torch.sin(k * r1) * f2 * f3 * pw
        dw2 = -0.5 * k * torch.sin(k * r2) * f1 * f3 * pw
        dw3 = -0.5 * k * torch.sin(k * r3) * f1 * f2 * pw
        s = r1sq + r2sq + r3sq
        powers: List[torch.Tensor] = []
        dpowers: List[torch.Tensor] = []
        for lam, zeta in zip(self.lz_lambdas, self.lz_zetas):
            base = 1.0 + lam * cos
            pref = 2.0 ** (1.0 - zeta)
            powers.append(torch.pow(base, zeta) * pref)
            dpowers.append(torch.pow(base, zeta - 1.0) * (pref * zeta * lam))
        angle = torch.stack(powers, dim=1)                       # A_u         [T, n_lz]
        dangle = torch.stack(dpowers, dim=1)                     # dA_u/dcos   [T, n_lz]
        xexp = torch.exp(-s[:, None] * self.eta_unique[None, :])  # X_v        [T, n_eta]
        wt = weights[ctr[first] * self.n_pairs + self.pair_index[sj, sk]]   # [T, n_ang]
        g_angle = (wt * (xexp @ self.expand_eta)) @ self.expand_lz.t()      # [T, n_lz]
        g_x = (wt * (angle @ self.expand_lz)) @ self.expand_eta.t()        # [T, n_eta]
        d_cos = w * (g_angle * dangle).sum(1)
        d_w = (g_angle * angle).sum(1)
        d_s = -w * (g_x * xexp * self.eta_unique[None, :]).sum(1)
        # chain rule to the edge vectors v1 (centre -> j) and v2 (centre -> k)
        c1 = d_w * dw1 / r1
        c2 = d_w * dw2 / r2
        c3 = d_w * dw3 / r3
        g1 = d_cos[:, None] * (v2 * inv12[:, None] - v1 * (cos / r1sq)[:, None]) \
            + (2.0 * d_s + c1)[:, None] * v1 - (2.0 * d_s + c3)[:, None] * d
        g2 = d_cos[:, None] * (v1 * inv12[:, None] - v2 * (cos / r2sq)[:, None]) \
            + (2.0 * d_s + c2)[:, None] * v2 + (2.0 * d_s + c3)[:, None] * d
        out = torch.zeros_like(vec)
        out = out.index_add(0, first, g1)
        return out.index_add(0, second, g2)

    def _angular(self, vec: torch.Tensor, ctr: torch.Tensor, nbr_sp: torch.Tensor,
                 n_local: int) -> torch.Tensor:
        r2 = (vec * vec).sum(1)
        fc = cosine_cutoff(torch.sqrt(r2), self.cutoff)
        partners = self._partners(ctr, n_local)
        bounds = self._chunks(partners)
        out = torch.zeros(n_local * self.n_pairs, self.n_angular, dtype=vec.dtype,
                          device=vec.device)
        for i in range(len(bounds) - 1):
            first, second = self._triplet_pairs(vec, partners, bounds[i], bounds[i + 1])
            row, terms = self._triplet_terms(vec, r2, fc, ctr, nbr_sp, first, second)
            out = out.index_add(0, row, terms)
        return out.reshape(n_local, self.n_pairs * self.n_angular)

    def _inference_edges(self, positions: torch.Tensor, edge_index: torch.Tensor,
                         n_local: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What ``_local_edges`` gives, less the vectors, with no autograd graph: (centre,
        neighbour, r^2) from the fused ``edge_r2`` (one pass, no [E, 3] tensor). The fused
        inference operator takes the positions and the neighbours itself."""
        ctr = edge_index[0]
        nbr = edge_index[1]
        r2 = torch.ops.lammps_adv.edge_r2(positions, ctr, nbr)
        idx = self._kept_in_order(ctr, r2, n_local)
        if idx is not None:
            return ctr[idx], nbr[idx], r2[idx]
        return ctr, nbr, r2

    def _use_fused(self, positions: torch.Tensor) -> bool:
        """The fused operator: on CPU (force training included)."""
        return self.fused and positions.device.type == "cpu"

    def _offsets(self, ctr: torch.Tensor, n_local: int) -> torch.Tensor:
        """Where each centre's edges begin in edges sorted by centre ([n_local + 1])."""
        counts = torch.bincount(ctr, minlength=n_local)
        return torch.cat([torch.zeros(1, dtype=torch.int64, device=ctr.device),
                          torch.cumsum(counts, 0)])

    def _fused_features(self, vec: torch.Tensor, ctr: torch.Tensor, nbr_sp: torch.Tensor,
                        n_local: int) -> torch.Tensor:
        return torch.ops.lammps_adv.bp_features(
            vec, self._offsets(ctr, n_local), nbr_sp, self.radial_etas, self.angular_etas,
            self.lambdas, self.zetas, self.pair_index, self.pair_weight, self.cutoff)

    def _linear_layers(self) -> List[torch.Tensor]:
        """Weight and bias of every Linear layer, species by species, in order."""
        out: List[torch.Tensor] = []
        for mlp in self.mlps:
            for layer in mlp:
                # the Linear layers (TorchScript's isinstance(layer, nn.Linear) matches only
                # the first Linear's shape; hasattr is decided per layer when scripting)
                if hasattr(layer, "weight"):
                    out.append(layer.weight)
                    out.append(layer.bias)
        return out

    def _fused_energies(self, positions: torch.Tensor, ctr: torch.Tensor, nbr: torch.Tensor,
                        species: torch.Tensor, n_local: int) -> torch.Tensor:
        """Network energies of the local atoms from the fused inference operator, given the
        edges (sorted by centre): per centre one scan of its triplets, the features, its
        species' MLP and the gradient pass, linked to the positions directly (first
        derivatives with respect to the positions only)."""
        return torch.ops.lammps_adv.bp_energies_from_positions(
            positions, nbr, self._offsets(ctr, n_local), species[nbr], species[:n_local],
            self.radial_etas, self.angular_etas, self.lambdas, self.zetas, self.pair_index,
            self.pair_weight, self.cutoff, self.feature_mean, self.feature_std,
            self._linear_layers(), self.activation_code, self.energy_scale, self.energy_shift)

    def _check_species(self, species: torch.Tensor) -> None:
        if species.numel() > 0:
            if int(species.min()) < 0 or int(species.max()) >= self.n_species:
                raise ValueError("species index out of range for model species "
                                 + ", ".join(self.species))

    # ------------------------------------------------------------------ public API
    def features(self, positions: torch.Tensor, species: torch.Tensor,
                 edge_index: torch.Tensor, n_local: int) -> torch.Tensor:
        """Symmetry functions [n_local, n_features] (differentiable, full graph)."""
        self._check_species(species)
        ctr, nbr, vec, _ = self._local_edges(positions, edge_index, n_local)
        nbr_sp = species[nbr]
        if self._use_fused(positions):
            return self._fused_features(vec, ctr, nbr_sp, n_local)
        return torch.cat([self._radial(vec, ctr, nbr_sp, n_local),
                          self._angular(vec, ctr, nbr_sp, n_local)], dim=1)

    def readout(self, feats: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Per-atom energies from features of atoms with the given species indices."""
        x = (feats - self.feature_mean[species]) / self.feature_std[species]
        e = torch.zeros(feats.shape[0], dtype=feats.dtype, device=feats.device)
        for s, mlp in enumerate(self.mlps):
            idx = (species == s).nonzero().squeeze(1)
            if idx.numel() > 0:
                e = e.index_add(0, idx, mlp(x.index_select(0, idx)).squeeze(1))
        return e * self.energy_scale + self.energy_shift[species]

    def forward(self, positions: torch.Tensor, species: torch.Tensor,
                edge_index: torch.Tensor, n_local: int) -> torch.Tensor:
        n_total = positions.shape[0]
        self._check_species(species)
        zeros_ghost = torch.zeros(n_total - n_local, dtype=positions.dtype,
                                  device=positions.device)
        if n_local == 0:
            return zeros_ghost + positions.sum() * 0.0
        local_sp = species[:n_local]
        if self._use_fused(positions) and not self.training:
            # inference (LAMMPS, relaxations, probes): one operator call per evaluation.
            # The edges once, without an autograd graph ([E, 3] indexing would cost a
            # scatter per evaluation): the operator takes the positions and links its
            # gradient to them, the baseline takes its few short edges' vectors
            ctr, nbr, r2 = self._inference_edges(positions, edge_index, n_local)
            e = self._fused_energies(positions, ctr, nbr, species, n_local) \
                + self.repulsion.edge_energies(positions, r2, ctr, nbr, species, n_local)
            return torch.cat([e, zeros_ghost])
        lean = positions.requires_grad and torch.is_grad_enabled() and not self.training
        if not lean or self._use_fused(positions):
            # features(): the fused operator where it applies, else the full autograd graph
            feats = self.features(positions, species, edge_index, n_local)
            e = self.readout(feats, local_sp) \
                + self.repulsion(positions, species, edge_index, n_local)
            return torch.cat([e, zeros_ghost])
        # memory-lean energies + position gradient (first derivatives only)
        ctr, nbr, vec, _ = self._local_edges(positions, edge_index, n_local)
        nbr_sp = species[nbr]
        vd = vec.detach().requires_grad_(True)
        g_rad = self._radial(vd, ctr, nbr_sp, n_local)
        # detached input and constant buffers: no autograd graph is built here
        g_ang = self._angular(vd.detach(), ctr, nbr_sp, n_local)
        g_ang = g_ang.requires_grad_(True)
        e = self.readout(torch.cat([g_rad, g_ang], dim=1), local_sp)
        grads = torch.autograd.grad([e.sum()], [vd, g_ang], retain_graph=True,
                                    allow_unused=True)
        g_vec = grads[0]
        de_dg = grads[1]
        if g_vec is None:
            g_vec = torch.zeros_like(vd)
        if de_dg is not None:
            weights = de_dg.reshape(n_local * self.n_pairs, self.n_angular).detach()
            vdd = vd.detach()
            partners = self._partners(ctr, n_local)
            bounds = self._chunks(partners)
            for i in range(len(bounds) - 1):
                first, second = self._triplet_pairs(vdd, partners, bounds[i], bounds[i + 1])
                g_vec = g_vec + self._triplet_grad(vdd, ctr, nbr_sp, first, second, weights)
        # zero-valued term whose gradient w.r.t. positions is the accumulated one
        surrogate = ((vec - vec.detach()) * g_vec.detach()).sum()
        e = e.detach() + self.repulsion(positions, species, edge_index, n_local)
        e0 = e[:1] + surrogate
        return torch.cat([e0, e[1:], zeros_ghost])
