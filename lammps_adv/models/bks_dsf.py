"""BKS-DSF as a TorchScript model: the reference of the whole `pair_style torchscript` chain.

The same potential as the LAMMPS-native ``bks-dsf`` (potentials/bks_dsf.lmp: ``coul/dsf``
0.25 8.0 + ``buck`` + ``mie/cut``), written once under the model contract of docs/plugin.md:

    E = sum_{i<j, r<8} [ q_i q_j DSF(r) + A exp(-r/rho) + C / r^6 + D / r^24 ]
        - sum_i (e_shift / 2 + alpha / sqrt(pi)) q_i^2 qqrd2e

with DSF(r) = qqrd2e [erfc(alpha r)/r - e_shift - f_shift r] (qqrd2e folded into q_i q_j).
Per-atom energies: half of each pair to each atom, plus the atom's self term.

Matching LAMMPS to 1e-8 (energy) and 1e-7 eV/A (forces). LAMMPS' ``coul/dsf`` does not
use the exact erfc in a pair: it evaluates the Abramowitz-Stegun polynomial
erfc(x) ~ t (A1 + t (A2 + ... )) exp(-x^2), t = 1 / (1 + P x) (|error| < 1.5e-7), and uses
it in *both* the energy qq/r (erfc_AS - r e_shift - r^2 f_shift) and the force
qq (erfc_AS / r^2 + 2 alpha/sqrt(pi) exp(-alpha^2 r^2) / r + f_shift), which is the derivative
of the exact-erfc energy with erfc replaced by erfc_AS; e_shift and f_shift come from the
exact erfc(alpha r_c). So LAMMPS' force is not exactly minus the derivative of its energy
(the mismatch is ~1e-6 eV/A per Si-O pair, larger than the tolerance). The model computes
the smooth exact-erfc energy E_ex and adds two terms that carry no gradient or no value:

    E = E_ex + (E_LAMMPS - E_ex).detach() + delta * (r - r.detach())
    delta = -qq (erfc_AS - erfc) / r^2   (detached)

so that its value is LAMMPS' energy and its autograd force is LAMMPS' force, to rounding.
With ``lammps_erfc=False`` the model is the plain exact-erfc potential instead (forces are
then the exact derivative of its energy; differs from LAMMPS by < 1e-5 eV/A).

Speed: on CPU the per-edge terms come from the fused C++ operator
``torch.ops.lammps_adv.bks_dsf_pairs`` (one pass over the edges: r, e(r) and e'(r) in
registers; its gradient is e'(r) vec / r). Elsewhere (CUDA, or ``fused = False``) the same
terms are computed by ``short_range`` and ``dsf_coulomb`` outside autograd, and autograd sees
only e + e' (r - r.detach()), whose value is e and whose gradient is e' dr/dx. Either way
the backward pass is a handful of operations on the edges instead of one per term of the
potential (figures in docs/benchmarks.md). The price: first derivatives only. Second
derivatives (a force loss, Hessians) through this model are wrong or refused; nothing in
lammps-adv takes them (it is a reference, never trained).

Export: ``export(path)`` writes the TorchScript archive; ``model()`` returns the module.
"""

import math
import warnings
from pathlib import Path
from typing import List, Tuple

import torch

from lammps_adv.models.integrity import save

# ---------------------------------------------------------------- parameters (visible here)
KCAL_PER_EV = 23.0605                 # JAX MD's kcal/mol -> eV, as in potentials/bks_dsf.lmp
QQRD2E = 14.399645                    # LAMMPS metal units: e^2 / (4 pi eps0) in eV A
ALPHA = 0.25                          # 1/A, DSF damping
CUTOFF = 8.0                          # A, both Coulomb and short range
SPECIES = ["Si", "O"]
CHARGES = [1.954952037, -0.977476019]
# A (kcal/mol), rho (A), C (kcal/mol A^6), D (kcal/mol A^24); energy A e^{-r/rho} + C/r^6 + D/r^24
PAIRS = {
    ("Si", "O"): (471671.1243, 0.19173537, -2156.074422, 668.7557239),
    ("O", "O"): (23138.64826, 0.356855265, -1879.223108, 2605.841269),
    ("Si", "Si"): (0.0, 1.0, 0.0, 78940848.06),
}
# erfc approximation of LAMMPS (Abramowitz & Stegun 7.1.26; LAMMPS' EWALD_P, A1..A5)
EWALD_P = 0.3275911
A1, A2, A3, A4, A5 = 0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429
MY_PIS = 1.77245385090551602729       # sqrt(pi), as in LAMMPS math_const.h


def _table(index: int) -> List[List[float]]:
    n = len(SPECIES)
    out = [[0.0] * n for _ in range(n)]
    for (a, b), params in PAIRS.items():
        i, j = SPECIES.index(a), SPECIES.index(b)
        value = params[index] / KCAL_PER_EV if index != 1 else params[index]
        out[i][j] = out[j][i] = value
    return out


def short_range(r: torch.Tensor, a: torch.Tensor, inv_rho: torch.Tensor, c: torch.Tensor,
                d: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Buckingham + r^-24 core, truncated at the cutoff: e(r) and de/dr (eV, eV/A)."""
    born = a * torch.exp(-r * inv_rho)
    inv_r = 1.0 / r
    inv_r6 = inv_r * inv_r * inv_r
    inv_r6 = inv_r6 * inv_r6
    core = d * (inv_r6 * inv_r6) * (inv_r6 * inv_r6)
    disp = c * inv_r6
    e = born + disp + core
    de = -inv_rho * born - inv_r * (6.0 * disp + 24.0 * core)
    return e, de


def dsf_coulomb(r: torch.Tensor, qq: torch.Tensor, alpha: float, e_shift: float, f_shift: float,
                sqrt_pi: float, lammps_erfc: bool, erfc_p: float,
                erfc_a: List[float]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Damped shifted force Coulomb (qq in eV A): e(r) and de/dr. With lammps_erfc, the value
    and derivative of LAMMPS' coul/dsf (its polynomial erfc, see the module docstring)."""
    inv_r = 1.0 / r
    gauss = torch.exp(-alpha * alpha * r * r)
    if lammps_erfc:
        t = 1.0 / (1.0 + erfc_p * alpha * r)
        erfc = t * (erfc_a[0] + t * (erfc_a[1] + t * (erfc_a[2] + t * (erfc_a[3] + t * erfc_a[4])))) \
            * gauss
    else:
        erfc = torch.erfc(alpha * r)
    e = qq * (erfc * inv_r - e_shift - f_shift * r)
    de = -qq * ((erfc * inv_r + 2.0 * alpha / sqrt_pi * gauss) * inv_r + f_shift)
    return e, de


class BKSDSF(torch.nn.Module):
    """BKS-DSF under the contract: forward(positions, species, edge_index, n_local) -> [N] eV."""

    cutoff: float
    species: List[str]
    receptive_field: float
    alpha: float
    lammps_erfc: bool
    qqrd2e: float
    e_shift: float
    f_shift: float
    erfc_p: float
    erfc_a: List[float]
    sqrt_pi: float
    fused: bool

    def __init__(self, lammps_erfc: bool = True):
        super().__init__()
        self.cutoff = CUTOFF
        self.species = list(SPECIES)
        self.receptive_field = CUTOFF
        self.alpha = ALPHA
        self.lammps_erfc = lammps_erfc
        self.qqrd2e = QQRD2E
        self.erfc_p = EWALD_P
        self.erfc_a = [A1, A2, A3, A4, A5]
        self.sqrt_pi = MY_PIS
        self.fused = True
        f64 = torch.float64
        self.register_buffer("charge", torch.tensor(CHARGES, dtype=f64))
        self.register_buffer("A", torch.tensor(_table(0), dtype=f64))
        self.register_buffer("inv_rho", 1.0 / torch.tensor(_table(1), dtype=f64))
        self.register_buffer("C", torch.tensor(_table(2), dtype=f64))
        self.register_buffer("D", torch.tensor(_table(3), dtype=f64))
        # per pair type (a * n_species + b): A, 1/rho, C, D, q_a q_b qqrd2e, one gather per edge
        n = len(SPECIES)
        qq = [[QQRD2E * CHARGES[a] * CHARGES[b] for b in range(n)] for a in range(n)]
        table = torch.stack([self.A, self.inv_rho, self.C, self.D, torch.tensor(qq, dtype=f64)], -1)
        self.register_buffer("pair_params", table.reshape(n * n, 5))
        erfc_c = math.erfc(ALPHA * CUTOFF)
        self.f_shift = -(erfc_c / CUTOFF ** 2
                         + 2.0 / MY_PIS * ALPHA * math.exp(-ALPHA ** 2 * CUTOFF ** 2) / CUTOFF)
        self.e_shift = erfc_c / CUTOFF - self.f_shift * CUTOFF

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor,
                n_local: int) -> torch.Tensor:
        i = edge_index[0]
        j = edge_index[1]
        d = positions.index_select(0, j) - positions.index_select(0, i)
        pair_type = (species.index_select(0, i) * len(self.species)
                     + species.index_select(0, j)).long()
        if self.fused and positions.device.type == "cpu":
            pair = torch.ops.lammps_adv.bks_dsf_pairs(
                d, pair_type, self.pair_params, self.alpha, self.e_shift, self.f_shift,
                self.sqrt_pi, self.lammps_erfc, [self.erfc_p] + self.erfc_a)
        else:
            r = torch.sqrt((d * d).sum(dim=1))    # edges lie within the cutoff (contract)
            rd = r.detach()
            p = self.pair_params.index_select(0, pair_type)
            e_short, de_short = short_range(rd, p[:, 0], p[:, 1], p[:, 2], p[:, 3])
            e_coul, de_coul = dsf_coulomb(rd, p[:, 4], self.alpha, self.e_shift, self.f_shift,
                                          self.sqrt_pi, self.lammps_erfc, self.erfc_p,
                                          self.erfc_a)
            # value e, gradient e' dr/dx (module docstring); half of each pair to its centre
            pair = 0.5 * ((e_short + e_coul) + (de_short + de_coul) * (r - rd))
        energy = torch.zeros(positions.shape[0], dtype=positions.dtype, device=positions.device)
        energy = energy.index_add(0, i, pair)
        q = self.charge[species]
        self_energy = -(self.e_shift / 2.0 + self.alpha / self.sqrt_pi) * q * q * self.qqrd2e
        return energy + self_energy


def model(lammps_erfc: bool = True) -> torch.jit.ScriptModule:
    """The scripted BKS-DSF model (float64)."""
    with warnings.catch_warnings():       # torch >= 2.10 flags torch.jit.script as deprecated;
        warnings.simplefilter("ignore", DeprecationWarning)    # the plugin needs TorchScript
        return torch.jit.script(BKSDSF(lammps_erfc=lammps_erfc).double().eval())


def export(path: str | Path, lammps_erfc: bool = True) -> Path:
    """Write the TorchScript archive of BKS-DSF to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(model(lammps_erfc), path)
