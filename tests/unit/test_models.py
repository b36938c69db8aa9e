"""Behler-Parrinello and graph networks: symmetry functions against a direct loop,
invariances, forces and stress against finite differences, TorchScript export, bad input."""
import itertools
import math

import numpy as np
import pytest
import torch

from lammps_adv.models.bp import BehlerParrinello, cosine_cutoff
from lammps_adv.models.contract import evaluate, load, periodic_input, species_indices
from lammps_adv.core.errors import ModelError
from lammps_adv.models.export import export, model_from_hparams, script
from lammps_adv.models.gnn import GraphNetwork
from lammps_adv.lammps.structures import quartz

SPECIES = ["Si", "O"]


def random_sio2(n_units=4, length=6.0, seed=0, min_dist=1.4):
    """A small periodic SiO2 cell: random positions with a minimum distance."""
    rng = np.random.default_rng(seed)
    names = ["Si"] * n_units + ["O"] * (2 * n_units)
    cell = np.diag([length, length * 1.05, length * 0.95])
    cell[1, 0] = 0.4     # a little triclinic
    pos = []
    while len(pos) < len(names):
        p = rng.random(3) @ cell
        ok = True
        for q in pos:
            d = p - q
            frac = np.linalg.solve(cell.T, d)
            d = (frac - np.round(frac)) @ cell
            if np.linalg.norm(d) < min_dist:
                ok = False
                break
        if ok:
            pos.append(p)
    return np.array(pos), cell, names


def small_bp(**kw):
    torch.manual_seed(1)
    kw.setdefault("cutoff", 4.0)
    m = BehlerParrinello(**kw)
    with torch.no_grad():   # non-trivial standardisation so that it is exercised too
        m.feature_std.uniform_(0.5, 2.0)
        m.feature_mean.uniform_(-0.1, 0.1)
        m.energy_scale.fill_(0.7)
        m.energy_shift.copy_(torch.tensor([-10.0, -5.0]))
    return m.eval()


def small_gnn(**kw):
    torch.manual_seed(2)
    kw.setdefault("cutoff", 3.5)
    kw.setdefault("width", 16)
    kw.setdefault("hidden", (16, 16))
    kw.setdefault("avg_neighbors", 1.0)
    m = GraphNetwork(**kw).eval()
    with torch.no_grad():       # the readout starts at zero (training); randomise it here
        torch.nn.init.normal_(m.readout_mlp[-1].weight, std=1.0)
        m.energy_scale.fill_(3.0)
    return m


MODELS = {"bp": small_bp, "gnn": small_gnn}


# ------------------------------------------------------------------ parameters (Artrith, Hiller, Behler 2013; JAX MD)
def test_default_parameters_are_the_published_ones():
    m = BehlerParrinello()
    bohr2 = 0.529177 ** 2
    assert m.cutoff == 8.0 and m.n_features == 82
    assert m.n_radial == 8 and m.n_angular == 22 and m.n_pairs == 3
    assert np.allclose(m.radial_etas.numpy() * bohr2,
                       [9e-4, 0.01, 0.02, 0.035, 0.06, 0.1, 0.2, 0.4])
    assert np.allclose(m.angular_etas.numpy() * bohr2,
                       [1e-4] * 4 + [0.003] * 4 + [0.008] * 2 + [0.015] * 4 + [0.025] * 4
                       + [0.045] * 4)
    assert m.lambdas.tolist() == [-1, 1] * 4 + [1] * 14
    assert m.zetas.tolist() == [1, 1, 2, 2] * 2 + [1, 2] + [1, 2, 4, 16] * 3
    assert [mlp[0].out_features for mlp in m.mlps] == [30, 30]
    assert isinstance(m.mlps[0][1], torch.nn.Tanh) and len(m.mlps[0]) == 5
    g = GraphNetwork()
    assert g.n_rounds == 2 and g.receptive_field == 2 * g.cutoff


# ------------------------------------------------------------------ symmetry functions
def direct_features(pos, cell, names, m: BehlerParrinello):
    """Looped, slow, independent: images of every atom, then the textbook double sums."""
    rc = m.cutoff
    eta_r = m.radial_etas.tolist()
    eta_a, lam, zeta = m.angular_etas.tolist(), m.lambdas.tolist(), m.zetas.tolist()
    sp = [SPECIES.index(s) for s in names]
    pairs = [(a, b) for a in range(2) for b in range(a, 2)]

    def fc(r):
        return 0.5 * (math.cos(math.pi * r / rc) + 1.0) if r < rc else 0.0

    out = []
    for i in range(len(pos)):
        nbrs = []     # (vector, species)
        for j in range(len(pos)):
            for n in itertools.product(range(-2, 3), repeat=3):
                v = pos[j] + np.array(n) @ cell - pos[i]
                r = float(np.linalg.norm(v))
                if 1e-9 < r < rc:
                    nbrs.append((v, sp[j]))
        rad = [[0.0] * len(eta_r) for _ in range(2)]
        for v, s in nbrs:
            r = np.linalg.norm(v)
            for k, e in enumerate(eta_r):
                rad[s][k] += math.exp(-e * r * r) * fc(r)
        ang = [[0.0] * len(eta_a) for _ in pairs]
        for p, (a, b) in enumerate(pairs):
            for j, (vj, sj) in enumerate(nbrs):
                if sj != a:
                    continue
                for k, (vk, sk) in enumerate(nbrs):
                    if k == j or sk != b:
                        continue
                    rij, rik = np.linalg.norm(vj), np.linalg.norm(vk)
                    rjk = np.linalg.norm(vk - vj)
                    cos = float(vj @ vk / (rij * rik))
                    for q in range(len(eta_a)):
                        ang[p][q] += 2.0 ** (1 - zeta[q]) * (1 + lam[q] * cos) ** zeta[q] \
                            * math.exp(-eta_a[q] * (rij ** 2 + rik ** 2 + rjk ** 2)) \
                            * fc(rij) * fc(rik) * fc(rjk)
        out.append(sum(rad, []) + sum(ang, []))
    return np.array(out)


def test_symmetry_functions_equal_direct_loop():
    pos, cell, names = random_sio2(n_units=3, length=5.5, seed=3)
    m = small_bp(cutoff=3.8, triplet_chunk=50)        # several triplet chunks
    inp = periodic_input(m, pos, cell, names)
    ext = torch.from_numpy(pos[inp.image_of] + inp.offsets)
    feats = m.features(ext, torch.from_numpy(inp.species[inp.image_of]),
                       torch.from_numpy(inp.edge_index), inp.n).numpy()
    ref = direct_features(pos, cell, names, m)
    assert feats.shape == (len(pos), 82)
    assert np.abs(ref).max(axis=0).min() >= 0.0 and np.abs(ref[:, 16:]).max() > 1e-3
    np.testing.assert_allclose(feats, ref, rtol=1e-10, atol=1e-12)


def test_cosine_cutoff():
    r = torch.tensor([0.0, 2.0, 4.0, 5.0])
    assert cosine_cutoff(r, 4.0).tolist() == pytest.approx([1.0, 0.5, 0.0, 0.0])


# ------------------------------------------------------------------ invariances
def rotation(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


@pytest.mark.parametrize("kind", ["bp", "gnn"])
def test_energy_invariances(kind):
    m = MODELS[kind]()
    pos, cell, names = random_sio2(seed=4)
    e0, f0 = evaluate(m, pos, cell, names).values()
    assert abs(e0) > 1e-3 and np.abs(f0).max() > 1e-3
    # rotation (forces rotate with it)
    R = rotation(5)
    e, f = evaluate(m, pos @ R.T, cell @ R.T, names).values()
    assert e == pytest.approx(e0, rel=1e-11, abs=1e-11)
    np.testing.assert_allclose(f, f0 @ R.T, atol=1e-10)
    # translation
    e, f = evaluate(m, pos + np.array([0.3, -1.7, 12.1]), cell, names).values()
    assert e == pytest.approx(e0, rel=1e-11, abs=1e-11)
    np.testing.assert_allclose(f, f0, atol=1e-10)
    # permutation of same-species atoms (Si among Si, O among O)
    perm = np.concatenate([np.random.default_rng(6).permutation(4),
                           4 + np.random.default_rng(7).permutation(8)])
    e, f = evaluate(m, pos[perm], cell, [names[i] for i in perm]).values()
    assert e == pytest.approx(e0, rel=1e-11, abs=1e-11)
    np.testing.assert_allclose(f, f0[perm], atol=1e-10)
    # periodic image choice: atoms moved by lattice vectors, and another cell of the lattice
    shifts = np.random.default_rng(8).integers(-2, 3, size=(len(pos), 3))
    e, f = evaluate(m, pos + shifts @ cell, cell, names).values()
    assert e == pytest.approx(e0, rel=1e-11, abs=1e-11)
    np.testing.assert_allclose(f, f0, atol=1e-10)
    other = np.array([[1, 0, 0], [1, 1, 0], [-1, 0, 1]]) @ cell     # unimodular change
    e, f = evaluate(m, pos, other, names).values()
    assert e == pytest.approx(e0, rel=1e-11, abs=1e-11)
    np.testing.assert_allclose(f, f0, atol=1e-10)
    # a supercell has twice the energy
    big = np.concatenate([pos, pos + cell[0]])
    e, f = evaluate(m, big, cell * np.array([[2], [1], [1]]), names + names).values()
    assert e == pytest.approx(2 * e0, rel=1e-11)


# ------------------------------------------------------------------ forces and stress
@pytest.mark.parametrize("kind,train", [("bp", False), ("bp", True), ("gnn", False)])
def test_forces_and_stress_equal_finite_differences(kind, train):
    m = MODELS[kind]()
    m.train(train)          # BP: eval -> memory-lean path, train -> full autograd graph
    pos, cell, names = random_sio2(seed=9)
    e0, f0, s0 = evaluate(m, pos, cell, names, ("energy", "forces", "stress")).values()
    assert m.training == train      # evaluate restores the mode
    h = 1e-5
    for i, k in [(0, 0), (3, 1), (7, 2), (11, 0)]:
        p = pos.copy()
        p[i, k] += h
        ep, _ = evaluate(m, p, cell, names).values()
        p[i, k] -= 2 * h
        em, _ = evaluate(m, p, cell, names).values()
        assert -(ep - em) / (2 * h) == pytest.approx(f0[i, k], rel=1e-6, abs=1e-8)
    vol = abs(np.linalg.det(cell))
    for a, b in [(0, 0), (1, 2), (2, 2)]:
        d = np.zeros((3, 3))
        d[a, b] = d[b, a] = 0.5 * h if a != b else h
        ep, _ = evaluate(m, pos @ (np.eye(3) + d), cell @ (np.eye(3) + d), names).values()
        em, _ = evaluate(m, pos @ (np.eye(3) - d), cell @ (np.eye(3) - d), names).values()
        assert (ep - em) / (2 * h) / vol == pytest.approx(s0[a, b], rel=1e-6, abs=1e-9)
    assert np.abs(f0.sum(axis=0)).max() < 1e-10          # no net force


def test_bp_memory_lean_path_equals_full_graph():
    m = small_bp(cutoff=4.5, triplet_chunk=300)
    pos, cell, names = random_sio2(seed=10)
    inp = periodic_input(m, pos, cell, names)
    res = {}
    for mode in (True, False):
        m.train(mode)
        p = torch.tensor(pos, requires_grad=True)
        ext = p[torch.from_numpy(inp.image_of)] + torch.from_numpy(inp.offsets)
        e = m(ext, torch.from_numpy(inp.species[inp.image_of]),
              torch.from_numpy(inp.edge_index), inp.n)
        g, = torch.autograd.grad(e[:inp.n].sum(), p)
        res[mode] = (e.detach().numpy(), g.numpy())
    np.testing.assert_allclose(res[True][0], res[False][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res[True][1], res[False][1], rtol=1e-10, atol=1e-12)


def test_bp_ignores_ghost_centred_edges_and_gnn_needs_them():
    from lammps_adv.models.graph import periodic_graph
    pos, cell, names = random_sio2(seed=11)
    sp = species_indices(SPECIES, names)
    for kind in ("bp", "gnn"):
        m = MODELS[kind]()
        rf = m.receptive_field
        ext, image_of, edges_all = periodic_graph(pos, cell, m.cutoff, halo=rf, ghost_edges=True)
        _, _, edges_loc = periodic_graph(pos, cell, m.cutoff, halo=rf, ghost_edges=False)
        args = (torch.from_numpy(ext), torch.from_numpy(sp[image_of]))
        e_all = m(*args, torch.from_numpy(edges_all), len(pos))
        e_loc = m(*args, torch.from_numpy(edges_loc), len(pos))
        assert e_all.shape == (len(ext),) and e_all.dtype == torch.float64
        assert torch.all(e_all[len(pos):] == 0)
        if kind == "bp":
            assert torch.allclose(e_all, e_loc, rtol=1e-13, atol=1e-13)
        else:   # 2 rounds: ghost states matter, so ghost-centred edges change the result
            assert float((e_all - e_loc).detach().abs().max()) > 1e-5
        # shuffled edge order gives the same energies
        perm = torch.from_numpy(np.random.default_rng(1).permutation(edges_all.shape[1]))
        e_sh = m(*args, torch.from_numpy(edges_all)[:, perm], len(pos))
        assert torch.allclose(e_all, e_sh, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ export
@pytest.mark.parametrize("kind", ["bp", "gnn"])
def test_exported_model_equals_eager(kind, tmp_path):
    m = MODELS[kind]()
    path = export(m, tmp_path / f"{kind}.pt")
    sm = load(path)
    assert sm.cutoff == m.cutoff and list(sm.species) == SPECIES
    assert sm.receptive_field == m.receptive_field
    assert (kind == "gnn") == (sm.receptive_field > sm.cutoff)
    pos, cell, names = random_sio2(seed=12)
    e1, f1, s1 = evaluate(m, pos, cell, names, ("energy", "forces", "stress")).values()
    e2, f2, s2 = evaluate(sm, pos, cell, names, ("energy", "forces", "stress")).values()
    e3, f3 = evaluate(str(path), pos, cell, names).values()
    assert e1 == pytest.approx(e2, rel=1e-13, abs=1e-13) and e2 == e3
    np.testing.assert_allclose(f1, f2, atol=1e-12)
    np.testing.assert_allclose(s1, s2, atol=1e-12)
    # hyper-parameters travel with the file: the eager twin is rebuilt from them
    twin = model_from_hparams(sm.hparams)
    twin.load_state_dict(m.state_dict())
    assert evaluate(twin, pos, cell, names)["energy"] == pytest.approx(e1, rel=1e-13)


def test_default_bp_on_quartz_exports_and_matches():
    """Default parameters (8 A, 82 features) on a 9-atom quartz cell."""
    torch.manual_seed(0)
    m = BehlerParrinello().eval()
    at = quartz()
    sm = script(m)
    e1, f1 = evaluate(m, at.get_positions(), at.cell.array, at.get_chemical_symbols()).values()
    e2, f2 = evaluate(sm, at.get_positions(), at.cell.array, at.get_chemical_symbols()).values()
    assert e1 == pytest.approx(e2, rel=1e-13)
    np.testing.assert_allclose(f1, f2, atol=1e-12)
    assert np.abs(f1.sum(axis=0)).max() < 1e-10


# ------------------------------------------------------------------ bad input
def test_bad_input_gives_clear_errors(tmp_path):
    m = small_bp()
    pos, cell, names = random_sio2(seed=13)
    with pytest.raises(ValueError, match="unknown species Al"):
        evaluate(m, pos, cell, names[:-1] + ["Al"])
    with pytest.raises(ValueError, match="singular"):
        evaluate(m, pos, np.zeros((3, 3)), names)
    with pytest.raises(ValueError, match="species names for"):
        evaluate(m, pos, cell, names[:-1])
    sm = script(m)
    inp = periodic_input(m, pos, cell, names)
    bad = torch.from_numpy(inp.species[inp.image_of])
    bad[0] = 5
    for model in (m, sm):
        with pytest.raises(Exception, match="species index out of range"):
            model(torch.from_numpy(pos[inp.image_of] + inp.offsets), bad,
                  torch.from_numpy(inp.edge_index), inp.n)
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model")
    with pytest.raises(ModelError, match="not a TorchScript model"):
        load(junk)
    with pytest.raises(ModelError, match="not found"):
        load(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="unknown model kind"):
        model_from_hparams({"kind": "mace"})
    with pytest.raises(ValueError, match="same length"):
        BehlerParrinello(lambdas=[1.0])


def cell_atoms_input(m, seed: int):
    """A random periodic SiO2 cell as the images-as-copies input (edges centred on cell
    atoms), the cell positions p (requiring grad) the images derive from, and the contract
    forward's energy and forces on the full ghost graph: (p, ext, species, edges, image_of,
    n, e0, f0)."""
    pos, cell, names = random_sio2(seed=seed)
    e0, f0 = evaluate(m, pos, cell, names, periodic=False).values()
    inp = periodic_input(m, pos, cell, names, local_only=True)
    p = torch.tensor(pos, requires_grad=True)
    image_of = torch.from_numpy(inp.image_of)
    ext = p[image_of] + torch.from_numpy(inp.offsets)
    return (p, ext, torch.from_numpy(inp.species)[image_of], torch.from_numpy(inp.edge_index),
            image_of, inp.n, e0, f0)


def test_gnn_periodic_training_path_equals_contract_forward():
    """energies_periodic (images as copies of cell atoms, used in training) == forward on
    the full ghost graph of the contract (used by LAMMPS on several ranks, and by evaluate
    with periodic=False)."""
    m = small_gnn()
    p, ext, species, edges, image_of, n, e0, f0 = cell_atoms_input(m, seed=14)
    e = m.energies_periodic(ext, species, edges, n, image_of)
    g, = torch.autograd.grad(e.sum(), p)
    assert float(e.sum().detach()) == pytest.approx(e0, rel=1e-12)
    np.testing.assert_allclose(-g.numpy(), f0, atol=1e-10)


def test_gnn_halo_methods_equal_contract_forward():
    """The halo methods (one round at a time, the ghosts' states given: what LAMMPS runs on
    several ranks) with each image's states taken from its cell atom == forward on the full
    ghost graph; and a round out of range is an error."""
    m = small_gnn()
    p, ext, species, edges, image_of, n, e0, f0 = cell_atoms_input(m, seed=15)
    states = m.halo_states(species)
    assert states.shape[0] == len(image_of)
    for layer in range(m.n_rounds):
        local = m.halo_layer(layer, ext, species, edges, n, states)
        assert local.shape == (n, states.shape[1])
        states = local[image_of]                 # what the forward communication does
    e = m.halo_energies(ext, species, edges, n, local)
    g, = torch.autograd.grad(e.sum(), p)
    assert float(e.sum().detach()) == pytest.approx(e0, rel=1e-12)
    np.testing.assert_allclose(-g.numpy(), f0, atol=1e-10)
    with pytest.raises(ValueError, match="out of range"):
        m.halo_layer(m.n_rounds, ext, species, edges, n, states)
