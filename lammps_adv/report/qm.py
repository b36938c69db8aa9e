"""The report's section on results judged against a quantum-mechanical reference (GFN-xTB
or DFT): the lean of F_app along A per model pair (|cos| and sign, apart), and whether
training on forces lowered |cos|."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lammps_adv.core.statistics import MIN_UNITS, cluster_bootstrap_ci, unit_count
from lammps_adv.core.summaries import lean_items, lean_summary
from lammps_adv.io.model_card import card_of_spec
from lammps_adv.report.labels import pair_label, recorded_model
from lammps_adv.report.tables import with_ci_if_resolved, write_table


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
        settings = card_of_spec(spec)[1]["settings"]
        return "energies and forces" if float(settings.get("force_weight", 0)) > 0 else "energies"
    except (OSError, ValueError, KeyError, TypeError):
        return "?"


def qm_section(res: dict, out: Path) -> list[str]:
    """Model pairs judged against GFN-xTB or DFT: the lean of F_app along A per pair
    (magnitude: mean |cos| against random; sign: fraction with E_acc - E_app' > 0), and
    whether training on forces lowered |cos| (the study: it does, a lot). Intervals are
    cluster bootstraps over the independent units; fewer than MIN_UNITS: not resolved."""
    probes = [p for p in res["probe"] if is_qm(p.params)]
    if not probes:
        return []
    rows, by_training = [], {}
    for p in probes:
        items = lean_items(p, str(p.path))
        kind = trained_on(p.params.get("approx"))
        s = lean_summary(**items)
        k = s["units"]
        rows.append({"model pair": pair_label(p.params), "approximate model": kind,
                     "n": s["n"], "independent units": k,
                     "mean |cos|": with_ci_if_resolved(s["abs_cos_mean"], s["abs_cos_ci"], k),
                     "random |cos|": f"{s['random_abs_cos']:.3g}",
                     "magnitude": s["magnitude"],
                     "fraction E_acc - E_app' > 0": with_ci_if_resolved(
                         s["positive_fraction"], s["positive_ci"], k, "{:.2f}"),
                     "alignment": str(p.params.get("alignment", "none")),
                     "reference": p.params.get("reference_description", "")})
        if kind in ("energies", "energies and forces"):
            by_training.setdefault(kind, []).append(items)
    write_table(rows, out / "qm_cos_stats")
    lines = ["## Judged against a quantum-mechanical reference", "",
             "Analytic force fields and networks trained on GFN-xTB (or DFT) labels, each against "
             "that reference, all configurations of a file pooled (per temperature: the "
             "cos(theta) section). Magnitude: mean |cos(theta)| against the random value "
             "sqrt(2 / (pi 3N)); sign: the fraction with E_acc - E_app' > 0, for the alignment "
             "named (the alignment section of each file). Intervals: 95 % cluster bootstrap over "
             f"the independent units, \"not resolved\" below {MIN_UNITS}. The reference's "
             "settings (method, accuracy, electronic temperature, k-points) are in the last "
             "column, as the result files record them.", "",
             (out / "qm_cos_stats.md").read_text(), ""]
    if len(by_training) == 2:
        lines += [force_training_sentence(*(
            {k: np.concatenate([i[k] for i in by_training[kind]]) for k in ("cos", "unit")}
            for kind in ("energies", "energies and forces"))), ""]
    return lines


def force_training_sentence(energy_only: dict, forces: dict) -> str:
    """Does training on forces lower mean |cos(theta)|? The difference of the two classes'
    means with a cluster bootstrap over the units of both (a configuration probed with both
    networks belongs to one unit, so the comparison is paired where it can be)."""
    values = np.abs(np.concatenate([forces["cos"], energy_only["cos"]]))
    group = np.r_[np.ones(len(forces["cos"])), np.zeros(len(energy_only["cos"]))]
    units = np.concatenate([forces["unit"], energy_only["unit"]]).astype(str)

    def difference(v, g):
        return float(v[g == 1].mean() - v[g == 0].mean()) if 0 < g.sum() < len(g) else np.nan
    diff = difference(values, group)
    k = unit_count(units)
    lo, hi = cluster_bootstrap_ci(difference, values, group, units=units)
    if k < MIN_UNITS:
        verdict = f"not resolved: {k} independent units, fewer than {MIN_UNITS}"
    elif hi < 0:
        verdict = "yes: training on forces lowered mean |cos(theta)|, as the study found"
    elif lo > 0:
        verdict = "no: mean |cos(theta)| is higher with force training, unlike the study"
    else:
        verdict = "no resolved difference: the interval includes 0"
    return (f"Does force training lower the lean? Mean |cos(theta)| of the networks trained on "
            f"energies only: {np.abs(energy_only['cos']).mean():.3g} ({len(energy_only['cos'])} "
            f"configurations); on energies and forces: {np.abs(forces['cos']).mean():.3g} "
            f"({len(forces['cos'])}); difference "
            f"{with_ci_if_resolved(diff, (lo, hi), k)} over {k} independent units: {verdict}.")
