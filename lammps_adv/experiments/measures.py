"""What ``lammps-adv mitigate`` measures of a model, on a fixed evaluation set.

The evaluation set (``evaluation_set``) gives every configuration one kind:

    thermal      MD frames of the evaluation file
    relax-start  the frames of that file (``minima`` of them, spread evenly) from which the
                 minima are relaxed with the reference and the recorded model-driven
                 relaxations start; not counted as thermal
    minimum      those frames relaxed with the reference (the lowest-energy configurations)
    md-end       end points of short NVT runs driven by a model (``md_end_points``)

The headline measures below are over the thermal configurations only: at a reference
minimum F_acc = 0, so F_app - F_acc = F_app and |cos(theta)| = 1 for any model with
F_app != 0; the minima would add a constant to every strategy's |cos|. The report compares
the kinds apart, from the per-configuration arrays.

Energies are compared with the run's one alignment (``measure``'s ``alignment``; default
none: the models are trained on the reference's own energies, docs/alignment.md).

    energy_rmse_meV_per_atom   RMS of (E_app - E_acc) / N over the evaluation configurations
    energy_rmse_offset_removed_meV_per_atom
                               the same after removing the mean of (E_app - E_acc) / N: what
                               is left once a constant energy shift is taken out
    force_rmse_eV_per_A        RMS over every force component
    abs_cos_mean               mean |cos(theta)| (= mean |c_F|, independent of the energy
                               zero): the verdict measure of the lean
    abs_cos_over_random        that over the random value sqrt(2 / (pi 3N)) (1: no lean)
    sign_fraction              fraction with E_acc - E_app > 0 (the model too low; depends
                               on the energy zero: see ``per_configuration``)
    cos_mean                   mean signed cos(theta) (a column, never a verdict: it mixes
                               the sign and |cos|)
    cos_energy_correlation     Pearson correlation of cos(theta) with the reference energy
                               per atom
    probe_excess               the probe's increase of |error| (meV/atom) along A minus that
                               along random directions (per-atom epsilon ``probe_epsilon``;
                               a difference, stable where the random increase is near 0)
    relax_growth               median |error| at the last step of recorded relaxations driven
                               by the model (from the relaxation starts) over that at the first
    per configuration (every kind; ``PER_CONFIGURATION``): cos, abs_cos,
    energy_error_sign, cos_force_error, force_error_ratio, alignment_offset,
    energy_error_per_atom (eV/atom), force_sq_error (sum of squared force-component errors,
    eV^2/A^2); relax_curve: median |error| (meV/atom) per minimizer step (the figures of the
    report)
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lammps_adv.calculators import ase_calculator, get_calculator
from lammps_adv.core import adversarial
from lammps_adv.core.alignment import NONE
from lammps_adv.core.configuration import Configuration
from lammps_adv.core.errors import PotentialError
from lammps_adv.core.statistics import pearson, quantile_band
from lammps_adv.core.summaries import epsilon_rows, relax_curves, relax_growth
from lammps_adv.experiments.labelling import label
from lammps_adv.experiments.probe import probe
from lammps_adv.experiments.relax import relax
from lammps_adv.io.results import probe_arrays, read_files, recording
from lammps_adv.io.schema import RECORDING_SUFFIX
from lammps_adv.lammps.snippets import get as get_potential
from lammps_adv.lammps.system import LammpsSystem
from lammps_adv.parallel.tasks import split_tasks
from lammps_adv.training.sampling import md_frames

KINDS = ("thermal", "relax-start", "minimum", "md-end")   # eval_kind of a configuration
MINIMA_FMAX = 1e-3                      # eV/A: largest per-atom reference force at a minimum
MINIMA_MAX_STEPS = 2000                 # FIRE steps at most per relaxation
# the arrays of one run (strategy x seed) over the evaluation configurations
PER_CONFIGURATION = ("cos", "abs_cos", "energy_error_sign", "cos_force_error",
                     "force_error_ratio", "alignment_offset", "energy_error_per_atom",
                     "force_sq_error")


def reference_labels(configs, reference: str, comm) -> list:
    return label(configs, reference, comm, what="evaluation labels")


def minima_count(n_configs: int, minima: int | None) -> int:
    """How many evaluation configurations get a relaxed copy: ``minima``, or (None) a
    quarter of them rounded up, enough for remedy 4's minima-vs-thermal comparison
    without letting the cheap minima crowd the thermal set."""
    k = math.ceil(n_configs / 4) if minima is None else int(minima)
    if not 0 <= k <= n_configs:
        raise ValueError(f"--minima must be between 0 and the {n_configs} evaluation "
                         f"configurations, not {k}")
    return k


def spread(n: int, k: int) -> np.ndarray:
    """k indices out of n spread evenly (first and last included), so over the glasses and
    temperatures of a file written run after run."""
    return np.unique(np.linspace(0, n - 1, k).round().astype(int)) if k else np.zeros(0, int)


def evaluation_set(configs, reference: str, comm, minima: int | None = None,
                   fmax: float = MINIMA_FMAX, max_steps: int = MINIMA_MAX_STEPS):
    """The evaluation configurations and the kind of each: ``configs`` in file order, those
    ``minima_count`` of them spread evenly (``spread``) marked "relax-start" and the rest
    "thermal", followed by their copies relaxed with the reference ("minimum", in the same
    order as the starts)."""
    k = minima_count(len(configs), minima)
    picked = spread(len(configs), k)
    relaxed = relaxed_minima([configs[int(i)] for i in picked], reference, comm, fmax, max_steps)
    kinds = [KINDS[1] if i in set(picked.tolist()) else KINDS[0] for i in range(len(configs))]
    return list(configs) + relaxed, kinds + [KINDS[2]] * len(relaxed)


def relaxed_minima(configs, reference, comm, fmax: float = MINIMA_FMAX,
                   max_steps: int = MINIMA_MAX_STEPS) -> list[Configuration]:
    """``configs`` relaxed (fixed cell) with the reference to a largest per-atom force of
    ``fmax`` eV/A or ``max_steps`` FIRE steps: in LAMMPS (``LammpsSystem.minimize``) when the
    reference is a LAMMPS potential, else with ASE's FIRE through the reference as an ASE
    calculator (e.g. an ASE calculator instance, a GFN-xTB spec). One configuration per
    rank, as ``label`` spreads them, so the minima do not depend on the number of ranks.
    Same glass (unit), temperature 0 K, source ``<source>+relaxed``."""
    if not configs:
        return []
    try:
        get_potential(reference)
        in_lammps = True
    except PotentialError:
        in_lammps = False
    from ase import Atoms
    sub, mine, _ = split_tasks(comm, len(configs))
    done = {}
    try:
        for i in mine:
            c = configs[i]
            atoms = Atoms(list(c.names), positions=c.positions, cell=c.cell, pbc=True)
            if in_lammps:
                with LammpsSystem(atoms, reference, comm=sub) as system:
                    system.minimize(fmax, max_steps)
                    positions, cell = system.frame()
            else:
                positions, cell = _ase_fire(atoms, reference, fmax, max_steps)
            done[i] = Configuration(positions, cell, list(c.names), f"{c.source}+relaxed",
                                    c.unit, 0.0)
    finally:
        sub.Free()
    merged = {k: v for part in comm.allgather(done) for k, v in part.items()}
    return [merged[i] for i in range(len(configs))]


def _ase_fire(atoms, reference, fmax: float, max_steps: int):
    """Positions and cell after ASE's FIRE (fixed cell) with the reference, to a largest
    per-atom force of ``fmax`` eV/A or ``max_steps`` steps."""
    from ase.optimize import FIRE
    atoms.calc = ase_calculator(reference)
    FIRE(atoms, logfile=None).run(fmax=fmax, steps=max_steps)
    return atoms.get_positions(), atoms.cell.array.copy()


def md_end_points(configs, driver: str, reference: str, comm, temperature: float,
                  steps: int, seed: int = 0) -> list[dict]:
    """The end point of an NVT run (Nose-Hoover, ``steps`` steps of 1 fs at ``temperature``
    K, velocities seeded by ``seed`` + k) driven by the LAMMPS potential ``driver`` from
    each of ``configs``, labelled by ``reference`` (dicts as ``label`` returns them). One
    run per rank, so the end points do not depend on the number of ranks. Source
    ``<source>+md<steps>``."""
    from ase import Atoms
    if steps < 1 or not temperature > 0:
        raise ValueError(f"model-driven runs need steps >= 1 and a temperature > 0 K (steps "
                         f"{steps}, {temperature} K)")
    sub, mine, _ = split_tasks(comm, len(configs))
    done = {}
    try:
        with get_calculator(reference, comm=sub) as ref:
            for i in mine:
                c = configs[i]
                atoms = Atoms(list(c.names), positions=c.positions, cell=c.cell, pbc=True)
                (fr,) = md_frames(atoms, driver, float(temperature), 1, steps, 0,
                                  seed=seed + 1 + i, label=f"{c.source}+md{steps}", comm=sub,
                                  reference=ref)
                done[i] = {"positions": fr["positions"], "cell": fr["cell"],
                           "names": list(c.names), "energy": fr["energy"],
                           "forces": fr["forces"], "source": f"{c.source}+md{steps}"}
    finally:
        sub.Free()
    merged = {k: v for part in comm.allgather(done) for k, v in part.items()}
    return [merged[i] for i in range(len(configs))]


def per_configuration(pred: list, reference_labels: list, aligned) -> dict:
    """The decomposition of cos(theta) of every configuration (arrays named as
    ``PER_CONFIGURATION``): cos = energy_error_sign * cos_force_error, abs_cos = |cos|,
    force_error_ratio = |F_app - F_acc| / |F_app|, with E_app shifted by ``aligned`` (an
    Alignment); alignment_offset records that shift (eV), so the sign's dependence on the
    energy zero stays visible; energy_error_per_atom = (E_app - E_acc) / N (eV/atom) and
    force_sq_error = sum |F_app - F_acc|^2 (eV^2/A^2) give the RMSEs of any subset."""
    rows = []
    for p, r in zip(pred, reference_labels):
        offset = aligned.offset(p["names"])
        d = adversarial.decomposition(p["energy"] + offset, r["energy"], p["forces"], r["forces"])
        df = np.asarray(p["forces"], dtype=np.float64) - np.asarray(r["forces"], dtype=np.float64)
        rows.append({"cos": d["cos_adversarial"], "abs_cos": d["abs_cos_adversarial"],
                     "energy_error_sign": d["energy_error_sign"],
                     "cos_force_error": d["cos_force_error"],
                     "force_error_ratio": d["force_error_ratio"], "alignment_offset": offset,
                     "energy_error_per_atom": (p["energy"] + offset - r["energy"]) / len(df),
                     "force_sq_error": float(np.sum(df * df))})
    return {k: np.array([row[k] for row in rows], dtype=np.float64) for k in PER_CONFIGURATION}


def measure(model_pt, configs, reference_labels: list, s, folder: Path, comm,
            full: bool = True, kinds=None, alignment=NONE) -> dict:
    """The measures of the TorchScript model ``model_pt`` over the thermal configurations
    (``kinds``: the kind of each configuration, None: all thermal) and the
    ``PER_CONFIGURATION`` arrays over all of them (``full``: also the probe of thermal
    configurations and relaxations from the relaxation starts, thermal ones when there are
    none, written under ``folder``). Energies are aligned by
    ``alignment`` (default none: a model trained on the reference shares its energy zero,
    and a fit on the evaluation set would decide the sign of cos(theta) itself); the probe
    and relaxations apply it unchanged."""
    spec = f"torchscript:{model_pt}"
    pred = label(configs, spec, comm, what="evaluation")
    n = np.array([len(r["positions"]) for r in reference_labels], dtype=float)
    e_acc = np.array([r["energy"] for r in reference_labels])
    e_app = np.array([p["energy"] + alignment.offset(p["names"]) for p in pred])
    per = per_configuration(pred, reference_labels, alignment)
    kinds = list(kinds) if kinds is not None else [KINDS[0]] * len(configs)
    th = np.flatnonzero([k == KINDS[0] for k in kinds])
    starts = np.flatnonzero([k == KINDS[1] for k in kinds])
    df = np.concatenate([(pred[i]["forces"] - reference_labels[i]["forces"]).ravel() for i in th])
    cos, abs_cos = per["cos"][th], per["abs_cos"][th]
    random = np.mean([adversarial.random_abs_cos(int(k)) for k in n[th]])
    de = (e_app - e_acc)[th] / n[th]
    out = {"energy_rmse_meV_per_atom": float(np.sqrt(np.mean(de ** 2)) * 1000),
           "energy_rmse_offset_removed_meV_per_atom": float(np.std(de) * 1000),
           "force_rmse_eV_per_A": float(np.sqrt(np.mean(df ** 2))),
           "abs_cos_mean": float(abs_cos.mean()),
           "abs_cos_over_random": float(abs_cos.mean() / random),
           "sign_fraction": float((per["energy_error_sign"][th] > 0).mean()),
           "cos_mean": float(cos.mean()),
           "cos_energy_correlation": pearson(cos, e_acc[th] / n[th]),
           "probe_excess": np.nan, "relax_growth": np.nan,
           **per, "relax_curve": np.full(s.relax_steps + 1, np.nan)}
    if full:
        out.update(probe_and_relax(spec, [configs[i] for i in th],
                                   [configs[i] for i in (starts if len(starts) else th)],
                                   s, Path(folder), comm, alignment))
    return out


def probe_and_relax(spec: str, configs, starts, s, folder: Path, comm,
                    alignment=NONE) -> dict:
    """The probe on ``configs`` and recorded relaxations from ``starts`` (at most
    ``probe_configs`` and ``relaxations`` of them, spread evenly)."""
    folder.mkdir(parents=True, exist_ok=True)
    p = probe([configs[i] for i in spread(len(configs), min(s.probe_configs, len(configs)))],
              spec, s.reference, folder / "probe.h5",
              epsilons=(0.0, s.probe_epsilon), n_random=2, distortion="per-atom",
              comm=comm, progress=False, alignment=alignment)
    relax([starts[i] for i in spread(len(starts), min(s.relaxations, len(starts)))],
          spec, s.reference, folder / "relax", steps=s.relax_steps,
          overwrite=True, comm=comm, progress=False, alignment=alignment)
    (res,) = read_files([p], probe_arrays)
    files = sorted((folder / "relax").glob(f"relax_*{RECORDING_SUFFIX}"))
    runs = read_files(files, recording)
    _, median, _, _ = quantile_band([relax_curves(r)[1] for r in runs])
    curve = np.full(s.relax_steps + 1, np.nan)
    curve[:min(len(median), len(curve))] = median[:len(curve)]
    row = epsilon_rows(res)[1]
    return {"probe_excess": row["adversarial_increase"] - row["random_increase"],
            "relax_growth": relax_growth(runs), "relax_curve": curve}
