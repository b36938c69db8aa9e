"""BKS and BKS-DSF in LAMMPS against independent numpy implementations written here.

Parameters are typed in again from the papers (docs/potentials.md cites them), not read from the potential
files, so a typo in either place fails the test.
"""
import itertools
import math

import numpy as np
import pytest
from scipy.special import erfc

from lammps_adv.lammps import snippets as potentials
from lammps_adv.lammps.structures import quartz
from lammps_adv.lammps.system import LammpsSystem

KE = 14.399645  # e^2/(4 pi eps0) in eV A (LAMMPS metal qqrd2e)

# BKS (van Beest 1990) in eV, with the Saika-Voivod 30-6 core 4 eps [(s/r)^30 - (s/r)^6]
BKS_Q = {"Si": 2.4, "O": -1.2}
BKS_SR = {("Si", "O"): (18003.7572, 0.205205, 133.5381),
          ("O", "O"): (1388.7730, 0.362319, 175.0000)}
SV_CORE = {("Si", "O"): (3.097948e-3, 1.313635), ("O", "O"): (1.05105048e-3, 1.779239)}

# BKS-DSF (JAX MD / Carre 2016) in kcal/mol: A exp(-r/rho) + C/r^6 + D/r^24
KCAL = 23.0605
DSF_Q = {"Si": 1.954952037, "O": -0.977476019}
DSF_SR = {("Si", "O"): (471671.1243, 0.19173537, -2156.074422, 668.7557239),
          ("O", "O"): (23138.64826, 0.356855265, -1879.223108, 2605.841269),
          ("Si", "Si"): (0.0, 1.0, 0.0, 78940848.06)}


def _key(a, b):
    return (a, b) if (a, b) in DSF_SR else (b, a)


def image_pairs(pos, cell, rmax):
    """All (i, j, rvec = r_j + shift - r_i, r) with 0 < r < rmax over periodic images."""
    inv = np.linalg.inv(cell)
    spacing = 1.0 / np.linalg.norm(inv, axis=0)
    reps = [int(math.ceil(rmax / s)) for s in spacing]
    out_i, out_j, out_v = [], [], []
    for s in itertools.product(*[range(-r, r + 1) for r in reps]):
        shift = np.array(s) @ cell
        d = pos[None, :, :] + shift - pos[:, None, :]
        r = np.linalg.norm(d, axis=2)
        i, j = np.nonzero((r < rmax) & (r > 1e-9))
        out_i.append(i), out_j.append(j), out_v.append(d[i, j])
    i, j, v = np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_v)
    return i, j, v, np.linalg.norm(v, axis=1)


def pair_sum(atoms, rmax, pair_fn):
    """Energy and forces of a pairwise term E_ij = pair_fn(species_i, species_j, r) -> (e, de/dr).

    Each unordered pair counted once (the ordered sum is halved)."""
    pos, cell = atoms.get_positions(), atoms.cell.array
    sym = np.array(atoms.get_chemical_symbols())
    i, j, v, r = image_pairs(pos, cell, rmax)
    e = np.zeros(len(r))
    de = np.zeros(len(r))
    for a, b in itertools.product(("Si", "O"), repeat=2):
        m = (sym[i] == a) & (sym[j] == b)
        e[m], de[m] = pair_fn(a, b, r[m])
    forces = np.zeros_like(pos)
    # E = 1/2 sum_ij e(r_ij); dE/dr_i = -sum_j de(r_ij) rhat_ij (both orderings counted)
    np.add.at(forces, i, (de / r)[:, None] * v)
    return 0.5 * e.sum(), forces


def ewald_coulomb(atoms, q, alpha=0.35, r_real=14.0, kcut=3.8):
    """Ewald sum of the Coulomb energy (eV) and forces of a neutral periodic cell."""
    pos, cell = atoms.get_positions(), atoms.cell.array
    charges = np.array([q[s] for s in atoms.get_chemical_symbols()])
    vol = abs(np.linalg.det(cell))

    def real(a, b, r):
        qq = KE * q[a] * q[b]
        e = qq * erfc(alpha * r) / r
        de = -qq * (erfc(alpha * r) / r**2 + 2 * alpha / math.sqrt(math.pi) * np.exp(-(alpha * r) ** 2) / r)
        return e, de

    e_real, f_real = pair_sum(atoms, r_real, real)
    recip = 2 * math.pi * np.linalg.inv(cell).T
    nmax = [int(math.ceil(kcut / np.linalg.norm(b))) for b in recip]
    ns = np.array([n for n in itertools.product(*[range(-m, m + 1) for m in nmax]) if any(n)])
    k = ns @ recip
    k2 = (k * k).sum(1)
    k, k2 = k[k2 < kcut**2], k2[k2 < kcut**2]
    phase = pos @ k.T                                    # [N, K]
    s = (charges[:, None] * np.exp(1j * phase)).sum(0)   # S(k)
    w = 2 * math.pi * KE / vol * np.exp(-k2 / (4 * alpha**2)) / k2
    e_recip = float((w * np.abs(s) ** 2).sum())
    # dE/dr_i = sum_k w 2 Re(conj(S) i k q_i e^{ik r_i}) = -2 q_i sum_k w k Im(conj(S) e^{ik r_i})
    f_recip = 2 * charges[:, None] * ((w * np.imag(np.conj(s)[None, :] * np.exp(1j * phase))) @ k)
    e_self = -KE * alpha / math.sqrt(math.pi) * (charges**2).sum()
    return e_real + e_recip + e_self, f_real + f_recip


def bks_reference(atoms, rc=10.0):
    def short(a, b, r):
        key = (a, b) if (a, b) in BKS_SR else (b, a)
        if key not in BKS_SR:
            return np.zeros_like(r), np.zeros_like(r)
        A, rho, C = BKS_SR[key]
        eps, sig = SV_CORE[key]
        e = A * np.exp(-r / rho) - C / r**6 + 4 * eps * ((sig / r) ** 30 - (sig / r) ** 6)
        de = (-A / rho * np.exp(-r / rho) + 6 * C / r**7
              + 4 * eps * (-30 * sig**30 / r**31 + 6 * sig**6 / r**7))
        return e, de

    e_sr, f_sr = pair_sum(atoms, rc, short)
    e_c, f_c = ewald_coulomb(atoms, BKS_Q)
    return e_sr + e_c, f_sr + f_c


def bks_dsf_reference(atoms, alpha=0.25, rc=8.0):
    """Direct sum of BKS-DSF with the exact erfc (LAMMPS uses a 1e-7 accurate polynomial)."""
    erfc_c = erfc(alpha * rc)
    f_shift = -(erfc_c / rc**2 + 2 * alpha / math.sqrt(math.pi) * math.exp(-(alpha * rc) ** 2) / rc)
    e_shift = erfc_c / rc - f_shift * rc     # LAMMPS' definition, enters the self-energy

    def pair(a, b, r):
        A, rho, C, D = DSF_SR[_key(a, b)]
        A, C, D = A / KCAL, C / KCAL, D / KCAL
        qq = KE * DSF_Q[a] * DSF_Q[b]
        e = A * np.exp(-r / rho) + C / r**6 + D / r**24
        de = -A / rho * np.exp(-r / rho) - 6 * C / r**7 - 24 * D / r**25
        e += qq * (erfc(alpha * r) / r - erfc_c / rc - (r - rc) * f_shift)
        de += qq * (-erfc(alpha * r) / r**2
                    - 2 * alpha / math.sqrt(math.pi) * np.exp(-(alpha * r) ** 2) / r - f_shift)
        return e, de

    e, f = pair_sum(atoms, rc, pair)
    charges = np.array([DSF_Q[s] for s in atoms.get_chemical_symbols()])
    e_self = -(e_shift / 2 + alpha / math.sqrt(math.pi)) * KE * (charges**2).sum()
    return e + e_self, f


@pytest.fixture(scope="module")
def distorted_quartz():
    atoms = quartz(2, 2, 2)          # 72 atoms, triclinic (hexagonal) cell
    rng = np.random.default_rng(3)
    atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
    return atoms


def lammps_ef(potential, atoms):
    with LammpsSystem(atoms, potential) as system:
        return system.energy_forces()


def test_bks_ewald_equals_numpy_ewald(distorted_quartz):
    tight = potentials.get("bks").with_variables(bks_accuracy="1.0e-10")
    e_lmp, f_lmp = lammps_ef(tight, distorted_quartz)
    e_ref, f_ref = bks_reference(distorted_quartz)
    assert e_lmp == pytest.approx(e_ref, rel=1e-6)
    assert np.abs(f_lmp - f_ref).max() < 1e-5
    assert np.abs(f_ref).max() > 1.0          # a distorted cell: real forces to compare


def test_bks_dsf_equals_direct_sum(distorted_quartz):
    e_lmp, f_lmp = lammps_ef("bks-dsf", distorted_quartz)
    e_ref, f_ref = bks_dsf_reference(distorted_quartz)
    assert e_lmp == pytest.approx(e_ref, rel=1e-6)
    assert np.abs(f_lmp - f_ref).max() < 1e-5
    assert np.abs(f_ref).max() > 1.0


@pytest.mark.parametrize("spec", ["bks", "bks:pppm", "bks-dsf"])
def test_forces_are_minus_energy_gradient(distorted_quartz, spec):
    h = 1e-4
    with LammpsSystem(distorted_quartz, spec) as system:
        x0 = system.positions()
        _, f = system.energy_forces()
        for atom, axis in [(0, 0), (5, 1), (40, 2), (71, 0)]:
            x = x0.copy()
            x[atom, axis] += h
            system.set_positions(x)
            e_plus, _ = system.energy_forces()
            x[atom, axis] -= 2 * h
            system.set_positions(x)
            e_minus, _ = system.energy_forces()
            fd = -(e_plus - e_minus) / (2 * h)
            assert fd == pytest.approx(f[atom, axis], abs=2e-4), (atom, axis)


def test_pppm_close_to_ewald(distorted_quartz):
    e_ew, f_ew = lammps_ef("bks", distorted_quartz)
    e_pp, f_pp = lammps_ef("bks:pppm", distorted_quartz)
    assert e_pp == pytest.approx(e_ew, rel=1e-5)
    assert np.abs(f_pp - f_ew).max() < 1e-3
