"""Training of contract models on a dataset (``lammps-adv train``).

Loss per batch:   mean_b ((E_pred_b - E_ref_b) / n_b)^2  +  force_weight * mean (F_pred - F_ref)^2
(eV/atom and eV/A). With ``force_loss="relative"`` each configuration's squared force errors
are divided by (its mean squared reference force component + FORCE_FLOOR^2): rattled and hot
liquid configurations, whose forces reach tens of eV/A, then no longer drown the thermal glass
and the near-minimum configurations a relaxation ends in. Adam, a learning-rate schedule (plateau, cosine, exponential or
constant), early stopping on the validation loss (the best model is kept), reproducible
seeds (model initialisation from ``seed``, batch order from (seed, epoch)), a checkpoint
after every epoch and ``resume``, a tqdm progress bar with live metrics, and a final report
on the test split (energy RMSE in meV/atom, force RMSE in meV/A) written into a model card
next to the exported TorchScript file (``X.pt`` -> ``X.card.json`` and ``X.card.md``).

A Behler-Parrinello network trained on energies only uses a fast path: its symmetry
functions do not depend on the weights, so they are computed once per configuration.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lammps_adv import __version__
from lammps_adv.core.errors import DatasetError, TrainingError
from lammps_adv.core.progress import bar as progress_bar
from lammps_adv.io.dataset import Dataset
from lammps_adv.io.dataset import load as load_dataset
from lammps_adv.io.files import file_sha256
from lammps_adv.io.model_card import card_paths, write_model_card
from lammps_adv.lammps.structures import closest_pairs_of_set
from lammps_adv.models.contract import (PeriodicInput, energy_and_forces, has_periodic_call,
                                        load, periodic_input, species_indices)
from lammps_adv.models.export import build_model, eager_copy, export, model_from_hparams
from lammps_adv.models.repulsion import DEFAULT_SWITCH_WIDTH, baseline_hparams
from lammps_adv.models.repulsion import FORMS as REPULSION_FORMS

SCHEDULES = ("plateau", "cosine", "exponential", "constant")
FORCE_LOSSES = ("absolute", "relative")
FORCE_FLOOR = 1.0       # eV/A: below this RMS force a configuration's errors count as absolute


@dataclass
class TrainSettings:
    model: str = "bp"                       # bp | gnn
    model_kwargs: dict = field(default_factory=dict)
    force_weight: float = 0.0               # 0: energies only
    force_loss: str = "absolute"            # absolute | relative (per-configuration scale)
    epochs: int = 200
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0               # AdamW decay of the weight matrices (not biases)
    schedule: str = "plateau"
    lr_factor: float = 0.5                  # plateau / exponential decay factor
    lr_patience: int = 10                   # plateau: epochs without improvement
    min_lr: float = 1e-6
    patience: int = 30                      # early stopping on the validation loss
    seed: int = 0
    max_minutes: float | None = None        # stop (keeping the best model) after this
    threads: int | None = None
    repulsion: str = "zbl"                  # the repulsive baseline (models/repulsion.py)
    repulsion_width: float = DEFAULT_SWITCH_WIDTH
    refit_shift: bool = True                # least-squares per-species shift after training
    transfer: bool = False                  # warm start from another reference: shift first

    def check(self) -> None:
        if self.schedule not in SCHEDULES:
            raise TrainingError(f"unknown schedule {self.schedule!r}; known: {', '.join(SCHEDULES)}")
        if self.force_loss not in FORCE_LOSSES:
            raise TrainingError(f"unknown force loss {self.force_loss!r}; known: "
                                f"{', '.join(FORCE_LOSSES)}")
        if self.force_weight < 0:
            raise TrainingError(f"force weight must be >= 0, got {self.force_weight}")
        if self.epochs < 1 or self.batch_size < 1:
            raise TrainingError("epochs and batch size must be >= 1")
        if not self.lr > 0:
            raise TrainingError(f"learning rate must be > 0, got {self.lr}")
        if not self.weight_decay >= 0:
            raise TrainingError(f"weight decay must be >= 0, got {self.weight_decay}")
        if self.repulsion not in REPULSION_FORMS:
            raise TrainingError(f"unknown repulsion {self.repulsion!r}; known: "
                                f"{', '.join(REPULSION_FORMS)}")
        if not 0 < self.repulsion_width < 1:
            raise TrainingError(f"repulsion width must be in (0, 1), got "
                                f"{self.repulsion_width}")


# ---------------------------------------------------------------------------- data on the model
@dataclass
class Item:
    """One configuration prepared for a model (contract input + labels)."""
    n: int
    positions: np.ndarray
    species: np.ndarray          # [n] model species indices
    image_of: np.ndarray
    offsets: np.ndarray
    edge_index: np.ndarray
    energy: float
    forces: np.ndarray | None
    feats: torch.Tensor | None = None   # BP energy-only fast path
    base: float = 0.0                   # the model's repulsive baseline energy (eV)


def periodic_path(model) -> bool:
    """Models with ``energies_periodic`` (the graph network) train on cell atoms only; an
    exported model is called through ``forward`` here, so that the export check compares the
    two calls."""
    return has_periodic_call(model) and not isinstance(model, torch.jit.ScriptModule)


def item(model, positions, cell, names, energy, forces) -> Item:
    """One labelled configuration in the form the trainer takes (contract input + labels)."""
    inp = periodic_input(model, positions, cell, names, local_only=periodic_path(model))
    it = Item(inp.n, np.asarray(positions, dtype=np.float64), inp.species, inp.image_of,
              inp.offsets, inp.edge_index, energy, forces)
    it.base = baseline_energy(model, it)
    return it


def baseline_energy(model, it: Item) -> float:
    """The repulsive baseline's energy of one item (eV; 0 for models without one): what the
    network does not have to learn (E_ref - baseline is its target)."""
    rep = getattr(model, "repulsion", None)
    if rep is None or not rep.enabled:
        return 0.0
    ext = torch.from_numpy(it.positions[it.image_of] + it.offsets)
    with torch.no_grad():
        return float(rep(ext, torch.from_numpy(it.species[it.image_of]),
                         torch.from_numpy(it.edge_index), it.n).sum())


def prepare(model, ds: Dataset, indices) -> list[Item]:
    species_indices(model.species, ds.species)     # every species of the file is the model's
    items = []
    for i in indices:
        c = ds.config(int(i))
        names = [ds.species[k] for k in c["species"]]
        items.append(item(model, c["positions"], c["cell"], names, c["energy"], c["forces"]))
    return items


def assemble(items: list[Item]) -> tuple[PeriodicInput, torch.Tensor]:
    """One contract input for several configurations: all cell atoms first, then all
    images (``image_of`` points into the cell atoms of all items). Returns (input, batch
    [n_local]: the configuration of each cell atom)."""
    n = np.array([it.n for it in items])
    loc0 = np.concatenate([[0], np.cumsum(n)[:-1]])
    n_local = int(n.sum())
    ghosts = np.array([len(it.image_of) - it.n for it in items])
    gh0 = n_local + np.concatenate([[0], np.cumsum(ghosts)[:-1]])
    src_l, src_g, off_l, off_g, edges = [], [], [], [], []
    for b, it in enumerate(items):
        src_l.append(loc0[b] + it.image_of[:it.n])
        src_g.append(loc0[b] + it.image_of[it.n:])
        off_l.append(it.offsets[:it.n])
        off_g.append(it.offsets[it.n:])
        k = it.edge_index
        edges.append(np.where(k < it.n, loc0[b] + k, gh0[b] + k - it.n))
    inp = PeriodicInput(n_local, np.concatenate(src_l + src_g), np.concatenate(off_l + off_g),
                        np.concatenate(edges, axis=1),
                        np.concatenate([it.species for it in items]))
    return inp, torch.from_numpy(np.repeat(np.arange(len(items)), n))


def predict(model, items: list[Item], forces: bool, create_graph: bool = False):
    """Energies [B] (and forces [sum n, 3] when asked) of configurations, as tensors: the
    contract's model call (``energy_and_forces``) on all of them at once."""
    if items and items[0].feats is not None and not forces:
        feats = torch.cat([it.feats for it in items])
        sp = torch.from_numpy(np.concatenate([it.species for it in items]))
        e = model.readout(feats, sp)
        batch = torch.from_numpy(np.repeat(np.arange(len(items)), [it.n for it in items]))
        base = torch.tensor([it.base for it in items], dtype=e.dtype)
        return base.index_add(0, batch, e), None
    inp, batch = assemble(items)
    out = energy_and_forces(model, np.concatenate([it.positions for it in items]), inp,
                            periodic_path(model), forces=forces, batch=batch,
                            n_configs=len(items), create_graph=create_graph)
    return out.energy, out.forces


def _targets(items: list[Item]):
    e = torch.tensor([it.energy for it in items], dtype=torch.float64)
    n = torch.tensor([it.n for it in items], dtype=torch.float64)
    f = None
    if all(it.forces is not None for it in items):
        f = torch.from_numpy(np.concatenate([it.forces for it in items]))
    return e, n, f


def relative_force_weights(items: list[Item]) -> torch.Tensor:
    """[sum n, 1] per-atom weight of the relative force loss: 1 / (mean squared reference
    force component of the atom's configuration + FORCE_FLOOR^2), in (eV/A)^-2."""
    w = [np.full(it.n, 1.0 / (np.mean(it.forces ** 2) + FORCE_FLOOR ** 2)) for it in items]
    return torch.from_numpy(np.concatenate(w))[:, None]


def loss_terms(model, items, force_weight: float, create_graph: bool,
               force_loss: str = "absolute"):
    e_ref, n, f_ref = _targets(items)
    e, f = predict(model, items, forces=force_weight > 0, create_graph=create_graph)
    e_mse = (((e - e_ref) / n) ** 2).mean()
    loss = e_mse
    f_mse = None
    if force_weight > 0:
        sq = (f - f_ref) ** 2
        if force_loss == "relative":
            sq = sq * relative_force_weights(items)
        f_mse = sq.mean()
        loss = loss + force_weight * f_mse
    return loss, e_mse, f_mse


def metrics(model, items: list[Item], forces: bool, batch_size: int = 4) -> dict:
    """Energy RMSE / MAE (meV/atom) and, if asked and labelled, force RMSE / MAE (meV/A) and
    the relative force error (the root of the relative force loss, dimensionless)."""
    was = model.training
    model.eval()
    de, df, dfw = [], [], []
    try:
        for k in range(0, len(items), batch_size):
            chunk = items[k:k + batch_size]
            e_ref, n, f_ref = _targets(chunk)
            want_f = forces and f_ref is not None
            e, f = predict(model, chunk, forces=want_f)
            de.append(((e.detach() - e_ref) / n).numpy())
            if want_f:
                diff = f.detach() - f_ref
                df.append(diff.numpy().ravel())
                dfw.append((diff ** 2 * relative_force_weights(chunk)).numpy().ravel())
    finally:
        model.train(was)
    de = np.concatenate(de)
    out = {"n_configs": len(items),
           "energy_rmse_meV_per_atom": float(np.sqrt(np.mean(de ** 2)) * 1000),
           "energy_mae_meV_per_atom": float(np.mean(np.abs(de)) * 1000)}
    if df:
        df = np.concatenate(df)
        out["force_rmse_meV_per_A"] = float(np.sqrt(np.mean(df ** 2)) * 1000)
        out["force_mae_meV_per_A"] = float(np.mean(np.abs(df)) * 1000)
        out["force_relative_rmse"] = float(np.sqrt(np.mean(np.concatenate(dfw))))
    return out


# ---------------------------------------------------------------------------- normalisation
def fit_normalisation(model, items: list[Item], use_forces: bool = False) -> None:
    """Per-species energy shift (least squares on composition), energy scale and, for BP,
    feature mean / std per centre species. The scale is the RMS force component when
    training on forces (as NequIP does: then forces come out of the network at the right
    size), else the std of the per-atom energy residual."""
    S = len(model.species)
    counts = np.array([np.bincount(it.species, minlength=S) for it in items], dtype=float)
    e = np.array([it.energy - it.base for it in items])     # what the network learns
    shift = np.linalg.lstsq(counts, e, rcond=None)[0]
    resid = (e - counts @ shift) / counts.sum(1)
    scale = float(np.std(resid)) if len(items) > 1 else 0.0
    if use_forces and all(it.forces is not None for it in items):
        scale = float(np.sqrt(np.mean(np.concatenate([it.forces.ravel() for it in items]) ** 2)))
    with torch.no_grad():
        model.energy_shift.copy_(torch.from_numpy(shift))
        model.energy_scale.fill_(scale if scale > 1e-4 else 1e-2)
        if hasattr(model, "feature_mean"):
            feats = torch.cat([_features(model, it) for it in items])
            sp = torch.from_numpy(np.concatenate([it.species for it in items]))
            for s in range(S):
                x = feats[sp == s]
                if len(x) == 0:
                    continue
                std = x.std(0, unbiased=False) if len(x) > 1 else torch.ones_like(x[0])
                model.feature_mean[s] = x.mean(0)
                model.feature_std[s] = torch.where(std > 1e-10, std, torch.ones_like(std))


def _features(model, it: Item) -> torch.Tensor:
    if it.feats is not None:
        return it.feats
    ext = torch.from_numpy(it.positions[it.image_of] + it.offsets)
    sp = torch.from_numpy(it.species[it.image_of])
    with torch.no_grad():
        return model.features(ext, sp, torch.from_numpy(it.edge_index), it.n)


# ---------------------------------------------------------------------------- the loop
def make_optimizer(params: list, s: TrainSettings) -> torch.optim.Optimizer:
    """Adam; with a weight decay, AdamW decaying the weight matrices only. Energies alone
    leave a network's curvature free: without decay, an energy-trained BP's stiffest mode
    at a relaxed glass grew to 8-26x the reference's, and FIRE crept (docs/models.md)."""
    if s.weight_decay == 0:
        return torch.optim.Adam(params, lr=s.lr)
    groups = [{"params": [q for q in params if q.dim() > 1], "weight_decay": s.weight_decay},
              {"params": [q for q in params if q.dim() <= 1], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=s.lr)


def _scheduler(opt, s: TrainSettings):
    if s.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=s.lr_factor, patience=s.lr_patience, min_lr=s.min_lr)
    if s.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=s.epochs, eta_min=s.min_lr)
    if s.schedule == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=s.lr_factor)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0)


def check_dataset(ds: Dataset, s: TrainSettings, species=None) -> None:
    ds.check_finite()          # NaN / inf labels or geometry: name the configuration
    if s.force_weight > 0 and not ds.has_forces:
        raise DatasetError(f"dataset {ds.path} has no forces, but a force loss was asked "
                           f"(force weight {s.force_weight}); train on energies only "
                           "(--force-weight 0) or use a dataset with forces")
    for name in ("train", "validation", "test"):
        ds.split(name)
    if species is not None:
        species_indices(species, ds.species)


def load_warm_start(path: str | Path) -> dict:
    """{"hparams", "best_state"} of a training checkpoint, or of an exported model file
    (.pt, e.g. a shipped potential): the weights a warm-started training begins from."""
    if Path(path).suffix != ".pt":
        return torch.load(path, map_location="cpu", weights_only=False)
    model = eager_copy(load(path))
    return {"hparams": model.hparams, "best_state": model.state_dict()}


def default_checkpoint(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".ckpt")


def train(dataset: str | Path, out: str | Path, settings: TrainSettings | None = None,
          checkpoint: str | Path | None = None, resume: bool = False,
          progress: bool = True, write_card: bool = True, log=print,
          warm_start: str | Path | None = None, card_extra: dict | None = None) -> dict:
    """Train a model on ``dataset`` and export it to ``out`` (TorchScript) with a model card.

    warm_start: a checkpoint of an earlier training (any dataset): its best weights,
    architecture and normalisation are the starting point; optimizer, schedule and early
    stopping start afresh (``lammps-adv mitigate`` retrains this way after each round).
    card_extra: more entries for the model card (e.g. strategy, round, labels used).
    Returns the card (a dict)."""
    s = copy.deepcopy(settings) if settings is not None else TrainSettings()
    out = Path(out)
    ckpt_path = Path(checkpoint) if checkpoint else default_checkpoint(out)
    ds = load_dataset(dataset)
    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    state = None
    if resume:
        if not ckpt_path.is_file():
            raise TrainingError(f"cannot resume: no checkpoint {ckpt_path}")
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        saved = TrainSettings(**state["settings"])
        # the run continues with the saved settings; only these may be changed on resume
        saved.epochs, saved.max_minutes, saved.patience = s.epochs, s.max_minutes, s.patience
        s = saved
        if state["dataset_sha256"] != file_sha256(dataset):
            raise TrainingError(f"cannot resume: {dataset} is not the dataset the checkpoint "
                                f"{ckpt_path} was trained on")
    s.check()
    if s.transfer and warm_start is None and not resume:
        raise TrainingError("--transfer needs --warm-start (the checkpoint or model file whose "
                            "weights carry over)")
    if s.threads:
        torch.set_num_threads(int(s.threads))
    check_dataset(ds, s)

    torch.manual_seed(s.seed)
    warm = None
    if warm_start is not None and state is None:
        if not Path(warm_start).is_file():
            raise TrainingError(f"cannot warm-start: no checkpoint or model file {warm_start}")
        warm = load_warm_start(warm_start)
        kind = json.loads(warm["hparams"])["kind"]
        if kind != s.model:
            raise TrainingError(f"cannot warm-start a {s.model} model from {warm_start}: it "
                                f"holds a {kind} model")
    if state is not None:
        model = model_from_hparams(state["hparams"])
    elif warm is not None:
        model = model_from_hparams(warm["hparams"])
        model.load_state_dict(warm["best_state"] or warm["model"])
    else:
        kwargs = dict(s.model_kwargs)
        kwargs.setdefault("species", list(ds.species))
        if s.repulsion != "none" and "repulsion" not in kwargs:
            kwargs["repulsion"] = training_baseline(ds, kwargs["species"], s)
        model = build_model(s.model, **kwargs)
    check_dataset(ds, s, model.species)
    t_prep = time.time()
    items = {name: prepare(model, ds, ds.split(name)) for name in ("train", "validation", "test")}
    fast = hasattr(model, "features") and s.force_weight == 0
    if fast:   # BP on energies: the symmetry functions are fixed, compute them once
        for name in ("train", "validation"):
            for it in items[name]:
                it.feats = _features(model, it)
    if state is None and warm is None:
        fit_normalisation(model, items["train"], use_forces=s.force_weight > 0)
    if state is None and warm is not None and s.transfer:
        # another reference has another energy zero: without this the first epochs would
        # spend themselves (and the weights) on an offset of eV per atom
        refit_energy_shift(model, items["train"])
    t_prep = time.time() - t_prep

    params = [q for q in model.parameters() if q.requires_grad]
    opt = make_optimizer(params, s)
    sched = _scheduler(opt, s)
    epoch0, best, best_state, bad, history, elapsed = 0, math.inf, None, 0, [], 0.0
    n_trained = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        epoch0, best, bad = state["epoch"] + 1, state["best_val"], state["bad_epochs"]
        best_state, history = state["best_state"], state["history"]
        elapsed, n_trained = state["elapsed_s"], state["n_trained"]
    hp = json.loads(model.hparams)
    dataset_hash = state["dataset_sha256"] if state is not None else file_sha256(dataset)

    bar = progress_bar(s.epochs, f"train {hp['kind']}", "epoch", progress,
                       initial=min(epoch0, s.epochs))
    stopped = "epochs"
    train_idx = np.arange(len(items["train"]))
    t_start = time.time() - elapsed
    t_opt = state["opt_time_s"] if state is not None else 0.0
    epoch = epoch0 - 1
    if epoch0 > 0 and bad >= s.patience:
        stopped = "early stopping"
    for epoch in range(epoch0, s.epochs if stopped == "epochs" else epoch0):
        model.train()
        order = np.random.default_rng([s.seed, epoch]).permutation(train_idx)
        t0 = time.time()
        tot = 0.0
        for k in range(0, len(order), s.batch_size):
            batch = [items["train"][i] for i in order[k:k + s.batch_size]]
            opt.zero_grad(set_to_none=True)
            loss, _, _ = loss_terms(model, batch, s.force_weight, create_graph=s.force_weight > 0,
                                    force_loss=s.force_loss)
            # the weights only: the fused BP operator has no second derivatives in the
            # positions, which a force loss would otherwise also send to them
            loss.backward(inputs=params)
            opt.step()
            tot += float(loss.detach()) * len(batch)
        t_opt += time.time() - t0
        n_trained += len(order)
        val = _val_loss(model, items["validation"], s)
        if s.schedule == "plateau":
            sched.step(val["loss"])
        else:
            sched.step()
        improved = val["loss"] < best
        if improved:
            best, bad = val["loss"], 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
        rec = {"epoch": epoch, "train_loss": tot / len(order), "lr": opt.param_groups[0]["lr"],
               **{f"val_{k}": v for k, v in val.items()}}
        history.append(rec)
        elapsed = time.time() - t_start
        torch.save({"settings": dataclasses.asdict(s), "hparams": model.hparams,
                    "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "epoch": epoch, "best_val": best,
                    "best_state": best_state, "bad_epochs": bad, "history": history,
                    "elapsed_s": elapsed, "opt_time_s": t_opt, "n_trained": n_trained,
                    "dataset_sha256": dataset_hash}, ckpt_path)
        post = {"loss": f"{rec['train_loss']:.3g}",
                "val_E": f"{val['energy_rmse_meV_per_atom']:.2f}meV/at"}
        if "force_rmse_meV_per_A" in val:
            post["val_F"] = f"{val['force_rmse_meV_per_A']:.0f}meV/A"
        post["lr"] = f"{rec['lr']:.1e}"
        bar.set_postfix(post)
        bar.update(1)
        if bad >= s.patience:
            stopped = "early stopping"
            break
        if s.max_minutes is not None and elapsed > 60 * s.max_minutes:
            stopped = "time budget"
            break
    bar.close()

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    shift_delta = refit_energy_shift(model, items["train"]) if s.refit_shift else None
    best_epoch = min(history, key=lambda r: r["val_loss"])["epoch"] if history else None
    test = metrics(model, items["test"], forces=ds.has_forces)
    valm = metrics(model, items["validation"], forces=ds.has_forces)
    export(model, out)
    check = _check_export(model, out, ds, int(ds.split("test")[0]))
    card = {
        "name": out.stem, "file": out.name, "sha256": file_sha256(out),
        "size_bytes": out.stat().st_size,
        "model": {**hp, "n_parameters": int(sum(p.numel() for p in model.parameters()))},
        "contract": {"cutoff": float(model.cutoff), "species": list(model.species),
                     "receptive_field": float(model.receptive_field)},
        "training_data": {"path": str(dataset), "sha256": dataset_hash,
                          "reference": ds.attrs.get("reference"),
                          "n_configs": len(ds), "n_atoms": int(ds.natoms.sum()),
                          "splits": {k: int(len(v)) for k, v in ds.splits.items()},
                          "labels": ["energy"] + (["forces"] if ds.has_forces else [])
                          + (["stress"] if ds.has_stress else []),
                          # what the model has seen: the probe flags displaced configurations
                          # that bring a pair much closer than this
                          "closest_pair_A": seen_closest_pairs(ds, hp, warm is not None),
                          "generator": ds.attrs.get("generator")},
        "settings": {**dataclasses.asdict(s),
                     "loss": "mean((dE/atom)^2) + force_weight * mean(dF^2"
                             + (f" / (<F_ref^2>_config + {FORCE_FLOOR:g} (eV/A)^2))"
                                if s.force_loss == "relative" else ")"),
                     "trained_on": "energies and forces" if s.force_weight > 0 else "energies",
                     "optimizer": "AdamW" if s.weight_decay > 0 else "Adam"},
        "metrics": {"test": test, "validation": valm, "best_epoch": best_epoch,
                    "epochs_run": len(history), "stopped": stopped,
                    "energy_shift_refit_eV": shift_delta,
                    "export_max_abs_diff_eV": check},
        "performance": {"training_time_s": round(elapsed, 1),
                        "preparation_time_s": round(t_prep, 1),
                        "throughput_configs_per_s": round(n_trained / t_opt, 2) if t_opt else None,
                        "torch_threads": torch.get_num_threads()},
        "software": {"lammps_adv": __version__, "torch": torch.__version__,
                     "python": platform.python_version()},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "history": history,
    }
    if warm_start is not None:
        card["settings"]["warm_start"] = str(warm_start)
    card.update(card_extra or {})
    if write_card:
        write_model_card(out, card)
    if log is not None:
        msg = (f"test: energy RMSE {test['energy_rmse_meV_per_atom']:.2f} meV/atom")
        if "force_rmse_meV_per_A" in test:
            msg += f", force RMSE {test['force_rmse_meV_per_A']:.1f} meV/A"
        log(f"{msg} ({test['n_configs']} configurations); wrote {out} "
            f"and {card_paths(out)[0].name}")
    return card


def training_closest_pairs(ds: Dataset) -> dict:
    """{species pair ("O-Si"): closest distance (A)} over the training split's
    configurations, rounded to 1e-4 A (``lammps.structures.closest_pairs``)."""
    configs = (ds.config(int(i)) for i in ds.split("train"))
    pairs = closest_pairs_of_set((c["positions"], c["cell"], c["names"]) for c in configs)
    return {p: round(d, 4) for p, d in pairs.items()}


def seen_closest_pairs(ds: Dataset, hparams: dict, warm_started: bool) -> dict:
    """The closest pairs the model has seen: the training split's, and for a warm-started
    model also those of the data it was first trained on, where its baseline's wall was put
    (``repulsion.r_outer_A``)."""
    closest = training_closest_pairs(ds)
    first = ((hparams.get("repulsion") or {}).get("r_outer_A") or {}) if warm_started else {}
    return {p: min(d, first.get(p, d)) for p, d in closest.items()}


def training_baseline(ds: Dataset, species, s: TrainSettings) -> dict:
    """The repulsive baseline of a new model: its wall at each species pair's closest
    approach in the training split, atomic numbers from the species' element symbols."""
    from ase.data import atomic_numbers
    not_elements = [x for x in species if x not in atomic_numbers]
    if not_elements:
        raise TrainingError(f"species {', '.join(not_elements)} are not element symbols: the "
                            "ZBL baseline needs atomic numbers (train with --repulsion none)")
    try:
        return baseline_hparams(species, training_closest_pairs(ds),
                                {x: atomic_numbers[x] for x in species}, s.repulsion,
                                s.repulsion_width)
    except ValueError as exc:
        raise TrainingError(f"{exc} (train with --repulsion none)") from None


def refit_energy_shift(model, items: list[Item]) -> list[float]:
    """Least-squares correction of the per-species energy shift on the training split.

    Forces do not depend on the shift, so this lowers the energy error without touching them
    (useful after force-dominated training). Returns the correction per species (eV)."""
    S = len(model.species)
    e_ref, _, _ = _targets(items)
    with torch.no_grad():
        e = torch.cat([predict(model, items[k:k + 8], forces=False)[0]
                       for k in range(0, len(items), 8)])
    counts = np.array([np.bincount(it.species, minlength=S) for it in items], dtype=float)
    delta = np.linalg.lstsq(counts, (e_ref - e).numpy(), rcond=None)[0]
    with torch.no_grad():
        model.energy_shift.add_(torch.from_numpy(delta))
    return [float(x) for x in delta]


def _val_loss(model, items, s: TrainSettings) -> dict:
    m = metrics(model, items, forces=s.force_weight > 0)
    loss = (m["energy_rmse_meV_per_atom"] / 1000) ** 2
    if s.force_weight > 0:
        loss += s.force_weight * (m["force_relative_rmse"] ** 2 if s.force_loss == "relative"
                                  else (m["force_rmse_meV_per_A"] / 1000) ** 2)
    return {"loss": loss, **{k: v for k, v in m.items() if k != "n_configs"}}


def _check_export(model, path: Path, ds: Dataset, index: int) -> float:
    """|energy difference| between the eager model (as trained) and the exported one on
    the contract input of a configuration."""
    sm = load(path)
    e1, _ = predict(model, prepare(model, ds, [index]), forces=False)
    e2, _ = predict(sm, prepare(sm, ds, [index]), forces=False)
    diff = float(abs(e1.detach() - e2.detach()).max())
    if diff > 1e-6 * max(1.0, abs(float(e1.detach()[0]))):
        raise TrainingError(f"exported model {path} differs from the trained one by {diff} eV")
    return diff
