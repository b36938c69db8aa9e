"""What ``lammps-adv mitigate`` measures of a model, on a fixed evaluation set.

    energy_rmse_meV_per_atom   RMS of (E_app - E_acc) / N over the evaluation configurations
    force_rmse_eV_per_A        RMS over every force component
    cos_mean                   mean cos(theta) (approximate energy aligned per species on
    cos_fraction_positive      the evaluation set), the fraction > 0, and its Pearson
    cos_energy_correlation     correlation with the reference energy per atom
    probe_excess               the probe's increase of |error| (meV/atom) along A minus that
                               along random directions (per-atom epsilon ``probe_epsilon``;
                               a difference, stable where the random increase is near 0)
    relax_growth               median |error| at the last step of recorded relaxations driven
                               by the model over that at the first
    cos, relax_curve           per configuration cos(theta); median |error| (meV/atom) per
                               minimizer step (the figures of the report)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lammps_adv.core import adversarial
from lammps_adv.core.alignment import fit
from lammps_adv.core.statistics import pearson, quantile_band
from lammps_adv.core.summaries import epsilon_rows, relax_curves, relax_first_step
from lammps_adv.experiments.labelling import label
from lammps_adv.experiments.probe import probe
from lammps_adv.experiments.relax import relax
from lammps_adv.io.results import probe_arrays, read_files, recording


def reference_labels(configs, reference: str, comm) -> list:
    return label(configs, reference, comm, what="evaluation labels")


def measure(model_pt, configs, reference_labels: list, s, folder: Path, comm,
            full: bool = True) -> dict:
    """The measures of the TorchScript model ``model_pt`` (``full``: also probe and
    relaxations, written under ``folder``)."""
    spec = f"torchscript:{model_pt}"
    pred = label(configs, spec, comm, what="evaluation")
    n = np.array([len(r["positions"]) for r in reference_labels], dtype=float)
    e_acc = np.array([r["energy"] for r in reference_labels])
    e_app = np.array([p["energy"] for p in pred])
    df = np.concatenate([(p["forces"] - r["forces"]).ravel() for p, r in zip(pred, reference_labels)])
    aligned = fit([r["names"] for r in reference_labels], e_app, e_acc)
    cos = np.array([adversarial.cos_adversarial(p["energy"] + aligned.offset(p["names"]),
                                                r["energy"], p["forces"], r["forces"])
                    for p, r in zip(pred, reference_labels)])
    out = {"energy_rmse_meV_per_atom": float(np.sqrt(np.mean(((e_app - e_acc) / n) ** 2)) * 1000),
           "force_rmse_eV_per_A": float(np.sqrt(np.mean(df ** 2))),
           "cos_mean": float(cos.mean()), "cos_fraction_positive": float((cos > 0).mean()),
           "cos_energy_correlation": pearson(cos, e_acc / n),
           "probe_excess": np.nan, "relax_growth": np.nan,
           "cos": cos, "relax_curve": np.full(s.relax_steps + 1, np.nan)}
    if full:
        out.update(probe_and_relax(spec, configs, s, Path(folder), comm))
    return out


def probe_and_relax(spec: str, configs, s, folder: Path, comm) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    p = probe(configs[:s.probe_configs], spec, s.reference, folder / "probe.h5",
              epsilons=(0.0, s.probe_epsilon), n_random=2, distortion="per-atom",
              comm=comm, progress=False)
    relax(configs[:s.relaxations], spec, s.reference, folder / "relax", steps=s.relax_steps,
          overwrite=True, comm=comm, progress=False)
    (res,) = read_files([p], probe_arrays)
    files = sorted((folder / "relax").glob("relax_*.h5"))
    runs = read_files(files, recording)
    growth = relax_first_step(runs)
    _, median, _, _ = quantile_band([relax_curves(r)[1] for r in runs])
    curve = np.full(s.relax_steps + 1, np.nan)
    curve[:min(len(median), len(curve))] = median[:len(curve)]
    row = epsilon_rows(res)[1]
    return {"probe_excess": row["adversarial_increase"] - row["random_increase"],
            "relax_growth": growth["growth_factor"], "relax_curve": curve}
