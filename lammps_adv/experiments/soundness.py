"""Is a model physically sound where a run goes? Three checks of a model that drives runs.

* ``pair_approach``: one atom pair of a glass pushed together along its axis, from
  0.9 x the training data's closest approach of that species pair down to 0.6 A; a sound
  model's energy rises monotonically and ends well above its start (``approach_verdict``).
* ``relax_check``: FIRE relaxations driven by the model in LAMMPS; a sound model converges,
  keeps every pair above 0.9 x the training minimum and changes its error against the
  reference, (E_app - E_ref) / N, by little between start and end.
* ``stiffest_mode``: the largest curvature of a potential's energy at a configuration
  (eV/A^2), a diagnostic of slow relaxations: FIRE's stable step shrinks as 1/sqrt of it.
* ``nve_drift``: NVE MD driven by a potential in LAMMPS; the drift of the total energy per
  atom and ps, to compare with a native potential's in the same run.

Units: eV, A, ps. The thresholds of the study (docs/models.md) are parameters here.
"""
from __future__ import annotations

import math

import numpy as np

from lammps_adv.core.configuration import Configuration
from lammps_adv.lammps.structures import closest_pairs, species_pair
from lammps_adv.lammps.system import LammpsSystem

APPROACH_START = 0.9       # x the training data's closest approach of the pair
APPROACH_END_A = 0.6       # A
APPROACH_MIN_RISE_EV = 1.0
RELAX_MIN_PAIR = 0.9       # x the training minimum
RELAX_MAX_ERROR_CHANGE = 0.020   # eV/atom


def closest_atom_pairs(positions, cell, names, pair: str, count: int = 1) -> list:
    """The ``count`` closest (i, j, r) of species ``pair`` ("O-Si") in a periodic cell."""
    from ase import Atoms
    from ase.neighborlist import neighbor_list
    atoms = Atoms(list(names), positions=positions, cell=cell, pbc=True)
    i, j, d = neighbor_list("ijd", atoms, 6.0)
    names = np.asarray(names, dtype=str)
    want = np.array([species_pair(a, b) == pair for a, b in zip(names[i], names[j])])
    want &= i < j
    order = np.argsort(d[want])[:count]
    return [(int(a), int(b), float(r)) for a, b, r in
            zip(i[want][order], j[want][order], d[want][order])]


def pair_approach(calc, config: Configuration, i: int, j: int, r_start: float,
                  r_end: float = APPROACH_END_A, points: int = 40):
    """Energies (eV) of ``config`` with atom j moved along the i -> j axis (minimum image)
    to distances r_start ... r_end from atom i (A). ``calc``: a lammps-adv calculator.
    Returns (r [points], energy [points])."""
    pos = np.array(config.positions, dtype=np.float64)
    cell = np.asarray(config.cell, dtype=np.float64)
    d = pos[j] - pos[i]
    frac = np.linalg.solve(cell.T, d)
    d = cell.T @ (frac - np.round(frac))
    axis = d / np.linalg.norm(d)
    r = np.linspace(r_start, r_end, points)
    energies = []
    for k, rk in enumerate(r):
        moved = pos.copy()
        moved[j] = pos[i] + rk * axis
        e, _ = calc.evaluate(moved, cell, symbols=list(config.names),
                             label=f"{config.source}: atoms {i}-{j} at {rk:.3f} A")
        energies.append(float(e))
    return r, np.array(energies)


def approach_verdict(energies, min_rise: float = APPROACH_MIN_RISE_EV) -> dict:
    """Sound when the energy rises at every step of the approach (energies ordered from the
    start distance to the closest) and ends at least ``min_rise`` eV above its start."""
    e = np.asarray(energies, dtype=np.float64)
    steps = np.diff(e)
    rise = float(e[-1] - e[0])
    return {"monotonic": bool(np.all(steps > 0)), "rise_eV": rise,
            "largest_drop_eV": float(max(0.0, -steps.min())) if len(steps) else 0.0,
            "sound": bool(np.all(steps > 0) and rise >= min_rise)}


def approach_all_pairs(calc, config: Configuration, training_closest: dict,
                       pairs_per_species: int = 1, points: int = 40) -> list[dict]:
    """``pair_approach`` for the closest ``pairs_per_species`` pairs of every species pair
    of ``training_closest`` ({pair: closest approach in the training data, A}) in
    ``config``; one row per pushed pair with its verdict."""
    rows = []
    for pair, r_min in sorted(training_closest.items()):
        for i, j, r0 in closest_atom_pairs(config.positions, config.cell, config.names, pair,
                                           pairs_per_species):
            r, e = pair_approach(calc, config, i, j, APPROACH_START * r_min, points=points)
            rows.append({"pair": pair, "atoms": (i, j), "r_in_glass_A": r0,
                         "r_start_A": float(r[0]), "r_end_A": float(r[-1]),
                         "energy_start_eV": float(e[0]), **approach_verdict(e)})
    return rows


def stiffest_mode(system: LammpsSystem, iterations: int = 40, h: float = 1e-3,
                  seed: int = 0) -> float:
    """The largest eigenvalue (eV/A^2) of the Hessian of ``system``'s energy at its current
    positions: power iteration on Hessian-vector products, each a central difference of the
    forces over +-h A along the vector. The positions are restored."""
    x = system.positions()
    v = np.random.default_rng(seed).normal(size=x.shape)
    v /= np.linalg.norm(v)
    lam = 0.0
    try:
        for _ in range(iterations):
            system.set_positions(x + h * v)
            _, f_plus = system.energy_forces()
            system.set_positions(x - h * v)
            _, f_minus = system.energy_forces()
            hv = (f_minus - f_plus) / (2 * h)
            lam = float(np.sum(hv * v))
            v = hv / np.linalg.norm(hv)
    finally:
        system.set_positions(x)
    return lam


def relax_check(approx: str, reference: str, config: Configuration, training_closest: dict,
                fmax: float = 1e-3, steps: int = 2000, baseline: str | None = None) -> dict:
    """A FIRE relaxation of ``config`` driven by ``approx`` in LAMMPS, the reference
    evaluated at its start and end: convergence, the closest pair of every species pair at
    the end against ``RELAX_MIN_PAIR`` x the training minimum, and the change of the
    per-atom error (E_app - E_ref) / N (eV/atom). Also, as diagnostics outside the
    verdict, ``stiffest_mode`` of ``approx`` at the end and, when a native LAMMPS potential
    ``baseline`` is given, its stiffest mode at the same configuration and the steps of its
    own FIRE relaxation from the same start (how hard the start is to relax)."""
    from ase import Atoms

    from lammps_adv.calculators import get_calculator
    atoms = Atoms(list(config.names), positions=config.positions, cell=config.cell, pbc=True)
    n = len(atoms)
    with LammpsSystem(atoms, approx) as system:
        e_app0, _ = system.energy_forces()
        final_fmax = system.minimize(fmax, steps)
        e_app1, _ = system.energy_forces()
        end_pos, end_cell = system.frame()
        done = int(system.lmp.extract_global("ntimestep"))
        stiff = stiffest_mode(system)
    stiff_base = steps_base = None
    if baseline is not None:
        end = Atoms(list(config.names), positions=end_pos, cell=end_cell, pbc=True)
        with LammpsSystem(end, baseline) as system:
            stiff_base = stiffest_mode(system)
        with LammpsSystem(atoms, baseline) as system:
            system.minimize(fmax, steps)
            steps_base = int(system.lmp.extract_global("ntimestep"))
    ref = get_calculator(reference)
    try:
        e_ref0, _ = ref.evaluate(config.positions, config.cell, symbols=list(config.names),
                                 label=f"{config.source} start")
        e_ref1, _ = ref.evaluate(end_pos, end_cell, symbols=list(config.names),
                                 label=f"{config.source} relaxed by {approx}")
    finally:
        ref.close()
    closest = closest_pairs(end_pos, end_cell, list(config.names))
    ratio = {p: closest.get(p, math.inf) / r for p, r in training_closest.items()}
    change = ((e_app1 - e_ref1) - (e_app0 - e_ref0)) / n
    return {"source": config.source, "atoms": n, "converged": bool(final_fmax <= fmax),
            "steps": done, "final_fmax_eV_per_A": float(final_fmax),
            "error_start_eV_per_atom": (e_app0 - e_ref0) / n,
            "error_end_eV_per_atom": (e_app1 - e_ref1) / n,
            "error_change_eV_per_atom": change,
            "closest_pair_end_A": closest, "closest_over_training_min": ratio,
            "stiffest_mode_eV_per_A2": stiff,
            "baseline_stiffest_mode_eV_per_A2": stiff_base, "baseline_steps": steps_base,
            "sound": bool(final_fmax <= fmax and min(ratio.values()) >= RELAX_MIN_PAIR
                          and abs(change) <= RELAX_MAX_ERROR_CHANGE)}


def nve_drift(potential: str, config: Configuration, temperature: float = 1000.0,
              steps: int = 2000, timestep_ps: float = 0.001, every: int = 20,
              seed: int = 12345) -> dict:
    """NVE MD of ``config`` driven by ``potential`` in LAMMPS (velocities drawn at
    ``temperature`` K with ``seed``): the drift of the total energy, the slope of a straight
    line fitted to E_tot(t), in eV/atom/ps, and its RMS fluctuation about that line."""
    from ase import Atoms
    atoms = Atoms(list(config.names), positions=config.positions, cell=config.cell, pbc=True)
    n = len(atoms)
    t, e = [], []
    with LammpsSystem(atoms, potential) as system:
        lmp = system.lmp
        lmp.commands_list([f"timestep {timestep_ps!r}",
                           f"velocity all create {temperature!r} {seed} mom yes rot yes dist gaussian",
                           "fix nve_drift all nve", "thermo_style custom step pe etotal"])
        for k in range(0, steps + 1, every):
            lmp.command(f"run {every if k else 0} post no")
            t.append(k * timestep_ps)
            e.append(float(lmp.get_thermo("etotal")))
    t, e = np.array(t), np.array(e) / n
    slope, icept = np.polyfit(t, e, 1)
    return {"potential": potential, "atoms": n, "temperature_K": temperature,
            "ps": steps * timestep_ps, "timestep_ps": timestep_ps,
            "drift_eV_per_atom_per_ps": float(slope),
            "fluctuation_eV_per_atom": float(np.sqrt(np.mean((e - (slope * t + icept)) ** 2)))}
