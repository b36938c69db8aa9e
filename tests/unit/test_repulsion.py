"""The repulsive baseline (models/repulsion.py): zero on the training data, smooth where it
switches on, ZBL below, exported with the model, the same on one rank and on a ghost graph."""
import numpy as np
import pytest
import torch

from lammps_adv.models.contract import evaluate
from lammps_adv.models.export import build_model, model_from_hparams, script
from lammps_adv.models.repulsion import (COULOMB_EV_A, PairRepulsion, baseline_hparams,
                                         smooth_switch, zbl_energy)

CLOSEST = {"O-O": 2.2, "O-Si": 1.45, "Si-Si": 2.6}
Z = {"Si": 14, "O": 8}
REP = baseline_hparams(["Si", "O"], CLOSEST, Z)
CELL = np.eye(3) * 12.0


def dimer_energy(model, r, names=("Si", "O")):
    pos = np.array([[1.0, 1.0, 1.0], [1.0 + r, 1.0, 1.0]])
    return evaluate(model, pos, CELL, list(names))


def baseline_only(kind="bp"):
    """A model whose network part is switched off (zero energy scale and shift): what is
    left is the baseline."""
    m = build_model(kind, repulsion=REP)
    with torch.no_grad():
        m.energy_scale.fill_(0.0)
    return m


@pytest.mark.parametrize("kind", ["bp", "gnn"])
def test_zero_at_and_above_the_training_minimum_and_zbl_well_below(kind):
    m = script(baseline_only(kind))
    for names, pair in ((("Si", "O"), "O-Si"), (("O", "O"), "O-O"), (("Si", "Si"), "Si-Si")):
        r_min = CLOSEST[pair]
        for r in (r_min, r_min + 1e-9, r_min + 0.3, 4.0):
            out = dimer_energy(m, r, names)
            assert abs(out["energy"]) < 1e-12, (pair, r)          # rounding of r only
            assert np.abs(out["forces"]).max() < 1e-12, (pair, r)
        z1, z2 = (Z[n] for n in names)
        inv_a = (z1 ** 0.23 + z2 ** 0.23) / 0.46850
        r = 0.7 * r_min           # below the switching region: full ZBL
        f64 = torch.float64
        zbl = float(zbl_energy(torch.tensor(r, dtype=f64),
                               torch.tensor(COULOMB_EV_A * z1 * z2, dtype=f64),
                               torch.tensor(inv_a, dtype=f64)))
        assert dimer_energy(m, r, names)["energy"] == pytest.approx(zbl, rel=1e-12)
        e = [dimer_energy(m, x, names)["energy"] for x in np.linspace(0.99 * r_min, 0.5, 30)]
        assert np.all(np.diff(e) > 0)            # rises all the way in


def test_switch_is_c2_and_forces_match_finite_differences():
    r_in, r_out = torch.tensor(1.0, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64)
    for r0 in (1.0, 2.0):                        # both ends: value, slope, curvature
        r = torch.tensor([r0 - 1e-4, r0, r0 + 1e-4], dtype=torch.float64, requires_grad=True)
        s = smooth_switch(r, r_in, r_out)
        (g,) = torch.autograd.grad(s.sum(), r, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), r)
        assert float(s[1].detach()) in (0.0, 1.0)
        assert abs(float(g.abs().max())) < 1e-6 and float(h.abs().max()) < 1e-2
    m = script(baseline_only())
    pos = np.array([[1.0, 1.0, 1.0], [2.2, 1.3, 0.9], [1.4, 2.3, 1.2]])
    names = ["Si", "O", "O"]
    out = evaluate(m, pos, CELL, names)
    h = 1e-6
    for a in range(3):
        for c in range(3):
            p, q = pos.copy(), pos.copy()
            p[a, c] += h
            q[a, c] -= h
            fd = -(evaluate(m, p, CELL, names)["energy"]
                   - evaluate(m, q, CELL, names)["energy"]) / (2 * h)
            assert out["forces"][a, c] == pytest.approx(fd, abs=1e-5 * (1 + abs(fd)))


def test_ghost_graph_and_one_rank_paths_agree_and_state_dict_is_unchanged():
    """forward() on the full ghost graph (several ranks) and energies_periodic (one rank)
    give the same energies with the baseline; the state dict has no baseline entries, so
    files exported before it load into the new code."""
    from lammps_adv.models.graph import periodic_graph
    m = script(baseline_only("gnn"))
    pos = np.array([[0.2, 0.2, 0.2], [1.3, 0.4, 0.1], [11.5, 0.3, 0.2], [6, 6, 6.0]])
    names = ["Si", "O", "O", "Si"]
    e_periodic = evaluate(m, pos, CELL, names)["energy"]
    assert e_periodic > 0          # the Si-O pairs across the boundary are inside the wall
    ext, image_of, edges = periodic_graph(pos, CELL, m.cutoff, halo=m.receptive_field,
                                          ghost_edges=True)
    sp = torch.tensor(np.array([0, 1, 1, 0])[image_of])
    e_ghost = m.forward(torch.tensor(ext), sp, torch.tensor(edges), len(pos))[:len(pos)].sum()
    assert float(e_ghost) == pytest.approx(e_periodic, rel=1e-12)
    plain = build_model("bp")
    assert set(build_model("bp", repulsion=REP).state_dict()) == set(plain.state_dict())


def test_hyper_parameters_carry_the_baseline_and_errors_name_the_problem():
    m = model_from_hparams(build_model("gnn", repulsion=REP).hparams)
    assert m.repulsion.enabled and m.repulsion.reach == pytest.approx(2.6)
    assert not PairRepulsion(["Si", "O"], None).enabled
    with pytest.raises(ValueError, match="no closest approach for species pair.*Si-Si"):
        baseline_hparams(["Si", "O"], {"O-O": 2.2, "O-Si": 1.45}, Z)
    with pytest.raises(ValueError, match="no atomic number for species X"):
        baseline_hparams(["X"], {"X-X": 1.0}, Z)
