"""``lammps-adv mitigate``: the study's remedies, plus uncertainty-driven attacks, compared
on equal budgets of reference labels.

For every seed a base model is trained on the base dataset. Every strategy
(``strategies.py``) then runs ``rounds`` rounds starting from that base model: pick new
configurations with the current model, label them with the reference (MPI groups in
parallel, ``labelling.py``), add them to the training split, retrain warm-started from the
current model (the validation and test splits stay those of the base dataset). Each
strategy spends exactly ``budget`` labels in all (``baseline`` none).

Every final model is measured on one fixed evaluation set that no strategy trains on:
the evaluation configurations ("thermal") plus relaxed copies of some of them ("minimum",
relaxed with the reference; ``measures.evaluation_set``). Measures in ``measures.py``.
Outputs under ``out``:

    seed<S>/base.pt (+ card)                      the base model of seed S
    seed<S>/<strategy>/round<R>.h5 / .pt (+ card)  training set and model after round R
    seed<S>/<strategy>/eval/                      probe file and recorded relaxations
    mitigate.h5                                   the summary (lammps_adv.io.h5md.write_mitigation)
"""
from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lammps_adv.calculators import get_calculator
from lammps_adv.core.adversarial import max_atom_norm
from lammps_adv.core.alignment import NONE, Alignment
from lammps_adv.core.progress import bar as progress_bar
from lammps_adv.experiments.labelling import label
from lammps_adv.experiments.measures import (MINIMA_FMAX, MINIMA_MAX_STEPS, PER_CONFIGURATION,
                                             evaluation_set, measure, reference_labels)
from lammps_adv.experiments.strategies import STRATEGIES, Sources, pick
from lammps_adv.io.configs import load_configs
from lammps_adv.io.dataset import from_frames, load
from lammps_adv.io.h5md import write_mitigation
from lammps_adv.parallel.mpi import is_root, mpi_comm, on_root
from lammps_adv.training.train import TrainSettings, train

MEASURES = ("energy_rmse_meV_per_atom", "force_rmse_eV_per_A", "abs_cos_mean",
            "abs_cos_over_random", "sign_fraction", "cos_mean", "cos_energy_correlation",
            "probe_excess", "relax_growth")
# measures after each round (round 0: the base model): the label curves of the report
CURVES = ("energy_rmse_meV_per_atom", "abs_cos_mean", "sign_fraction")


@dataclass
class MitigateSettings:
    model: str = "bp"                       # bp | gnn
    strategies: tuple = STRATEGIES
    budget: int = 16                        # reference labels per strategy, all rounds together
    rounds: int = 2
    seeds: tuple = (0, 1, 2)
    reference: str = "bks-dsf"
    epsilon: float = 0.005                  # A^2 per atom (distortion per-atom) of the steps
    distortion: str = "per-atom"
    committee: int = 3                      # uncertainty: models in the committee
    ascent_steps: int = 3                   # uncertainty: steps of the ascent
    force_weight: float = 1.0               # forces strategy
    epochs: int = 200                       # base model
    warm_epochs: int = 100                  # each retraining (warm start)
    lr: float = 2e-3
    batch_size: int = 8
    patience: int = 30
    model_kwargs: dict = field(default_factory=dict)
    probe_epsilon: float = 0.005            # measures: per-atom distortion of the probe
    probe_configs: int = 8
    relaxations: int = 8
    relax_steps: int = 10
    minima: int | None = None               # relaxed evaluation minima (None: a quarter)
    minima_fmax: float = MINIMA_FMAX        # eV/A: largest per-atom reference force at a minimum
    minima_steps: int = MINIMA_MAX_STEPS    # FIRE steps at most per minimum
    threads: int = 1

    def check(self) -> None:
        unknown = sorted(set(self.strategies) - set(STRATEGIES))
        if unknown:
            raise ValueError(f"unknown strategies {', '.join(unknown)}; known: {', '.join(STRATEGIES)}")
        if self.rounds < 1 or self.budget < self.rounds:
            raise ValueError(f"need rounds >= 1 and a budget of at least one label per round "
                             f"(budget {self.budget}, rounds {self.rounds})")
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        if "uncertainty" in self.strategies and self.committee < 2:
            raise ValueError("the uncertainty strategy needs a committee of at least 2 models")
        if self.minima is not None and self.minima < 0:
            raise ValueError(f"--minima must be >= 0, not {self.minima}")
        if not self.minima_fmax > 0 or self.minima_steps < 1:
            raise ValueError(f"relaxed minima need fmax > 0 and at least one step (fmax "
                             f"{self.minima_fmax}, steps {self.minima_steps})")

    def per_round(self) -> list[int]:
        """Labels spent in each round (the budget split as evenly as possible)."""
        q, r = divmod(self.budget, self.rounds)
        return [q + (1 if k < r else 0) for k in range(self.rounds)]


def _train(data: Path, out: Path, s: MitigateSettings, seed: int, force_weight: float = 0.0,
           warm_start: Path | None = None, info: dict | None = None, comm=None) -> Path:
    """Train (or retrain warm-started) one model on rank 0 (the others wait); returns the
    checkpoint path."""
    ts = TrainSettings(model=s.model, model_kwargs=dict(s.model_kwargs), force_weight=force_weight,
                       epochs=s.warm_epochs if warm_start else s.epochs, batch_size=s.batch_size,
                       lr=s.lr, patience=s.patience, seed=seed, threads=s.threads)
    ckpt = out.with_suffix(".ckpt")
    on_root(comm, lambda: train(data, out, ts, checkpoint=ckpt, warm_start=warm_start,
                                progress=False, log=None, card_extra=info) and None)
    return ckpt


def _starts(ds) -> list:
    return [ds.config(int(i)) for i in ds.split("train")]


def _extend(ds, labelled: list, path: Path):
    """The dataset with ``labelled`` configurations added to its training split."""
    frames = [ds.config(i) for i in range(len(ds))] + labelled
    new = from_frames(frames, ds.species, {**ds.attrs, "extended_by": "mitigate"})
    n_old = len(ds)
    new.splits = {"train": np.r_[ds.split("train"), np.arange(n_old, len(new))],
                  "validation": ds.splits.get("validation", np.zeros(0, int)),
                  "test": ds.splits.get("test", np.zeros(0, int))}
    new.save(path)
    return new


@dataclass
class _Run:
    """What every strategy of one mitigation run shares."""
    s: MitigateSettings
    comm: object
    base_ds: object
    eval_configs: list
    eval_labels: list
    reserve: list
    eval_kinds: list                # "thermal" | "minimum" per evaluation configuration
    alignment: Alignment = NONE     # of the approximate energies in every measure


def _pick(run: _Run, strategy: str, src: Sources, pt: Path, committee: list, ds, n: int, rng):
    """n configurations picked by ``strategy`` with the current model (and committee)."""
    with get_calculator(f"torchscript:{pt}", comm=run.comm) as model:
        calcs = [get_calculator(f"torchscript:{p}", comm=run.comm) for p, _ in committee]
        try:
            src.model, src.committee, src.starts = model, calcs, _starts(ds)
            return pick(strategy, src, n, rng)
        finally:
            for c in calcs:
                c.close()


def _run_strategy(run: _Run, strategy: str, i: int, j: int, seed: int, folder: Path,
                  base: tuple, committee0: list, first: dict):
    """The rounds of one strategy from the base model of seed ``seed``: returns the final
    measures, the measures after each round (round 0: the base model) and labels spent."""
    s, comm = run.s, run.comm
    sdir = folder / strategy
    sdir.mkdir(exist_ok=True)
    rng = np.random.default_rng([seed, i])
    ds, pt, ckpt = run.base_ds, *base
    committee = [(c.with_suffix(".pt"), c) for c in committee0] if strategy == "uncertainty" else []
    src = Sources(model=None, starts=[], reserve=run.reserve, epsilon=s.epsilon,
                  distortion=s.distortion, ascent_steps=s.ascent_steps,
                  alignment=run.alignment)
    src.taken = (j * s.budget) % max(len(run.reserve), 1)   # seeds see other MD
    if strategy == "baseline":                               # no labels: the base model all along
        return first, [first] * (s.rounds + 1), 0
    after, spent = [first], 0
    for r, n in enumerate(s.per_round()):
        labelled = label(_pick(run, strategy, src, pt, committee, ds, n, rng), s.reference,
                         comm, what="mitigate labels")
        spent += len(labelled)
        data_path = sdir / f"round{r + 1}.h5"
        ds = comm.bcast(_extend(ds, labelled, data_path) if is_root(comm) else None, root=0)
        info = {"strategy": strategy, "round": r + 1, "seed": seed, "labels_used": spent}
        pt = sdir / f"round{r + 1}.pt"
        ckpt = _train(data_path, pt, s, seed, warm_start=ckpt, info=info, comm=comm,
                      force_weight=s.force_weight if strategy == "forces" else 0.0)
        committee = [(sdir / f"round{r + 1}_committee{k}.pt",
                      _train(data_path, sdir / f"round{r + 1}_committee{k}.pt", s,
                             seed + 1000 * (k + 1), warm_start=c, comm=comm,
                             info={**info, "committee": k + 1}))
                     for k, (_, c) in enumerate(committee)]
        last = r + 1 == s.rounds
        after.append(measure(pt, run.eval_configs, run.eval_labels, s,
                             sdir / ("eval" if last else f"round{r + 1}_eval"), comm, full=last,
                             kinds=run.eval_kinds, alignment=run.alignment))
    return after[-1], after, spent


def mitigate(base: str | Path, evaluation: str | Path, pool: str | Path, out: str | Path,
             settings: MitigateSettings | None = None, comm=None, progress: bool = True,
             alignment: Alignment | None = None) -> Path:
    """Run every strategy for every seed; write the summary; returns its path.

    alignment: of the models' energies against the reference in every measure, probe and
    relaxation (and the adversarial strategy's A), unchanged; default none, since the
    models are trained on the reference's own energies (docs/alignment.md)."""
    s = settings or MitigateSettings()
    s.check()
    comm = comm or mpi_comm()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    eval_configs, eval_kinds = evaluation_set(load_configs(evaluation, split=None), s.reference,
                                              comm, s.minima, s.minima_fmax, s.minima_steps)
    run = _Run(s, comm, load(base), eval_configs,
               reference_labels(eval_configs, s.reference, comm), load_configs(pool, split=None),
               eval_kinds, alignment or NONE)
    n_strat = len(s.strategies)
    values = {m: np.full((n_strat, len(s.seeds)), np.nan) for m in MEASURES}
    spent = np.zeros((n_strat, len(s.seeds)), dtype=np.int64)
    curve = {m: np.full((n_strat, len(s.seeds), s.rounds + 1), np.nan) for m in CURVES}
    per_run = {m: np.full((n_strat, len(s.seeds), len(eval_configs)), np.nan)
               for m in PER_CONFIGURATION}
    relax_curve = np.full((n_strat, len(s.seeds), s.relax_steps + 1), np.nan)
    bar = progress_bar(len(s.seeds) * n_strat, "mitigate (strategy x seed)", "run", progress, comm)
    try:
        for j, seed in enumerate(s.seeds):
            folder = out / f"seed{seed}"
            folder.mkdir(exist_ok=True)
            base_pt = folder / "base.pt"
            base_ckpt = _train(Path(base), base_pt, s, seed, comm=comm, info={
                "strategy": "base", "round": 0, "seed": seed, "labels_used": 0})
            committee0 = [_train(Path(base), folder / f"committee{k}.pt", s, seed + 1000 * k,
                                 comm=comm, info={"strategy": "committee", "round": 0,
                                                  "seed": seed + 1000 * k, "labels_used": 0})
                          for k in range(1, s.committee)] if "uncertainty" in s.strategies else []
            first = measure(base_pt, eval_configs, run.eval_labels, s, folder / "base_eval", comm,
                            kinds=eval_kinds, alignment=run.alignment)
            for i, strategy in enumerate(s.strategies):
                final, after, spent[i, j] = _run_strategy(
                    run, strategy, i, j, seed, folder, (base_pt, base_ckpt), committee0, first)
                for m in MEASURES:
                    values[m][i, j] = final[m]
                for m in curve:
                    curve[m][i, j] = [a[m] for a in after]
                for m in per_run:
                    per_run[m][i, j] = final[m]
                relax_curve[i, j] = final["relax_curve"]
                bar.update(1)
    finally:
        bar.close()
    summary = out / "mitigate.h5"
    if is_root(comm):
        params = {"experiment": "mitigate", "approx_kind": s.model, "reference": s.reference,
                  "base": str(base), "evaluation": str(evaluation), "pool": str(pool),
                  "settings": json.dumps(dataclasses.asdict(s), sort_keys=True),
                  "command_line": " ".join(sys.argv), "units": "metal",
                  **run.alignment.attrs()}
        write_mitigation(summary, params, strategies=list(s.strategies), seeds=list(s.seeds),
                         labels_spent=spent, measures=values, curves=curve,
                         labels_per_round=np.r_[0, np.cumsum(s.per_round())],
                         per_run={**per_run, "relax_curve": relax_curve},
                         eval_energy_per_atom=[r["energy"] / len(r["positions"])
                                               for r in run.eval_labels],
                         eval_kind=eval_kinds,
                         eval_max_force=[max_atom_norm(r["forces"]) for r in run.eval_labels],
                         eval_n_atoms=[len(r["positions"]) for r in run.eval_labels])
    comm.Barrier()
    return summary
