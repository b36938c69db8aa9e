#!/usr/bin/env python
"""Is each model physically sound where the study's runs take it? (docs/models.md)

    python analysis/model_soundness.py potentials/bp_bks_dsf.pt potentials/gnn_bks_dsf.pt \\
        --heldout out/models/heldout_glass.h5 --json out/models/soundness.json

For every model (a TorchScript file with its model card, whose closest_pair_A gives the
training data's closest approach of each species pair):
  1. pair approach: in the first relaxed held-out glass, the closest pair of every species
     pair pushed together from 0.9 x the training minimum to 0.6 A; sound when the energy
     rises at every step and by >= 1 eV;
  2. relaxations: FIRE (fmax --fmax eV/A, at most --steps steps) of one thermal frame of
     each of the first --relaxations held-out glasses (the lowest temperature), driven by
     the model in LAMMPS, the reference (--reference, default bks-dsf) evaluated at start
     and end; sound when converged, no pair closer than 0.9 x the training minimum and
     |change of (E_app - E_ref)/N| <= 20 meV/atom; printed beside, outside the verdict:
     the steps of the same relaxation driven by --nve-baseline, and the stiffest mode
     (largest Hessian eigenvalue, eV/A^2) of the model at the end and of --nve-baseline at
     the same configuration: a model much stiffer than the baseline forces FIRE to small
     steps, and its relaxations creep;
  3. NVE MD (--nve-ps ps at --nve-temperature K, 1 fs) of the same relaxed glass driven by
     the model and by the native --nve-baseline (default bks-dsf) in the same run: drift of
     E_tot in meV/atom/ps; sound when |drift| <= 2 x the baseline's |drift| + 0.01
     meV/atom/ps (the floor keeps a baseline that drifts by nothing from failing every
     model).
Prints one table per check; exit status 1 when any model fails any check. Units: eV, A, ps.
"""
import argparse
import json
import math
from pathlib import Path

from _script import run_main
from lammps_adv.calculators import get_calculator
from lammps_adv.core.progress import bar
from lammps_adv.experiments import soundness
from lammps_adv.io.configs import load_configs
from lammps_adv.io.model_card import card_closest_pairs, read_model_card

DRIFT_FACTOR = 2.0
DRIFT_FLOOR = 1e-5      # eV/atom/ps


def held_out(path: Path, n_relax: int):
    """(a relaxed glass (0 K) for the approach and NVE, [thermal starts: the lowest
    temperature's first frame of each of the first ``n_relax`` glasses])."""
    configs = load_configs(path, split=None)
    relaxed = [c for c in configs if c.temperature == 0]
    if not relaxed:
        raise ValueError(f"{path} holds no relaxed (0 K) configuration (make models writes "
                         "some)")
    starts, seen = [], set()
    for c in sorted((c for c in configs if c.temperature > 0), key=lambda c: c.temperature):
        if c.unit not in seen and len(starts) < n_relax:
            seen.add(c.unit)
            starts.append(c)
    return relaxed[0], starts


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="TorchScript model files with model cards")
    ap.add_argument("--heldout", required=True, help="held-out dataset (.h5) of glasses")
    ap.add_argument("--reference", default="bks-dsf",
                    help="reference of the relaxations (default bks-dsf; xtb:GFN1 for the "
                    "xtb-trained networks)")
    ap.add_argument("--nve-baseline", default="bks-dsf",
                    help="native potential whose NVE drift, run in the same process, sets the "
                    "limit (default bks-dsf)")
    ap.add_argument("--relaxations", type=int, default=4,
                    help="glasses relaxed per model (default 4)")
    ap.add_argument("--fmax", type=float, default=1e-3, help="eV/A (default 1e-3)")
    ap.add_argument("--steps", type=int, default=5000,
                    help="FIRE step cap (default 5000, as the model-driven relaxations; "
                    "bks-dsf itself needs 418-1450 steps from the default starts)")
    ap.add_argument("--nve-ps", type=float, default=1.0, help="ps of NVE MD (default 1)")
    ap.add_argument("--nve-temperature", type=float, default=1000.0,
                    help="K of the initial velocities (default 1000)")
    ap.add_argument("--json", help="write every number to this JSON file")
    a = ap.parse_args()
    glass, starts = held_out(Path(a.heldout), a.relaxations)
    steps = int(round(a.nve_ps / 0.001))
    report = {"heldout": a.heldout, "approach_glass": glass.source, "reference": a.reference,
              "nve_baseline": a.nve_baseline,
              "relaxation_starts": [c.source for c in starts], "models": {}}
    print(f"baseline NVE ({a.nve_baseline}, {len(glass.names)} atoms, {a.nve_ps:g} ps)...",
          flush=True)
    ref_nve = soundness.nve_drift(a.nve_baseline, glass, a.nve_temperature, steps)
    report["reference_nve"] = ref_nve
    limit = DRIFT_FACTOR * abs(ref_nve["drift_eV_per_atom_per_ps"]) + DRIFT_FLOOR
    failed = False
    for path in a.models:
        card = read_model_card(path)
        closest = card_closest_pairs(card)
        if not closest:
            raise ValueError(f"{path}: its model card has no training_data.closest_pair_A")
        spec = f"torchscript:{path}"
        calc = get_calculator(spec)
        try:
            approach = soundness.approach_all_pairs(calc, glass, closest)
        finally:
            calc.close()
        relax = []
        progress = bar(len(starts), f"relaxations driven by {Path(path).name}", "relax")
        for c in starts:
            relax.append(soundness.relax_check(spec, a.reference, c, closest, a.fmax, a.steps,
                                                  baseline=a.nve_baseline))
            progress.update(1)
        progress.close()
        nve = soundness.nve_drift(spec, glass, a.nve_temperature, steps)
        nve["sound"] = abs(nve["drift_eV_per_atom_per_ps"]) <= limit
        report["models"][path] = {"closest_pair_A": closest, "approach": approach,
                                  "relaxations": relax, "nve": nve}
        failed |= not (all(r["sound"] for r in approach + relax) and nve["sound"])
        print_model(path, approach, relax, nve, ref_nve, limit)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(report, indent=1, default=float))
        print(f"wrote {a.json}")
    if failed:
        raise SystemExit(1)


def stiffness(r: dict) -> str:
    """'model (baseline)' stiffest modes at the relaxation's end, eV/A^2."""
    base = r["baseline_stiffest_mode_eV_per_A2"]
    return f"{r['stiffest_mode_eV_per_A2']:.0f}" + ("" if base is None else f" ({base:.0f})")


def print_model(path, approach, relax, nve, ref_nve, limit):
    print(f"\n== {path}")
    print("pair approach (0.9 x training minimum -> 0.6 A):")
    print(f"  {'pair':<6} {'from A':>7} {'rise eV':>9} {'largest drop eV':>16} sound")
    for r in approach:
        print(f"  {r['pair']:<6} {r['r_start_A']:7.3f} {r['rise_eV']:9.2f} "
              f"{r['largest_drop_eV']:16.2e} {'yes' if r['sound'] else 'NO'}")
    print("FIRE relaxations (error change = (E_app - E_ref)/N at end minus start):")
    print(f"  {'start':<34} {'steps (baseline)':>16} {'conv':>4} {'error change meV/at':>19} "
          f"{'closest / training min (O-O, O-Si, Si-Si)':>42} "
          f"{'stiffest mode eV/A^2 (baseline)':>31} sound")
    for r in relax:
        ratios = ", ".join(f"{v:.2f}" for _, v in sorted(r["closest_over_training_min"].items()))
        steps = f"{r['steps']} ({r['baseline_steps']})"
        print(f"  {r['source'][-34:]:<34} {steps:>16} {'yes' if r['converged'] else 'no':>4} "
              f"{1000 * r['error_change_eV_per_atom']:19.2f} {ratios:>42} "
              f"{stiffness(r):>31} {'yes' if r['sound'] else 'NO'}")
    d, dr = nve["drift_eV_per_atom_per_ps"], ref_nve["drift_eV_per_atom_per_ps"]
    print(f"NVE drift: {1000 * d:+.4f} meV/atom/ps (baseline {1000 * dr:+.4f}; limit "
          f"|drift| <= {1000 * limit:.4f}): {'sound' if nve['sound'] else 'NOT sound'}"
          + ("" if math.isfinite(d) else " (non-finite energies)"))


if __name__ == "__main__":
    run_main(main)
