"""The fused Behler-Parrinello kernel (torch.ops.lammps_adv.bp_features) against the
pure-torch implementation it replaces on CPU: features, energies and forces to 1e-10."""
from pathlib import Path

import numpy as np
import pytest
import torch

from lammps_adv.models.bp import LAMBDAS, ZETAS, BehlerParrinello, default_angular_etas
from lammps_adv.models.contract import evaluate, load, periodic_input
from lammps_adv.models.export import export, reexport
from lammps_adv.lammps.structures import read_lammps_data
from test_models import random_sio2, small_bp

# six functions share one eta (the gradient pass takes them four at a time), powers 3 and 5
# are products of squarings
SIX_OF_ONE_ETA = {"angular_etas": [0.1] * 6, "lambdas": [1.0, -1.0, 1.0, -1.0, 1.0, 1.0],
                  "zetas": [1.0, 1.0, 2.0, 3.0, 5.0, 4.0]}
OLD_FILE = Path(__file__).parent.parent / "data" / "bp_before_fused_kernel.pt"


def _both(model, pos, cell, names):
    """(energy, forces) with the fused kernel and with the pure-torch path."""
    out = []
    for fused in (True, False):
        model.fused = fused
        out.append(tuple(evaluate(model, pos, cell, names).values()))
    model.fused = True
    return out


def _close(a, b, rtol=1e-10):
    (e1, f1), (e0, f0) = a, b
    assert abs(e1 - e0) <= rtol * abs(e0)
    assert np.abs(f1 - f0).max() <= rtol * np.abs(f0).max()


def _features(model, pos, cell, names, fused):
    model.fused = fused
    inp = periodic_input(model, pos, cell, names)
    ext = torch.from_numpy(pos[inp.image_of] + inp.offsets)
    with torch.no_grad():
        return model.features(ext, torch.from_numpy(inp.species[inp.image_of]),
                              torch.from_numpy(inp.edge_index), inp.n).numpy()


def test_glass_energy_forces_equal_pure_torch(glass_192):
    atoms = read_lammps_data(glass_192)
    m = small_bp(cutoff=8.0)                       # the default parameters, 8 A
    args = (atoms.get_positions(), atoms.cell.array, atoms.get_chemical_symbols())
    fused, plain = _both(m, *args)
    assert np.abs(plain[1]).max() > 0.01           # a real test: forces are not zero
    _close(fused, plain)


@pytest.mark.parametrize("params", [
    {},                                                             # defaults at 4 A
    {"zetas": [1.5, 2.5] + [1.0] * 20, "lambdas": [-1.0, 1.0] * 11},  # non-integer powers
    {"angular_etas": [0.05, 0.2], "lambdas": [1.0, -1.0], "zetas": [33.0, 64.0]},  # high powers
    SIX_OF_ONE_ETA,
    # etas as powers of a common exp (the kernel's ladders): 1 and 64 x 0.001, and one alone
    {"angular_etas": [0.001, 0.064, 0.0371], "lambdas": [1.0, -1.0, 1.0],
     "zetas": [1.0, 2.0, 4.0]},
    # the default 22 functions in reverse order and at half the etas: the kernel's registers
    # path for the default set maps them back
    {"angular_etas": [e / 2 for e in default_angular_etas()][::-1], "lambdas": LAMBDAS[::-1],
     "zetas": ZETAS[::-1]},
])
def test_parameters_and_triclinic_cell_equal_pure_torch(params):
    pos, cell, names = random_sio2(n_units=4, length=6.0, seed=5)   # triclinic, < 2 cutoffs
    m = small_bp(**params)
    np.testing.assert_allclose(_features(m, pos, cell, names, True),
                               _features(m, pos, cell, names, False), rtol=1e-10, atol=1e-13)
    _close(*_both(m, pos, cell, names))


def test_three_species_and_a_lone_atom():
    rng = np.random.default_rng(0)
    cell = np.diag([9.0, 9.0, 9.0])
    pos = rng.random((20, 3)) * 9.0
    pos[0] = [0.1, 0.1, 0.1]                                   # the only Al
    names = ["Al"] + ["Si"] * 6 + ["O"] * 13
    torch.manual_seed(3)
    m = BehlerParrinello(species=["Si", "O", "Al"], cutoff=4.5, hidden=(8,)).eval()
    m.mlps.apply(lambda x: torch.nn.init.normal_(x.weight) if isinstance(x, torch.nn.Linear)
                 else None)
    np.testing.assert_allclose(_features(m, pos, cell, names, True),
                               _features(m, pos, cell, names, False), rtol=1e-10, atol=1e-13)
    _close(*_both(m, pos, cell, names))


def on_one_and_two_threads(model, atoms):
    """(energy, forces) of the periodic cell with 1 and with 2 torch threads."""
    args = (atoms.get_positions(), atoms.cell.array, atoms.get_chemical_symbols())
    before = torch.get_num_threads()
    try:
        out = []
        for n in (1, 2):
            torch.set_num_threads(n)
            out.append(tuple(evaluate(model, *args).values()))
        return out
    finally:
        torch.set_num_threads(before)


def test_threads_give_identical_results(glass_192):
    (e1, f1), (e2, f2) = on_one_and_two_threads(small_bp(cutoff=6.0), read_lammps_data(glass_192))
    assert e1 == e2 and np.array_equal(f1, f2)      # each centre on one thread, same order


def _force_loss_gradients(model, pos, cell, names, fused):
    """Gradients of a force + energy loss with respect to the weights (training mode)."""
    model.fused = fused
    model.train()
    inp = periodic_input(model, pos, cell, names)
    p = torch.tensor(pos, requires_grad=True)
    ext = p[torch.from_numpy(inp.image_of)] + torch.from_numpy(inp.offsets)
    e = model(ext, torch.from_numpy(inp.species[inp.image_of]),
              torch.from_numpy(inp.edge_index), inp.n).sum()
    (f,) = torch.autograd.grad(e, p, create_graph=True)
    weights = [q for q in model.parameters() if q.requires_grad]
    return torch.autograd.grad((f ** 2).sum() + 1e-3 * e ** 2, weights)


@pytest.mark.parametrize("params", [{}, {"zetas": [1.5, 2.5] + [1.0] * 20,
                                         "lambdas": [-1.0, 1.0] * 11}, SIX_OF_ONE_ETA])
def test_force_training_gradients_equal_pure_torch(params):
    """Force training runs on the operator (its gradient pass differentiated in dE/dG)."""
    pos, cell, names = random_sio2(n_units=4, length=6.0, seed=5)
    m = small_bp(**params)
    fused = _force_loss_gradients(m, pos, cell, names, True)
    plain = _force_loss_gradients(m, pos, cell, names, False)
    assert plain[0].abs().max() > 1e-3                  # the force loss reaches the weights
    for a, b in zip(fused, plain):
        assert (a - b).abs().max() <= 1e-10 * b.abs().max() + 1e-15


def test_operator_refuses_hessians_with_a_clear_error():
    vec = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.5, 0.0]], dtype=torch.float64,
                       requires_grad=True)
    m = small_bp()
    g = m._fused_features(vec, torch.tensor([0, 2]), torch.tensor([0, 1]), 1)
    (d,) = torch.autograd.grad(g.sum(), vec, create_graph=True)      # first: fine
    assert torch.isfinite(d).all() and d.abs().sum() > 0
    with pytest.raises(RuntimeError, match="no second derivatives with respect to positions"):
        torch.autograd.grad((d ** 2).sum(), vec)


def test_old_model_file_loads_and_reexport_is_fused_and_equal(tmp_path):
    pos, cell, names = random_sio2(n_units=6, length=8.0, seed=7)
    old = load(OLD_FILE)
    assert not hasattr(old, "fused")                # scripted before the kernel existed
    new = load(reexport(OLD_FILE, tmp_path / "new.pt"))
    assert new.fused and "lammps_adv.bp_features" in new._fused_features.code
    e_old, f_old = evaluate(old, pos, cell, names).values()
    e_new, f_new = evaluate(new, pos, cell, names).values()
    assert abs(e_new - e_old) <= 1e-10 * abs(e_old)
    np.testing.assert_allclose(f_new, f_old, rtol=1e-9, atol=1e-10 * np.abs(f_old).max())


def test_exported_model_can_switch_paths(tmp_path):
    pos, cell, names = random_sio2(seed=4)
    sm = load(export(small_bp(), tmp_path / "bp.pt"))
    _close(*_both(sm, pos, cell, names))


@pytest.mark.parametrize("activation", ["tanh", "softplus", "silu"])
def test_fused_inference_equals_pure_torch(activation):
    """In evaluation mode one call of bp_energies gives the energies (one scan per centre:
    features, MLP, gradient pass); every activation's value and derivative as torch's."""
    pos, cell, names = random_sio2(n_units=6, length=8.0, seed=11)
    m = small_bp(activation=activation, hidden=(12, 7, 5))
    assert "bp_energies_from_positions" in torch.jit.script(m)._fused_energies.code
    _close(*_both(m, pos, cell, names))
    e_only = evaluate(m, pos, cell, names, properties=("energy",))["energy"]
    assert abs(e_only - _both(m, pos, cell, names)[1][0]) <= 1e-10 * abs(e_only)


def test_fused_inference_refuses_weight_gradients():
    """The fused inference path has no gradients with respect to the weights: asking is an
    error naming the way out, never a silent zero; train() restores them."""
    pos, cell, names = random_sio2(n_units=4, length=6.0, seed=3)
    m = small_bp()
    inp = periodic_input(m, pos, cell, names)
    ext = torch.from_numpy(pos[inp.image_of] + inp.offsets).requires_grad_(True)
    args = (torch.from_numpy(inp.species[inp.image_of]), torch.from_numpy(inp.edge_index), inp.n)
    weight = m.mlps[0][0].weight
    e = m(ext, *args).sum()
    with pytest.raises(RuntimeError, match="positions only.*model.train"):
        torch.autograd.grad(e, [weight])
    m.train()
    (g,) = torch.autograd.grad(m(ext, *args).sum(), [weight])
    assert torch.isfinite(g).all() and g.abs().max() > 0


def _network_args(m, species, nbr, n):
    """The arguments of both inference operators after the edges (BehlerParrinello's own)."""
    return (species[nbr], species[:n], m.radial_etas, m.angular_etas, m.lambdas, m.zetas,
            m.pair_index, m.pair_weight, m.cutoff, m.feature_mean, m.feature_std,
            m._linear_layers(), m.activation_code, m.energy_scale, m.energy_shift)


def test_position_operator_equals_edge_vector_operator():
    """bp_energies_from_positions (what the model runs since #27) and bp_energies on the edge
    vectors (what files exported before it run) give the same energies and, through autograd,
    the same gradient with respect to the positions."""
    pos, cell, names = random_sio2(n_units=6, length=8.0, seed=7)
    m = small_bp()
    inp = periodic_input(m, pos, cell, names)
    ext = torch.from_numpy(pos[inp.image_of] + inp.offsets).requires_grad_(True)
    species = torch.from_numpy(inp.species[inp.image_of])
    ctr, nbr, vec, _ = m._local_edges(ext, torch.from_numpy(inp.edge_index), inp.n)
    offsets = m._offsets(ctr, inp.n)
    args = _network_args(m, species, nbr, inp.n)
    e_vec = torch.ops.lammps_adv.bp_energies(vec, offsets, *args)
    (g_vec,) = torch.autograd.grad(e_vec.sum(), ext)
    e_pos = torch.ops.lammps_adv.bp_energies_from_positions(ext, nbr, offsets, *args)
    (g_pos,) = torch.autograd.grad(e_pos.sum(), ext)
    assert torch.equal(e_vec.detach(), e_pos.detach())
    assert g_vec.abs().max() > 1e-3                      # a real test: forces are not zero
    assert (g_vec - g_pos).abs().max() <= 1e-12 * g_vec.abs().max()
    with torch.no_grad():                                # energies only: no gradient pass
        e_only = torch.ops.lammps_adv.bp_energies_from_positions(ext, nbr, offsets, *args)
    assert torch.equal(e_only, e_pos.detach())


def test_edge_r2_and_indices_out_of_range():
    """edge_r2 is |r_j - r_i|^2 of every edge; an index outside the atoms is an error naming
    the operator, in it and in bp_energies_from_positions, never a read past the array."""
    pos = torch.randn(10, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ctr, nbr = torch.tensor([0, 1, 2, 9]), torch.tensor([1, 2, 0, 3])
    r2 = torch.ops.lammps_adv.edge_r2(pos, ctr, nbr)
    torch.testing.assert_close(r2, ((pos[nbr] - pos[ctr]) ** 2).sum(1), rtol=1e-15, atol=0.0)
    with pytest.raises(RuntimeError, match="edge_r2: atom index out of range"):
        torch.ops.lammps_adv.edge_r2(pos, ctr, torch.tensor([1, 2, 0, 10]))
    m = small_bp()
    species = torch.zeros(10, dtype=torch.int64)
    bad = torch.tensor([1, 10])
    with pytest.raises(RuntimeError, match="bp_energies_from_positions: neighbour index out"):
        torch.ops.lammps_adv.bp_energies_from_positions(
            pos, bad, torch.tensor([0, 2]), *_network_args(m, species, torch.tensor([1, 1]), 1))
