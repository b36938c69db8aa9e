#!/usr/bin/env python
"""Give a trained model file the repulsive ZBL baseline, its network weights unchanged.

    .venv/bin/python tools/attach_baseline.py potentials/gnn_xtb.pt --dataset out/models/xtb_configs.h5

The wall of each species pair goes at the closest approach of that pair in the training
split of DATASET (the configurations the model was trained on; labels are not needed), as
`lammps-adv train` places it (docs/models.md, "Repulsive baseline"). The baseline is zero on
every one of those configurations, so the model's energies and forces on its training data
do not change: the file is what training with the baseline from the same start learns,
without the hours of relabelling. The model card (.card.json / .card.md) gets the baseline
and training_data.closest_pair_A. Rewrites MODEL in place unless -o is given.
"""
import argparse
import json
from pathlib import Path

from ase.data import atomic_numbers

from lammps_adv.io.dataset import load
from lammps_adv.io.model_card import card_paths, read_model_card, write_model_card
from lammps_adv.models.contract import load as load_model
from lammps_adv.models.export import reexport
from lammps_adv.models.repulsion import DEFAULT_SWITCH_WIDTH, baseline_hparams
from lammps_adv.training.train import training_closest_pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="TorchScript model file written by lammps-adv train")
    ap.add_argument("--dataset", required=True, help="the dataset it was trained on (.h5)")
    ap.add_argument("--width", type=float, default=DEFAULT_SWITCH_WIDTH,
                    help=f"switching width, fraction of the closest approach "
                    f"(default {DEFAULT_SWITCH_WIDTH:g})")
    ap.add_argument("-o", "--out", help="output model file (default: MODEL, rewritten)")
    a = ap.parse_args()
    species = list(load_model(a.model).species)
    closest = training_closest_pairs(load(a.dataset))
    rep = baseline_hparams(species, closest, {s: atomic_numbers[s] for s in species},
                           switch_width=a.width)
    out = reexport(a.model, a.out or a.model, repulsion=rep)
    card = read_model_card(out)
    if card is not None:
        card["training_data"]["closest_pair_A"] = closest
        card.setdefault("history_of_file", []).append(
            f"repulsive baseline attached by tools/attach_baseline.py from {a.dataset} "
            "(network weights unchanged)")
        write_model_card(out, card)
    print(f"wrote {out} ({Path(card_paths(out)[0]).name}): baseline walls "
          + json.dumps(rep["r_outer_A"]))


if __name__ == "__main__":
    main()
