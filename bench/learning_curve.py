"""Held-out accuracy of trained models and the learning curve of the Behler-Parrinello
network (docs/models.md, "Shipped models" and "Learning curve").

    .venv/bin/python bench/learning_curve.py evaluate HELDOUT.h5 MODEL.pt [MODEL.pt ...]
    .venv/bin/python bench/learning_curve.py curve DATA.h5 --heldout HELDOUT.h5 \\
        --fractions 0.25,0.5,1 [BP training options] [--full-model MODEL.pt]

The datasets come from ``lammps-adv dataset mixed`` (glasses of several sizes and quench
rates, thermal and relaxed) and ``lammps-adv dataset subset`` (lammps_adv.training.recipes).

``evaluate``: energy RMSE / MAE (meV/atom) and force RMSE (eV/A) of models on the chosen
split of a dataset, overall and per group (temperature, relaxed), through
``lammps_adv.models.contract`` (the same path as the calculator and LAMMPS).

``curve``: BP (energies only) trained with ``lammps_adv.training.train`` on growing random
subsets of the training split (validation and test splits unchanged); prints the test error
on the dataset's own test split and on the held-out set against the training-set size.
``--full-model`` takes an already trained model (e.g. the shipped one, trained with the same
settings on the whole training split; checked through its model card) as the 100 % point.

Units: eV, A; energies per atom in meV/atom, forces in eV/A.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lammps_adv.io import dataset as dsmod  # noqa: E402
from lammps_adv.training.recipes import subset  # noqa: E402


def _floats(text: str) -> list[float]:
    return [float(x) for x in str(text).split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in str(text).split(",") if x.strip()]


# ---------------------------------------------------------------------------- evaluate
def _group(source: str) -> str:
    """'n324-glass0-T1000#2' -> 'T1000'; relaxed configurations -> 'relaxed'."""
    run = source.split("#")[0]
    if "relaxed" in run:
        return "relaxed"
    return run.rsplit("-", 1)[-1] if "-T" in run else run


def evaluate_model(model_path, ds, indices, forces: bool = True) -> dict:
    """Per-configuration energy errors (eV/atom) and force errors (eV/A) of a model."""
    import torch
    from lammps_adv.models.contract import evaluate, load
    model = load(model_path)
    de, df, groups, units = [], [], [], []
    t0 = time.time()
    for i in indices:
        c = ds.config(int(i))
        if forces:
            e, f = evaluate(model, c["positions"], c["cell"], c["names"]).values()
            if c["forces"] is not None:
                df.append((f - c["forces"]).ravel())
        else:
            from lammps_adv.models.contract import periodic_input
            inp = periodic_input(model, c["positions"], c["cell"], c["names"])
            ext = torch.from_numpy(np.asarray(c["positions"])[inp.image_of] + inp.offsets)
            with torch.no_grad():
                e = float(model(ext, torch.from_numpy(inp.species[inp.image_of]),
                                torch.from_numpy(inp.edge_index), inp.n)[:inp.n].sum())
        de.append((e - c["energy"]) / len(c["positions"]))
        groups.append(_group(c["source"]))
        units.append(c["unit"])
    return {"de": np.array(de), "df": df, "groups": groups, "units": np.array(units),
            "time_s": time.time() - t0}


def summarise(r: dict, mask=None) -> dict:
    """Errors of the configurations in mask; the energy RMSE with its 95 % cluster-bootstrap
    interval over the independent units (glasses; None below MIN_UNITS: not resolved)."""
    from lammps_adv.core.statistics import MIN_UNITS, cluster_bootstrap_ci, unit_count
    de = r["de"] if mask is None else r["de"][mask]
    units = r["units"] if mask is None else r["units"][mask]
    out = {"n": int(len(de)), "e_rmse": float(np.sqrt(np.mean(de ** 2)) * 1000),
           "e_mae": float(np.mean(np.abs(de)) * 1000), "e_mean": float(np.mean(de) * 1000),
           "units": unit_count(units), "e_rmse_ci": None}
    if out["units"] >= MIN_UNITS:
        lo, hi = cluster_bootstrap_ci(lambda d: np.sqrt(np.mean(d ** 2)) * 1000, de, units=units)
        out["e_rmse_ci"] = [lo, hi]
    if r["df"]:
        dfs = r["df"] if mask is None else [d for d, m in zip(r["df"], mask) if m]
        if dfs:
            d = np.concatenate(dfs)
            out["f_rmse"] = float(np.sqrt(np.mean(d ** 2)))
    return out


def split_indices(ds, split: str) -> np.ndarray:
    return np.arange(len(ds)) if split == "all" else ds.split(split)


def run_evaluate(a) -> None:
    import torch
    torch.set_num_threads(a.threads)
    ds = dsmod.load(a.dataset)
    idx = split_indices(ds, a.split)
    print(f"held-out set {a.dataset}: {len(idx)} configurations ({a.split}), "
          f"{int(ds.natoms[idx].min())}-{int(ds.natoms[idx].max())} atoms, reference "
          f"{ds.attrs.get('reference')}")
    print("E RMSE with its 95 % cluster-bootstrap interval over the independent units (glasses;"
          " 'not resolved' below 5 units)")
    print(f"{'model':<28} {'group':<9} {'n':>3} {'E RMSE meV/at':>13} {'95 % interval':>15} "
          f"{'units':>5} {'E MAE':>7} {'E mean':>7} {'F RMSE eV/A':>11}")
    results = {}
    for m in a.models:
        r = evaluate_model(m, ds, idx, forces=not a.no_forces)
        groups = sorted(set(r["groups"]), key=lambda g: (g != "relaxed", len(g), g))
        rows = [("all", None)] + [(g, np.array([x == g for x in r["groups"]]))
                                  for g in groups]
        results[m] = {}
        for g, mask in rows:
            s = summarise(r, mask)
            results[m][g] = s
            f = f"{s['f_rmse']:.3f}" if "f_rmse" in s else "-"
            ci = "[{:.2f}, {:.2f}]".format(*s["e_rmse_ci"]) if s["e_rmse_ci"] else "not resolved"
            print(f"{Path(m).name:<28} {g:<9} {s['n']:>3} {s['e_rmse']:>13.2f} {ci:>15} "
                  f"{s['units']:>5} {s['e_mae']:>7.2f} {s['e_mean']:>7.2f} {f:>11}")
        print(f"  ({r['time_s']:.0f} s)", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1) + "\n")


# ---------------------------------------------------------------------------- curve
def run_curve(a) -> None:
    import torch
    from lammps_adv.io.files import file_sha256 as sha256
    from lammps_adv.io.model_card import card_paths
    from lammps_adv.training.train import TrainSettings, train
    torch.set_num_threads(a.threads)
    ds = dsmod.load(a.dataset)
    held = dsmod.load(a.heldout)
    hidx = split_indices(held, a.heldout_split)
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = TrainSettings(model="bp", force_weight=0.0, epochs=a.epochs, batch_size=a.batch_size,
                      lr=a.lr, schedule=a.schedule, lr_factor=a.lr_factor,
                      lr_patience=a.lr_patience, patience=a.patience, seed=a.seed,
                      max_minutes=a.max_minutes, threads=a.threads,
                      model_kwargs={"hidden": _ints(a.hidden)} if a.hidden else {})
    rows = []
    for frac in _floats(a.fractions):
        if frac >= 1 and a.full_model:
            model = Path(a.full_model)
            card = json.loads(card_paths(model)[0].read_text())
            same = {k: card["settings"][k] for k in ("epochs", "batch_size", "lr", "schedule",
                                                     "lr_factor", "lr_patience", "patience",
                                                     "seed", "force_weight")}
            want = {k: getattr(s, k) for k in same}
            if card["training_data"]["sha256"] != sha256(a.dataset) or same != want or \
                    list(card["model"]["hidden"]) != (_ints(a.hidden) or [30, 30]):
                raise SystemExit(f"{model} was not trained on {a.dataset} with these "
                                 f"settings ({same} vs {want}); leave out --full-model")
            print(f"100 %: {model} (its card: trained on {a.dataset} with these settings)")
        else:
            part = dsmod.load(a.dataset) if frac >= 1 else \
                subset(ds, frac, ["train"], a.seed + 1)
            path = out_dir / f"train_{frac:g}.h5"
            if frac < 1:
                part.save(path)
            else:
                path = Path(a.dataset)
            model = out_dir / f"bp_{frac:g}.pt"
            print(f"training on {frac:g} of the training split "
                  f"({len(part.split('train'))} configurations) -> {model}", flush=True)
            card = train(path, model, s, checkpoint=out_dir / f"bp_{frac:g}.ckpt",
                         progress=not a.quiet, log=None)
        n_train = card["training_data"]["splits"]["train"]
        r = summarise(evaluate_model(model, held, hidx, forces=False))
        rows.append({"fraction": frac, "n_train": n_train,
                     "test": card["metrics"]["test"]["energy_rmse_meV_per_atom"],
                     "heldout": r["e_rmse"], "epochs": card["metrics"]["epochs_run"],
                     "time_s": card["performance"]["training_time_s"]
                     + card["performance"]["preparation_time_s"]})
        print(f"  -> own test {rows[-1]['test']:.2f}, held-out {r['e_rmse']:.2f} meV/atom",
              flush=True)
    print(f"\nlearning curve: BP energies only, hidden {a.hidden or '30,30'}; own test split "
          f"{len(ds.split('test'))} configurations, held-out {a.heldout} {len(hidx)} "
          f"configurations ({int(held.natoms[hidx].min())}-{int(held.natoms[hidx].max())} atoms)")
    print("| fraction | training configurations | own test E RMSE (meV/atom) "
          "| held-out E RMSE (meV/atom) | epochs | time (s) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['fraction']:g} | {r['n_train']} | {r['test']:.2f} | {r['heldout']:.2f} "
              f"| {r['epochs']} | {r['time_s']:.0f} |")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1) + "\n")


# ---------------------------------------------------------------------------- CLI
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    sub = p.add_subparsers(dest="cmd", required=True)

    e = sub.add_parser("evaluate", help="energy / force errors of models on a dataset")
    e.add_argument("dataset")
    e.add_argument("models", nargs="+")
    e.add_argument("--split", default="test", help="train, validation, test or all")
    e.add_argument("--no-forces", action="store_true")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--json")

    c = sub.add_parser("curve", help="BP learning curve: error vs training-set size")
    c.add_argument("dataset")
    c.add_argument("--heldout", required=True)
    c.add_argument("--heldout-split", default="test")
    c.add_argument("--fractions", default="0.25,0.5,1")
    c.add_argument("--out-dir", default=str(REPO / "out" / "learning_curve"))
    c.add_argument("--full-model", help="model already trained on the whole training split "
                   "with these settings (checked on its card), used as the 100 %% point")
    c.add_argument("--hidden", default="")
    c.add_argument("--epochs", type=int, default=200)
    c.add_argument("--batch-size", type=int, default=8)
    c.add_argument("--lr", type=float, default=1e-3)
    c.add_argument("--schedule", default="plateau")
    c.add_argument("--lr-factor", type=float, default=0.5)
    c.add_argument("--lr-patience", type=int, default=10)
    c.add_argument("--patience", type=int, default=30)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--max-minutes", type=float)
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--quiet", action="store_true")
    c.add_argument("--json")

    a = p.parse_args(argv)
    {"evaluate": run_evaluate, "curve": run_curve}[a.cmd](a)


if __name__ == "__main__":
    main()
