"""The fused BKS-DSF pair kernel (torch.ops.lammps_adv.bks_dsf_pairs) against the pure-torch
terms of lammps_adv.models.bks_dsf: energies to 1e-12 relative and forces to 1e-11 eV/A, both erfc variants.
(Against LAMMPS' native coul/dsf + buck + mie/cut: tests/test_plugin.py.)"""
import numpy as np
import pytest
import torch

from lammps_adv.models.bks_dsf import BKSDSF
from lammps_adv.models.contract import evaluate
from lammps_adv.lammps.structures import read_lammps_data
from test_bp_kernel import on_one_and_two_threads
from test_models import random_sio2


def _both(model, pos, cell, names):
    out = []
    for fused in (True, False):
        model.fused = fused
        out.append(tuple(evaluate(model, pos, cell, names).values()))
    return out


@pytest.mark.parametrize("lammps_erfc", [True, False])
def test_glass_equals_pure_torch(glass_192, lammps_erfc):
    atoms = read_lammps_data(glass_192)
    (e1, f1), (e0, f0) = _both(BKSDSF(lammps_erfc=lammps_erfc), atoms.get_positions(),
                               atoms.cell.array, atoms.get_chemical_symbols())
    assert np.abs(f0).max() > 0.01         # a real test: forces are not zero (a relaxed glass)
    assert abs(e1 - e0) <= 1e-12 * abs(e0)
    # single pair forces reach ~10 eV/A and cancel to < 0.06 eV/A in this relaxed glass: the
    # rounding of the sum is absolute
    assert np.abs(f1 - f0).max() <= 1e-11


def test_triclinic_cell_smaller_than_two_cutoffs_equals_pure_torch():
    pos, cell, names = random_sio2(n_units=4, length=6.0, seed=5)
    (e1, f1), (e0, f0) = _both(BKSDSF(), pos, cell, names)
    assert abs(e1 - e0) <= 1e-12 * abs(e0)
    assert np.abs(f1 - f0).max() <= 1e-12 * np.abs(f0).max()


def test_scripted_model_uses_the_kernel_and_threads_give_the_same_bits(glass_192):
    model = torch.jit.script(BKSDSF())
    assert "lammps_adv::bks_dsf_pairs" in model.forward.graph.str()
    (e1, f1), (e2, f2) = on_one_and_two_threads(model, read_lammps_data(glass_192))
    assert e1 == e2 and np.array_equal(f1, f2)


def test_bad_pair_type_and_second_derivatives_are_refused():
    vec = torch.tensor([[1.5, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    m = BKSDSF()
    args = (m.pair_params, m.alpha, m.e_shift, m.f_shift, m.sqrt_pi, True, [m.erfc_p] + m.erfc_a)
    with pytest.raises(RuntimeError, match="pair_type out of range"):
        torch.ops.lammps_adv.bks_dsf_pairs(vec, torch.tensor([7]), *args)
    e = torch.ops.lammps_adv.bks_dsf_pairs(vec, torch.tensor([1]), *args).sum()
    with pytest.raises(RuntimeError, match="no second derivatives"):
        torch.autograd.grad(e, vec, create_graph=True)
