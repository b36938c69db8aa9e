"""The report's section on results judged against a quantum-mechanical reference (GFN-xTB
or DFT): cos(theta) per model pair, and whether training on forces lowered it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lammps_adv.core.specs import model_file
from lammps_adv.core.statistics import difference_ci
from lammps_adv.io.model_card import card_paths
from lammps_adv.io.resources import shipped_model
from lammps_adv.report.labels import pair_label, recorded_model
from lammps_adv.report.tables import cos_stats, with_ci, write_table


def is_qm(params: dict) -> bool:
    """A result whose reference is quantum mechanical: live GFN-xTB, or stored labels that
    GFN-xTB or DFT made (as the label file's description says)."""
    ref = recorded_model(params.get("reference", ""))
    desc = str(params.get("reference_description", ""))
    return ref is not None and (ref.kind == "xtb" or (ref.kind == "labels" and any(
        w in desc for w in ("xTB", "xtb:", "DFT"))))


def trained_on(spec: str) -> str:
    """'energies' / 'energies and forces' for a TorchScript model with a model card, else
    'analytic' (a catalogue potential) or '?'."""
    model = recorded_model(spec)
    kind = model.kind if model is not None else None
    if kind != "torchscript":
        return "?" if kind in ("labels", "xtb", "ase") else "analytic"
    try:
        card = card_paths(model_file(model, shipped_model))[0]
        settings = json.loads(card.read_text())["settings"]
        return "energies and forces" if float(settings.get("force_weight", 0)) > 0 else "energies"
    except (OSError, ValueError, KeyError, TypeError):
        return "?"


def qm_section(res: dict, out: Path) -> list[str]:
    """Model pairs judged against GFN-xTB or DFT: cos(theta) with intervals per pair, and
    whether training on forces lowered it (the study: it does, a lot)."""
    probes = [p for p in res["probe"] if is_qm(p.params)]
    if not probes:
        return []
    rows, by_training = [], {}
    for p in probes:
        cos = np.asarray(p.data["cos_adversarial"], float)
        kind = trained_on(p.params.get("approx"))
        rows.append({"model pair": pair_label(p.params), "approximate model": kind,
                     **cos_stats(cos), "reference": p.params.get("reference_description", "")})
        if kind in ("energies", "energies and forces"):
            by_training.setdefault(kind, []).append(cos)
    write_table(rows, out / "qm_cos_stats")
    lines = ["## Judged against a quantum-mechanical reference", "",
             "Analytic force fields and networks trained on GFN-xTB (or DFT) labels, each against "
             "that reference; cos(theta) per configuration with 95 % bootstrap intervals. The "
             "reference's settings (method, accuracy, electronic temperature, k-points) are in "
             "the last column, as the result files record them.", "",
             (out / "qm_cos_stats.md").read_text(), ""]
    if len(by_training) == 2:
        e_only = np.concatenate(by_training["energies"])
        forces = np.concatenate(by_training["energies and forces"])
        diff = float(forces.mean() - e_only.mean())
        lo, hi = difference_ci(forces, e_only)
        verdict = ("yes: training on forces lowered the mean cos(theta), as the study found"
                   if hi < 0 else
                   "no: the mean cos(theta) is higher with force training, unlike the study"
                   if lo > 0 else
                   "not resolved: the interval of the difference includes 0 (more "
                   "configurations are needed)")
        lines += [f"Does force training lower the correlation? Mean cos(theta) of the networks "
                  f"trained on energies only: {e_only.mean():.3g} ({len(e_only)} configurations); "
                  f"on energies and forces: {forces.mean():.3g} ({len(forces)}); difference "
                  f"{with_ci(diff, (lo, hi))}: {verdict}.", ""]
    return lines
