"""What ``lammps-adv mitigate`` measures of a model, on a fixed evaluation set.

The evaluation set is thermal MD configurations plus relaxed minima: copies of some of
them relaxed with the reference (``evaluation_set``), kind "thermal" or "minimum". The
measures below are over the thermal configurations only: at a reference minimum F_acc = 0,
so F_app - F_acc = F_app and |cos(theta)| = 1 for any model with F_app != 0; the minima
would add a constant to every strategy's |cos|. The report compares the two kinds apart.

Energies are compared with the run's one alignment (``measure``'s ``alignment``; default
none: the models are trained on the reference's own energies, docs/alignment.md).

    energy_rmse_meV_per_atom   RMS of (E_app - E_acc) / N over the evaluation configurations
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
                               by the model over that at the first
    per configuration (thermal and minima; ``PER_CONFIGURATION``): cos, abs_cos,
    energy_error_sign, cos_force_error, force_error_ratio, alignment_offset; relax_curve:
    median |error| (meV/atom) per minimizer step (the figures of the report)
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

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
from lammps_adv.lammps.snippets import get as get_potential
from lammps_adv.lammps.system import LammpsSystem
from lammps_adv.parallel.tasks import split_tasks

KINDS = ("thermal", "minimum")          # eval_kind of an evaluation configuration
MINIMA_FMAX = 1e-3                      # eV/A: largest per-atom reference force at a minimum
MINIMA_MAX_STEPS = 2000                 # FIRE steps at most per relaxation
# the arrays of one run (strategy x seed) over the evaluation configurations
PER_CONFIGURATION = ("cos", "abs_cos", "energy_error_sign", "cos_force_error",
                     "force_error_ratio", "alignment_offset")


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


def evaluation_set(configs, reference: str, comm, minima: int | None = None,
                   fmax: float = MINIMA_FMAX, max_steps: int = MINIMA_MAX_STEPS):
    """The evaluation configurations and the kind of each: ``configs`` ("thermal") followed
    by relaxed copies ("minimum") of ``minima_count`` of them, spread evenly over the set
    (so over its glasses and temperatures)."""
    k = minima_count(len(configs), minima)
    picked = np.unique(np.linspace(0, len(configs) - 1, k).round().astype(int)) if k else []
    relaxed = relaxed_minima([configs[int(i)] for i in picked], reference, comm, fmax, max_steps)
    return list(configs) + relaxed, [KINDS[0]] * len(configs) + [KINDS[1]] * len(relaxed)


def relaxed_minima(configs, reference: str, comm, fmax: float = MINIMA_FMAX,
                   max_steps: int = MINIMA_MAX_STEPS) -> list[Configuration]:
    """``configs`` relaxed (fixed cell) with the reference in LAMMPS to a largest per-atom
    force of ``fmax`` eV/A or ``max_steps`` FIRE steps (``LammpsSystem.minimize``). One
    configuration per rank, as ``label`` spreads them, so the minima do not depend on the
    number of ranks. Same glass (unit), temperature 0 K, source ``<source>+relaxed``."""
    if not configs:
        return []
    try:
        get_potential(reference)
    except PotentialError as exc:
        raise PotentialError(f"relaxed evaluation minima need a reference LAMMPS runs ({exc}); "
                             "use --minima 0") from None
    from ase import Atoms
    sub, mine, _ = split_tasks(comm, len(configs))
    done = {}
    try:
        for i in mine:
            c = configs[i]
            atoms = Atoms(list(c.names), positions=c.positions, cell=c.cell, pbc=True)
            with LammpsSystem(atoms, reference, comm=sub) as system:
                system.minimize(fmax, max_steps)
                positions, cell = system.frame()
            done[i] = Configuration(positions, cell, list(c.names), f"{c.source}+relaxed",
                                    c.unit, 0.0)
    finally:
        sub.Free()
    merged = {k: v for part in comm.allgather(done) for k, v in part.items()}
    return [merged[i] for i in range(len(configs))]


def per_configuration(pred: list, reference_labels: list, aligned) -> dict:
    """The decomposition of cos(theta) of every configuration (arrays named as
    ``PER_CONFIGURATION``): cos = energy_error_sign * cos_force_error, abs_cos = |cos|,
    force_error_ratio = |F_app - F_acc| / |F_app|, with E_app shifted by ``aligned`` (an
    Alignment); alignment_offset records that shift (eV), so the sign's dependence on the
    energy zero stays visible."""
    rows = []
    for p, r in zip(pred, reference_labels):
        offset = aligned.offset(p["names"])
        d = adversarial.decomposition(p["energy"] + offset, r["energy"], p["forces"], r["forces"])
        rows.append({"cos": d["cos_adversarial"], "abs_cos": d["abs_cos_adversarial"],
                     "energy_error_sign": d["energy_error_sign"],
                     "cos_force_error": d["cos_force_error"],
                     "force_error_ratio": d["force_error_ratio"], "alignment_offset": offset})
    return {k: np.array([row[k] for row in rows], dtype=np.float64) for k in PER_CONFIGURATION}


def measure(model_pt, configs, reference_labels: list, s, folder: Path, comm,
            full: bool = True, kinds=None, alignment=NONE) -> dict:
    """The measures of the TorchScript model ``model_pt`` over the thermal configurations
    (``kinds``: the kind of each configuration, None: all thermal) and the
    ``PER_CONFIGURATION`` arrays over all of them (``full``: also probe and relaxations of
    thermal configurations, written under ``folder``). Energies are aligned by
    ``alignment`` (default none: a model trained on the reference shares its energy zero,
    and a fit on the evaluation set would decide the sign of cos(theta) itself); the probe
    and relaxations apply it unchanged."""
    spec = f"torchscript:{model_pt}"
    pred = label(configs, spec, comm, what="evaluation")
    n = np.array([len(r["positions"]) for r in reference_labels], dtype=float)
    e_acc = np.array([r["energy"] for r in reference_labels])
    e_app = np.array([p["energy"] + alignment.offset(p["names"]) for p in pred])
    per = per_configuration(pred, reference_labels, alignment)
    thermal = np.array([k == KINDS[0] for k in kinds] if kinds is not None
                       else [True] * len(configs))
    th = np.flatnonzero(thermal)
    df = np.concatenate([(pred[i]["forces"] - reference_labels[i]["forces"]).ravel() for i in th])
    cos, abs_cos = per["cos"][th], per["abs_cos"][th]
    random = np.mean([adversarial.random_abs_cos(int(k)) for k in n[th]])
    out = {"energy_rmse_meV_per_atom":
           float(np.sqrt(np.mean(((e_app - e_acc)[th] / n[th]) ** 2)) * 1000),
           "force_rmse_eV_per_A": float(np.sqrt(np.mean(df ** 2))),
           "abs_cos_mean": float(abs_cos.mean()),
           "abs_cos_over_random": float(abs_cos.mean() / random),
           "sign_fraction": float((per["energy_error_sign"][th] > 0).mean()),
           "cos_mean": float(cos.mean()),
           "cos_energy_correlation": pearson(cos, e_acc[th] / n[th]),
           "probe_excess": np.nan, "relax_growth": np.nan,
           **per, "relax_curve": np.full(s.relax_steps + 1, np.nan)}
    if full:
        out.update(probe_and_relax(spec, [configs[i] for i in th], s, Path(folder), comm,
                                   alignment))
    return out


def probe_and_relax(spec: str, configs, s, folder: Path, comm, alignment=NONE) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    p = probe(configs[:s.probe_configs], spec, s.reference, folder / "probe.h5",
              epsilons=(0.0, s.probe_epsilon), n_random=2, distortion="per-atom",
              comm=comm, progress=False, alignment=alignment)
    relax(configs[:s.relaxations], spec, s.reference, folder / "relax", steps=s.relax_steps,
          overwrite=True, comm=comm, progress=False, alignment=alignment)
    (res,) = read_files([p], probe_arrays)
    files = sorted((folder / "relax").glob("relax_*.h5"))
    runs = read_files(files, recording)
    _, median, _, _ = quantile_band([relax_curves(r)[1] for r in runs])
    curve = np.full(s.relax_steps + 1, np.nan)
    curve[:min(len(median), len(curve))] = median[:len(curve)]
    row = epsilon_rows(res)[1]
    return {"probe_excess": row["adversarial_increase"] - row["random_increase"],
            "relax_growth": relax_growth(runs), "relax_curve": curve}
