"""Graph network (message passing over edges within the cutoff), model contract of docs/plugin.md.

    h_i^0      = embedding(s_i)                                   species embedding, width W
    rbf_k(r)   = exp(-(r - mu_k)^2 / (2 sigma^2)),  mu_k = k r_c / (K - 1), sigma = r_c / K
    m_ij^t     = fc(r_ij) * MLP_edge^t([h_i^{t-1}, h_j^{t-1}, rbf(r_ij)])
    h_i^t      = h_i^{t-1} + MLP_node^t([h_i^{t-1}, sum_j m_ij^t / n_avg])
    E_i        = scale * MLP_out(h_i^T) + shift[s_i]

fc is the cosine cutoff, so messages (and energies) go smoothly to zero at r_c. Only
distances enter: energies are invariant under rotations, translations and permutations.
Defaults (after JAX MD's graph network): r_c = 5 A, T = 2 rounds, W = 64, MLPs (64, 64),
softplus, K = 16. With T rounds an atom's energy depends on atoms up to T * r_c away, so
``receptive_field = T * cutoff`` and the input must include edges centred on ghost atoms
(``periodic_graph(..., halo=receptive_field, ghost_edges=True)``; the LAMMPS plugin does the
same from ``receptive_field``). Round t only updates atoms within T - t hops of the local
atoms, which is all the local energies need.
"""

import json
from typing import List, Sequence

import torch
from torch import nn

from lammps_adv.models.bp import ACTIVATIONS, check_species_names, cosine_cutoff, make_mlp
from lammps_adv.models.edges import local_edges
from lammps_adv.models.repulsion import PairRepulsion


class EdgeMLP(nn.Module):
    """MLP on [h_i, h_j, rbf_ij], with the first layer split so it acts on nodes, not edges."""

    def __init__(self, width: int, n_rbf: int, hidden: Sequence[int], activation: str):
        super().__init__()
        h0 = int(hidden[0])
        self.lin_ctr = nn.Linear(width, h0, dtype=torch.float64)
        self.lin_nbr = nn.Linear(width, h0, bias=False, dtype=torch.float64)
        self.lin_rbf = nn.Linear(n_rbf, h0, bias=False, dtype=torch.float64)
        self.act = ACTIVATIONS[activation]()
        self.rest = make_mlp(h0, list(hidden[1:]), width, activation)

    def forward(self, h: torch.Tensor, ctr: torch.Tensor, nbr: torch.Tensor,
                rbf: torch.Tensor) -> torch.Tensor:
        x = self.lin_ctr(h)[ctr] + self.lin_nbr(h)[nbr] + self.lin_rbf(rbf)
        return self.rest(self.act(x))


class GraphNetwork(nn.Module):
    """Message-passing network under the lammps-adv model contract."""

    cutoff: float
    receptive_field: float
    species: List[str]
    hparams: str
    n_rounds: int
    n_species: int
    inv_avg_neighbors: float
    rbf_gamma: float

    def __init__(self, species: Sequence[str] = ("Si", "O"), cutoff: float = 5.0,
                 n_rounds: int = 2, width: int = 64, hidden: Sequence[int] = (64, 64),
                 n_rbf: int = 16, activation: str = "softplus", avg_neighbors: float = 30.0,
                 repulsion: dict | None = None):
        super().__init__()
        self.species = check_species_names(species)
        if not cutoff > 0:
            raise ValueError(f"cutoff must be > 0, got {cutoff}")
        if n_rounds < 1:
            raise ValueError(f"n_rounds must be >= 1, got {n_rounds}")
        if not hidden:
            raise ValueError("hidden must list at least one layer width")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
        self.cutoff = float(cutoff)
        self.n_rounds = int(n_rounds)
        self.receptive_field = self.n_rounds * self.cutoff
        self.n_species = len(self.species)
        self.inv_avg_neighbors = 1.0 / float(avg_neighbors)
        self.hparams = json.dumps({
            "kind": "gnn", "species": self.species, "cutoff": self.cutoff,
            "n_rounds": self.n_rounds, "width": int(width), "hidden": [int(h) for h in hidden],
            "n_rbf": int(n_rbf), "activation": activation, "avg_neighbors": float(avg_neighbors),
            "repulsion": repulsion})
        # the repulsive baseline (models/repulsion.py): E = baseline + network
        self.repulsion = PairRepulsion(self.species, repulsion)
        f64 = torch.float64
        self.register_buffer("rbf_centres", torch.linspace(0.0, self.cutoff, n_rbf, dtype=f64))
        sigma = self.cutoff / n_rbf
        self.rbf_gamma = 1.0 / (2.0 * sigma * sigma)
        self.embedding = nn.Embedding(self.n_species, width, dtype=f64)
        self.edge_mlps = nn.ModuleList([EdgeMLP(width, n_rbf, hidden, activation)
                                        for _ in range(self.n_rounds)])
        self.node_mlps = nn.ModuleList([make_mlp(2 * width, hidden, width, activation)
                                        for _ in range(self.n_rounds)])
        self.readout_mlp = make_mlp(width, hidden, 1, activation)
        self.register_buffer("energy_shift", torch.zeros(self.n_species, dtype=f64))
        self.register_buffer("energy_scale", torch.ones((), dtype=f64))
        # variance-preserving initialisation (LeCun normal, zero biases): PyTorch's default
        # shrinks the signal ~3x per layer, and after ~10 layers the untrained network
        # hardly sees the geometry (forces ~1e-4 of the energy scale), which stalls force
        # training
        for mod in self.modules():
            if isinstance(mod, nn.Linear):
                nn.init.normal_(mod.weight, std=mod.in_features ** -0.5)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
        # only ~1-2 of the K Gaussians are non-zero at any distance: a fan-in of K would
        # make the geometry a small perturbation of the species terms
        for edge_mlp in self.edge_mlps:
            nn.init.normal_(edge_mlp.lin_rbf.weight, std=1.0)
        nn.init.normal_(self.embedding.weight, std=0.3)
        # the energy starts at the per-species shift (no random offset for the optimiser to
        # remove first), while the gradient to the last layer already sees the geometry
        nn.init.zeros_(self.readout_mlp[-1].weight)

    def _check_species(self, species: torch.Tensor) -> None:
        if species.numel() > 0:
            if int(species.min()) < 0 or int(species.max()) >= self.n_species:
                raise ValueError("species index out of range for model species "
                                 + ", ".join(self.species))

    def forward(self, positions: torch.Tensor, species: torch.Tensor,
                edge_index: torch.Tensor, n_local: int) -> torch.Tensor:
        self._check_species(species)
        base = self.repulsion(positions, species, edge_index, n_local)
        n_total = positions.shape[0]
        zeros_ghost = torch.zeros(n_total - n_local, dtype=positions.dtype,
                                  device=positions.device)
        if n_local == 0:
            return zeros_ghost + positions.sum() * 0.0
        ctr = edge_index[0]
        nbr = edge_index[1]
        pd = positions.detach()
        d = pd[nbr] - pd[ctr]
        r2 = (d * d).sum(1)
        keep = ((r2 < self.cutoff * self.cutoff) & (r2 > 0.0)).nonzero().squeeze(1)
        ctr = ctr[keep]
        nbr = nbr[keep]
        # active[t]: nodes whose state after round t+1 is needed (within R-1-t hops of local)
        act = torch.zeros(n_total, dtype=torch.bool, device=positions.device)
        act[:n_local] = True
        active: List[torch.Tensor] = [act]
        for _ in range(self.n_rounds - 1):
            nxt = act.clone()
            nxt[nbr[act[ctr]]] = True
            act = nxt
            active.insert(0, act)
        # only edges centred on nodes of the first round are ever used
        used = active[0][ctr].nonzero().squeeze(1)
        ctr = ctr[used]
        nbr = nbr[used]
        vec = positions[nbr] - positions[ctr]
        r = torch.sqrt((vec * vec).sum(1))
        fc = cosine_cutoff(r, self.cutoff)
        rbf = torch.exp(-self.rbf_gamma * (r[:, None] - self.rbf_centres[None, :]) ** 2)
        h = self.embedding(species)
        t = 0
        for edge_mlp, node_mlp in zip(self.edge_mlps, self.node_mlps):
            act = active[t]
            sel = act[ctr].nonzero().squeeze(1)
            c = ctr[sel]
            m = edge_mlp(h, c, nbr[sel], rbf[sel]) * fc[sel][:, None]
            agg = torch.zeros_like(h).index_add(0, c, m) * self.inv_avg_neighbors
            nodes = act.nonzero().squeeze(1)
            upd = node_mlp(torch.cat([h[nodes], agg[nodes]], dim=1))
            h = h.index_add(0, nodes, upd)
            t += 1
        local_sp = species[:n_local]
        e = self.readout_mlp(h[:n_local]).squeeze(1) * self.energy_scale \
            + self.energy_shift[local_sp] + base
        return torch.cat([e, zeros_ghost])

    @torch.jit.export
    def energies_periodic(self, positions: torch.Tensor, species: torch.Tensor,
                          edge_index: torch.Tensor, n_local: int,
                          image_of: torch.Tensor) -> torch.Tensor:
        """Per-atom energies [n_local] of a periodic cell, with images as copies.

        Same result as ``forward`` on the full ghost graph, but the state of an image is
        taken from its cell atom (``image_of``), so only edges centred on the cell atoms are
        needed (``periodic_graph(..., halo=cutoff, ghost_edges=False)``) and each round
        updates n_local nodes only: about 1.6x less work than ``forward`` at 3000 atoms. Used
        for training and, exported with the model, by Python's periodic evaluations
        (``lammps_adv.calculators``) and by the LAMMPS plugin wherever all ghosts of a
        rank are images of its own atoms (one rank).
        """
        # written out here and in the halo methods, not shared through helper methods: in
        # LAMMPS (TorchScript, optimisations off) the version with helper methods took
        # 15-20 % longer per step on the 3000-atom glass, though it ran the same operations
        self._check_species(species)
        base = self.repulsion(positions, species, edge_index, n_local)
        ctr, nbr, _, r = local_edges(positions, edge_index, n_local, self.cutoff)
        fc = cosine_cutoff(r, self.cutoff)
        rbf = torch.exp(-self.rbf_gamma * (r[:, None] - self.rbf_centres[None, :]) ** 2)
        nbr_node = image_of[nbr]
        local_sp = species[:n_local]
        h = self.embedding(local_sp)
        for edge_mlp, node_mlp in zip(self.edge_mlps, self.node_mlps):
            m = edge_mlp(h, ctr, nbr_node, rbf) * fc[:, None]
            agg = torch.zeros_like(h).index_add(0, ctr, m) * self.inv_avg_neighbors
            h = h + node_mlp(torch.cat([h, agg], dim=1))
        return self.readout_mlp(h).squeeze(1) * self.energy_scale \
            + self.energy_shift[local_sp] + base

    # ---- the halo contract (docs/plugin.md): one round at a time, node states of ghosts
    # exchanged between rounds by the caller (LAMMPS' forward communication on MPI ranks)
    @torch.jit.export
    def halo_states(self, species: torch.Tensor) -> torch.Tensor:
        """Node states [N, W] before the first round (they depend on the species only)."""
        self._check_species(species)
        return self.embedding(species)

    @torch.jit.export
    def halo_layer(self, layer: int, positions: torch.Tensor, species: torch.Tensor,
                   edge_index: torch.Tensor, n_local: int, states: torch.Tensor) -> torch.Tensor:
        """Round ``layer`` (0 .. n_rounds-1): the new states [n_local, W] of the local atoms
        from ``states`` [N, W] of local and ghost atoms after the round before. Edges
        centred on local atoms (ghosts within one cutoff) are all it needs."""
        if layer < 0 or layer >= self.n_rounds:
            raise ValueError(f"halo_layer: layer {layer} out of range 0..{self.n_rounds - 1}")
        ctr, nbr, _, r = local_edges(positions, edge_index, n_local, self.cutoff)
        fc = cosine_cutoff(r, self.cutoff)
        rbf = torch.exp(-self.rbf_gamma * (r[:, None] - self.rbf_centres[None, :]) ** 2)
        t = 0
        out = states[:n_local]
        for edge_mlp, node_mlp in zip(self.edge_mlps, self.node_mlps):
            if t == layer:
                m = edge_mlp(states, ctr, nbr, rbf) * fc[:, None]
                agg = torch.zeros_like(out).index_add(0, ctr, m) * self.inv_avg_neighbors
                out = out + node_mlp(torch.cat([out, agg], dim=1))
            t += 1
        return out

    @torch.jit.export
    def halo_energies(self, positions: torch.Tensor, species: torch.Tensor,
                      edge_index: torch.Tensor, n_local: int,
                      states: torch.Tensor) -> torch.Tensor:
        """Per-atom energies [n_local] from the local atoms' states [n_local, W] after the
        last round."""
        return self.readout_mlp(states).squeeze(1) * self.energy_scale \
            + self.energy_shift[species[:n_local]] \
            + self.repulsion(positions, species, edge_index, n_local)
