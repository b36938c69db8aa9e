"""The adversarial measures (A, cos theta and the error measures), as pure array code
(no I/O, no LAMMPS).

Conventions (metal units):
  energies E in eV, forces F = -dE/dR in eV/A, positions R in A, one configuration of N
  atoms as arrays of shape [N, 3] (flattened to 3N vectors where a formula needs it);
  "app" is the approximate (driving) model, "acc" the accurate (reference) model.

  energy error         dE = E_acc - E_app                       (eV; > 0: the model is too low)
  adversarial direction A  = d/dR (E_acc - E_app)^2 = 2 dE (F_app - F_acc)   (eV^2/A, [N, 3])
  cos_adversarial      A . F_app / (|A| |F_app|)
                       = sign(dE) c_F                            (the decomposition below)
  energy_error_sign    sign(dE): +1, -1, or 0 when dE = 0
  cos_force_error      c_F = cos(F_app - F_acc, F_app)
  abs_cos_adversarial  |cos_adversarial| = |c_F| (0 when dE = 0)
  force_error_ratio    |F_app - F_acc| / |F_app| over the 3N vector; 0 when both are 0,
                       inf when only |F_app| is 0 (any force error is infinitely large then)
  force error          dF = F_app - F_acc
  force_rmse           sqrt(sum dF^2 / (3N))                    (eV/A, RMS over components)
  force_max_error      max_i |dF_i|                             (eV/A, largest per-atom norm)
  force_cos            F_app . F_acc / (|F_app| |F_acc|)
  fnorm                |F| over the whole 3N vector (what LAMMPS' thermo `fnorm` reports)

Every cosine is defined as 0 when one of its vectors has zero norm (a perfect model,
dE = 0, or a configuration where a force vanishes), so no measure is ever NaN for finite
input (force_error_ratio alone can be inf). Cosines are clipped to [-1, 1].

Why the decomposition: cos(theta) mixes two things, whether the energy error is positive
(sign) and whether the force error leans along F_app (c_F). Its sign over configurations
can flip with the energy zero while |cos| = |c_F| cannot, so a lean is judged on |cos|
against the random value ``random_abs_cos`` and, separately, on the sign fraction.
To first order a displacement dr changes E_acc - E_app by (F_app - F_acc) . dr
(``first_order_change``), so |F_app - F_acc| sets how fast a step of given length can move
the error at all.

Displacement with total distortion epsilon (A^2) means sum_i |dr_i|^2 = epsilon, i.e. the
3N displacement is sqrt(epsilon) * v / |v| for a direction v. A zero direction gives no
displacement (the positions come back unchanged).
"""
from __future__ import annotations

import math

import numpy as np

DISTORTIONS = ("total", "per-atom")    # epsilon over the whole cell, or per atom

OBSERVABLES = ("energy_approx", "energy_reference", "energy_error", "energy_error_per_atom",
               "cos_adversarial", "abs_cos_adversarial", "energy_error_sign",
               "cos_force_error", "force_error_ratio", "force_rmse", "force_max_error",
               "force_cos", "fnorm_approx", "fnorm_reference")


def _vec(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).reshape(-1)


def cosine(a, b) -> float:
    """cos of the angle between two arrays taken as flat vectors; 0 if either norm is 0."""
    a, b = _vec(a), _vec(b)
    na, nb = math.sqrt(float(a @ a)), math.sqrt(float(b @ b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(min(1.0, max(-1.0, float(a @ b) / (na * nb))))


def energy_error(e_app: float, e_acc: float) -> float:
    """E_acc - E_app (eV)."""
    return float(e_acc) - float(e_app)


def adversarial_direction(e_app: float, e_acc: float, f_app, f_acc) -> np.ndarray:
    """A = 2 (E_acc - E_app) (F_app - F_acc), the gradient of (E_acc - E_app)^2 w.r.t. R."""
    f_app = np.asarray(f_app, dtype=np.float64)
    return 2.0 * energy_error(e_app, e_acc) * (f_app - np.asarray(f_acc, dtype=np.float64))


def cos_adversarial(e_app: float, e_acc: float, f_app, f_acc) -> float:
    """cos(theta) = A . F_app / (|A| |F_app|); 0 when dE = 0, F_app = F_acc or F_app = 0."""
    de = energy_error(e_app, e_acc)
    if de == 0.0:
        return 0.0
    c = cosine(np.asarray(f_app, dtype=np.float64) - np.asarray(f_acc, dtype=np.float64), f_app)
    return math.copysign(1.0, de) * c if c != 0.0 else 0.0


def _clipped_cos(dot: float, n1: float, n2: float) -> float:
    if n1 == 0.0 or n2 == 0.0:
        return 0.0
    return min(1.0, max(-1.0, dot / (n1 * n2)))


def _decompose(de: float, dd: float, da: float, aa: float) -> dict:
    """cos(theta) and its factors from dE (eV) and the dot products of d = F_app - F_acc
    and F_app (d.d, d.F_app, F_app.F_app)."""
    nd, na = math.sqrt(dd), math.sqrt(aa)
    c_f = _clipped_cos(da, nd, na)
    sign = float(np.sign(de))
    cadv = sign * c_f if (sign != 0.0 and c_f != 0.0) else 0.0
    ratio = nd / na if na != 0.0 else (0.0 if nd == 0.0 else math.inf)
    return {"cos_adversarial": cadv, "abs_cos_adversarial": abs(cadv),
            "energy_error_sign": sign, "cos_force_error": c_f, "force_error_ratio": ratio}


def decomposition(e_app: float, e_acc: float, f_app, f_acc) -> dict:
    """cos(theta) = energy_error_sign * cos_force_error, with both factors, |cos(theta)|,
    force_error_ratio = |F_app - F_acc| / |F_app| and force_error_norm = |F_app - F_acc|
    (eV/A, the 3N norm) of one configuration (definitions in the module docstring)."""
    fa, d = _vec(f_app), _vec(f_app) - _vec(f_acc)
    dd = float(d @ d)
    out = _decompose(energy_error(e_app, e_acc), dd, float(d @ fa), float(fa @ fa))
    out["force_error_norm"] = math.sqrt(dd)
    return out


def first_order_change(f_app, f_acc, dr) -> float:
    """(F_app - F_acc) . dr (eV): the first-order change of E_acc - E_app when the atoms move
    by dr (A, shape of the forces), since d(E_acc - E_app)/dR = F_app - F_acc."""
    return float((_vec(f_app) - _vec(f_acc)) @ _vec(dr))


def force_rmse(f_app, f_acc) -> float:
    """sqrt(mean over the 3N components of (F_app - F_acc)^2) (eV/A)."""
    d = _vec(f_app) - _vec(f_acc)
    return math.sqrt(float(d @ d) / d.size) if d.size else 0.0


def max_atom_norm(v) -> float:
    """Largest per-atom norm max_i |v_i| of per-atom vectors (forces: eV/A); 0 for no atom.
    What a minimizer's fmax criterion (LAMMPS min_modify norm max) compares."""
    v = np.asarray(v, dtype=np.float64).reshape(-1, 3)
    return float(np.sqrt(np.einsum("ij,ij->i", v, v)).max()) if len(v) else 0.0


def force_max_error(f_app, f_acc) -> float:
    """Largest per-atom norm |F_app,i - F_acc,i| (eV/A)."""
    return max_atom_norm(np.asarray(f_app, dtype=np.float64).reshape(-1, 3)
                         - np.asarray(f_acc, dtype=np.float64).reshape(-1, 3))


def force_cos(f_app, f_acc) -> float:
    """cos of the angle between F_app and F_acc (3N vectors); 0 if either is zero."""
    return cosine(f_app, f_acc)


def measures(e_app: float, e_acc: float, f_app, f_acc) -> dict:
    """All per-configuration measures at once (one pass over the force arrays).

    Returns a dict with the keys of ``OBSERVABLES`` (floats).
    """
    fa = _vec(f_app)
    fr = _vec(f_acc)
    if fa.shape != fr.shape:
        raise ValueError(f"force arrays differ in shape: {fa.shape} vs {fr.shape}")
    n = fa.size // 3
    d = fa - fr
    dd, aa, rr = float(d @ d), float(fa @ fa), float(fr @ fr)
    da, ar = float(d @ fa), float(fa @ fr)
    na, nr = math.sqrt(aa), math.sqrt(rr)
    de = energy_error(e_app, e_acc)
    fmax = max_atom_norm(d)
    return {
        "energy_approx": float(e_app),
        "energy_reference": float(e_acc),
        "energy_error": de,
        "energy_error_per_atom": de / n if n else 0.0,
        **_decompose(de, dd, da, aa),
        "force_rmse": math.sqrt(dd / fa.size) if fa.size else 0.0,
        "force_max_error": fmax,
        "force_cos": _clipped_cos(ar, na, nr),
        "fnorm_approx": na,
        "fnorm_reference": nr,
    }


def random_abs_cos(n_atoms: int) -> float:
    """Mean |cos| between a fixed 3N-vector and an isotropic random direction,
    sqrt(2 / (pi 3N)) (large N): the |cos(theta)| of a direction that carries no
    information about F_app, the reference value every |cos| lean is judged against."""
    return math.sqrt(2.0 / (math.pi * 3 * n_atoms))


# ------------------------------------------------------------------ displacements
def displace(positions, direction, epsilon: float) -> np.ndarray:
    """positions + sqrt(epsilon) * v / |v| with v = direction (same shape as positions).

    epsilon is the total distortion sum_i |dr_i|^2 in A^2 (must be >= 0). A zero direction
    gives back a copy of the positions.
    """
    if epsilon < 0:
        raise ValueError(f"epsilon is a sum of squared displacements, must be >= 0, got {epsilon}")
    pos = np.array(positions, dtype=np.float64, copy=True)
    v = np.asarray(direction, dtype=np.float64)
    if v.shape != pos.shape:
        raise ValueError(f"direction shape {v.shape} differs from positions shape {pos.shape}")
    norm = math.sqrt(float(np.sum(v * v)))
    if norm == 0.0 or epsilon == 0.0:
        return pos
    return pos + (math.sqrt(epsilon) / norm) * v


def check_distortion(distortion: str) -> None:
    if distortion not in DISTORTIONS:
        raise ValueError(f"--distortion must be one of {', '.join(DISTORTIONS)}, not {distortion!r}")


def total_distortion(epsilon: float, natoms: int, distortion: str = "total") -> float:
    """sum_i |dr_i|^2 (A^2) for a distortion epsilon given over the cell ("total") or per atom."""
    check_distortion(distortion)
    return epsilon * (natoms if distortion == "per-atom" else 1)


def random_direction(shape, seed: int) -> np.ndarray:
    """A random direction (isotropic Gaussian, numpy default_rng(seed)) of the given shape."""
    return np.random.default_rng(seed).standard_normal(shape)


def displace_random(positions, epsilon: float, seed: int) -> np.ndarray:
    """Displace along a seeded random direction with total distortion epsilon (A^2)."""
    pos = np.asarray(positions, dtype=np.float64)
    return displace(pos, random_direction(pos.shape, seed), epsilon)


def displace_adversarial(positions, e_app: float, e_acc: float, f_app, f_acc,
                         epsilon: float) -> np.ndarray:
    """Displace along +A (the direction that increases (E_acc - E_app)^2 fastest)."""
    pos = np.asarray(positions, dtype=np.float64)
    a = adversarial_direction(e_app, e_acc, f_app, f_acc).reshape(pos.shape)
    return displace(pos, a, epsilon)


def ascend(evaluate, direction, pos, first, epsilon: float, steps: int):
    """Projected gradient ascent inside the ball sum_i |dr_i|^2 <= epsilon (A^2).

    ``first`` is ``evaluate`` at ``pos``; ``direction(state)`` gives the ascent direction
    (shape of pos) from an evaluation; ``evaluate(x, k)`` evaluates step k's configuration.
    Each of the ``steps`` steps moves 2 sqrt(epsilon) / steps along the normalised direction
    and projects back onto the ball, so one step is the one-shot sqrt(epsilon) d/|d|.
    Stops early when the direction vanishes. Returns (positions, last state, steps done)."""
    pos = np.asarray(pos, dtype=np.float64)
    radius, dr, state, done = math.sqrt(epsilon), np.zeros_like(pos), first, 0
    for k in range(steps):
        d = np.asarray(direction(state), dtype=np.float64).reshape(pos.shape)
        norm = math.sqrt(float(np.sum(d * d)))
        if norm == 0.0 or radius == 0.0:
            break
        dr = dr + (2.0 * radius / steps / norm) * d
        length = math.sqrt(float(np.sum(dr * dr)))
        if length > radius:
            dr *= radius / length
        state = evaluate(pos + dr, k)
        done += 1
    return pos + dr, state, done
