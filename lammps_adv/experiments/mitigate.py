"""``lammps-adv mitigate``: the study's remedies, plus uncertainty-driven attacks, compared
on equal budgets of reference labels (the protocol: docs/mitigate.md).

For every seed a base model is trained on the base set's training split. Every strategy
(``strategies.py``) then runs ``rounds`` rounds starting from that base model: pick new
configurations with the current model, label them with the reference (``labelling.py``),
add those that pass the outlier rule to the training split, retrain warm-started from the
current model. Each strategy spends exactly ``budget`` labels in all (``baseline`` none),
split over the rounds as evenly as possible (64 over 3: 22, 21, 21); no configuration is
labelled twice in a run (starts and reserve configurations are drawn without replacement,
and every label's ``config_key`` is recorded and checked). Displacements start from the
base set's training configurations; only a base set smaller than the budget (the demo's)
also uses the run's own earlier labels, each once. A strategy trained on energies
and forces (``more-md+forces``, ``adversarial+forces``) trains on exactly the labels of the
energy-only strategy it names, so the two differ only by the loss.

Every training (base models, committees, the driver, every retraining) early-stops on one
fixed validation set (``validation``; the base set's validation split otherwise), and none
refits an energy shift afterwards (``TrainSettings.refit_shift = False``): what a strategy
does to the energy zero stays in its numbers (the report gives the offset-removed RMSE
beside the raw one).

The outlier rule: a label whose reference energy per atom is more than ``outlier_energy``
eV/atom from the median of the base training split, or whose largest per-atom reference
force is above ``outlier_force`` eV/A, is recorded, counted as spent and not trained on.

Every final model is measured on one fixed evaluation set that no strategy trains on
(``measures.evaluation_set``): thermal configurations, relaxation starts, their minima
relaxed with the reference, and the end points of short NVT runs driven by one model
trained on the base set with ``driver_seed`` (not one of the seeds; the same end points for
every strategy and seed). Seeds are dealt out over the MPI ranks, one rank per seed at a
time, so a seed's numbers do not depend on the number of ranks. Outputs under ``out``:

    base_train.h5                                 training file of the base models
    driver.pt (+ card)                            the model that drives the md-end runs
    seed<S>/base.pt (+ card)                      the base model of seed S
    seed<S>/<strategy>/round<R>.h5 / .pt (+ card)  training set and model after round R
    seed<S>/<strategy>/labels.json                every label of the run: round, source,
                                                  config_key, energy, largest force, outlier
    seed<S>/<strategy>/eval/                      probe file and recorded relaxations
    mitigate.h5                                   the summary (lammps_adv.io.h5md.write_mitigation)
    timings.json                                  wall seconds per seed and strategy
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lammps_adv.calculators import get_calculator, spec_text
from lammps_adv.core.adversarial import max_atom_norm
from lammps_adv.core.alignment import NONE, Alignment
from lammps_adv.core.configuration import Configuration
from lammps_adv.core.progress import bar as progress_bar
from lammps_adv.experiments.labelling import label
from lammps_adv.experiments.measures import (KINDS, MINIMA_FMAX, MINIMA_MAX_STEPS,
                                             PER_CONFIGURATION, evaluation_set, md_end_points,
                                             measure, minima_count, reference_labels, spread)
from lammps_adv.experiments.strategies import (FORCE_TRAINED, STRATEGIES, Sources, canonical,
                                               key_of, pick)
from lammps_adv.io.configs import load_configs
from lammps_adv.io.dataset import from_frames, load
from lammps_adv.io.h5md import write_mitigation
from lammps_adv.parallel.mpi import is_root, mpi_comm, on_root
from lammps_adv.parallel.tasks import split_tasks
from lammps_adv.training.train import TrainSettings, train

MEASURES = ("energy_rmse_meV_per_atom", "energy_rmse_offset_removed_meV_per_atom",
            "force_rmse_eV_per_A", "abs_cos_mean", "abs_cos_over_random", "sign_fraction",
            "cos_mean", "cos_energy_correlation", "probe_excess", "relax_growth")
# measures after each round (round 0: the base model): the label curves of the report
CURVES = ("energy_rmse_meV_per_atom", "energy_rmse_offset_removed_meV_per_atom",
          "abs_cos_mean", "sign_fraction")


@dataclass
class MitigateSettings:
    model: str = "bp"                       # bp | gnn
    strategies: tuple = STRATEGIES
    budget: int = 64                        # reference labels per strategy, all rounds together
    rounds: int = 3
    seeds: tuple = (0, 1, 2, 3, 4, 5)
    reference: object = "bks-dsf"           # a calculator spec, Calculator or ASE calculator
    epsilon: float = 0.005                  # A^2 per atom (distortion per-atom) of the steps
    distortion: str = "per-atom"
    committee: int = 3                      # uncertainty: models in the committee
    ascent_steps: int = 3                   # uncertainty: steps of the ascent
    # +forces strategies: loss mean((dE/N)^2) + force_weight mean(dF^2), eV and A
    force_weight: float = 1e-3
    epochs: int = 200                       # base model
    warm_epochs: int = 100                  # each retraining on energies (warm start)
    force_epochs: int | None = None         # each retraining on energies + forces (None: warm_epochs)
    lr: float = 2e-3
    batch_size: int = 8
    patience: int = 30
    model_kwargs: dict = field(default_factory=dict)
    probe_epsilon: float = 0.005            # measures: per-atom distortion of the probe
    probe_configs: int = 8
    relaxations: int = 8
    relax_steps: int = 10
    minima: int | None = None               # relaxation starts / relaxed minima (None: a quarter)
    minima_fmax: float = MINIMA_FMAX        # eV/A: largest per-atom reference force at a minimum
    minima_steps: int = MINIMA_MAX_STEPS    # FIRE steps at most per minimum
    md_ends: int | None = None              # model-driven NVT end points (None: as many as minima)
    md_temperature: float = 1500.0          # K
    md_steps: int = 300                     # steps of 1 fs
    driver_seed: int = 99                   # the model driving the md-end runs
    outlier_energy: float = 0.5             # eV/atom from the base set's median: not trained on
    outlier_force: float = 30.0             # eV/A, largest per-atom reference force: not trained on
    threads: int = 1

    def check(self) -> None:
        self.strategies = canonical(self.strategies)
        if self.rounds < 1 or self.budget < self.rounds:
            raise ValueError(f"need rounds >= 1 and a budget of at least one label per round "
                             f"(budget {self.budget}, rounds {self.rounds})")
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {', '.join(map(str, self.seeds))}")
        if self.md_ends != 0 and self.driver_seed in self.seeds:
            raise ValueError(f"the driver seed {self.driver_seed} is one of the seeds: the "
                             "md-end runs need a model of their own (--driver-seed)")
        if "uncertainty" in self.strategies and self.committee < 2:
            raise ValueError("the uncertainty strategy needs a committee of at least 2 models")
        if self.minima is not None and self.minima < 0:
            raise ValueError(f"--minima must be >= 0, not {self.minima}")
        if self.md_ends is not None and self.md_ends < 0:
            raise ValueError(f"--md-ends must be >= 0, not {self.md_ends}")
        if not self.minima_fmax > 0 or self.minima_steps < 1:
            raise ValueError(f"relaxed minima need fmax > 0 and at least one step (fmax "
                             f"{self.minima_fmax}, steps {self.minima_steps})")
        if not (self.outlier_energy > 0 and self.outlier_force > 0):
            raise ValueError(f"outlier thresholds must be > 0 (energy {self.outlier_energy} "
                             f"eV/atom, force {self.outlier_force} eV/A)")
        if self.force_weight <= 0 and set(FORCE_TRAINED) & set(self.strategies):
            raise ValueError(f"strategies trained on forces need --force-weight > 0, not "
                             f"{self.force_weight}")

    def per_round(self) -> list[int]:
        """Labels spent in each round (the budget split as evenly as possible)."""
        q, r = divmod(self.budget, self.rounds)
        return [q + (1 if k < r else 0) for k in range(self.rounds)]


def outlier(c: dict, median_energy: float, s: MitigateSettings) -> str:
    """Why the label ``c`` is not trained on ('' when it is): its energy per atom further
    than ``outlier_energy`` from the base set's median, or a per-atom force above
    ``outlier_force``."""
    e = c["energy"] / len(c["positions"])
    f = max_atom_norm(c["forces"])
    if abs(e - median_energy) > s.outlier_energy:
        return (f"energy {e:.4f} eV/atom is {e - median_energy:+.3f} from the base median "
                f"(limit {s.outlier_energy:g})")
    if f > s.outlier_force:
        return f"largest force {f:.3g} eV/A (limit {s.outlier_force:g})"
    return ""


def _train(data: Path, out: Path, s: MitigateSettings, seed: int, force_weight: float = 0.0,
           warm_start: Path | None = None, info: dict | None = None, comm=None) -> Path:
    """Train (or retrain warm-started) one model on rank 0 of ``comm`` (the others wait),
    early-stopping on the file's validation split, no shift refit; returns the checkpoint."""
    if warm_start is None:
        epochs = s.epochs
    else:
        epochs = (s.force_epochs or s.warm_epochs) if force_weight > 0 else s.warm_epochs
    ts = TrainSettings(model=s.model, model_kwargs=dict(s.model_kwargs), force_weight=force_weight,
                       epochs=epochs, batch_size=s.batch_size, lr=s.lr, patience=s.patience,
                       seed=seed, threads=s.threads, refit_shift=False)
    ckpt = out.with_suffix(".ckpt")
    on_root(comm, lambda: train(data, out, ts, checkpoint=ckpt, warm_start=warm_start,
                                progress=False, log=None, card_extra=info) and None)
    return ckpt


def training_file(base_ds, validation: list, added: list, path: Path):
    """The training file of one model: the base set's training split plus ``added`` labels
    (split "train"), the validation configurations (split "validation") and the base set's
    test split ("test"; the validation configurations when it has none), written on the
    caller's rank."""
    train_part = [base_ds.config(int(i)) for i in base_ds.split("train")] + list(added)
    test_part = [base_ds.config(int(i)) for i in base_ds.splits.get("test", [])]
    n_tr, n_te = len(train_part), len(test_part)
    ds = from_frames(train_part + test_part + list(validation), base_ds.species,
                     {**base_ds.attrs, "extended_by": "mitigate"}, split=(1, 0, 0))
    val = np.arange(n_tr + n_te, len(ds))
    ds.splits = {"train": np.arange(n_tr), "validation": val,
                 "test": np.arange(n_tr, n_tr + n_te) if n_te else val}
    ds.save(path)
    return ds


def _check_reference(ds, reference, what: str) -> None:
    labelled, name = ds.attrs.get("reference"), spec_text(reference)
    if labelled is not None and labelled != name:
        raise ValueError(f"the {what} {ds.path} is labelled by {labelled}, not by the "
                         f"reference {name}")


def _validation_frames(validation, base_ds, reference: str) -> list:
    """The fixed validation set: every configuration of the file ``validation``, else the
    base set's validation split."""
    if validation is None:
        return [base_ds.config(int(i)) for i in base_ds.split("validation")]
    vds = load(validation)
    _check_reference(vds, reference, "validation set")
    if vds.forces is None:
        raise ValueError(f"the validation set {validation} has no forces")
    return [vds.config(i) for i in range(len(vds))]


def _labelled_starts(ds) -> list:
    """The base set's training configurations as labels (the starts of the displacements)."""
    return [ds.config(int(i)) for i in ds.split("train")]


@dataclass
class _Run:
    """What every strategy of one mitigation run shares."""
    s: MitigateSettings
    out: Path
    base_ds: object
    train0: Path                    # training file of the base models
    validation: list                # the fixed validation configurations
    eval_configs: list
    eval_labels: list
    eval_kinds: list                # measures.KINDS, one per evaluation configuration
    reserve: list                   # the pool (more-md)
    starts: list                    # labelled base training configurations
    seen: set                       # config_key of base, validation and evaluation sets
    median_energy: float            # eV/atom, base training split
    alignment: Alignment = NONE     # of the approximate energies in every measure


def _pick(run: _Run, strategy: str, src: Sources, pt: Path, committee: list, n: int, rng,
          comm):
    """n configurations picked by ``strategy`` with the current model (and committee)."""
    with get_calculator(f"torchscript:{pt}", comm=comm) as model:
        calcs = [get_calculator(f"torchscript:{p}", comm=comm) for p, _ in committee]
        try:
            src.model, src.committee = model, calcs
            return pick(strategy, src, n, rng)
        finally:
            for c in calcs:
                c.close()


def _run_strategy(run: _Run, strategy: str, seed: int, folder: Path, base: tuple,
                  committee0: list, first: dict, pool_order, picks: dict, comm):
    """The rounds of one strategy from the base model of seed ``seed``: returns the final
    measures, the measures after each round (round 0: the base model) and the record of
    every label spent."""
    s = run.s
    if strategy == "baseline":                               # no labels: the base model all along
        return first, [first] * (s.rounds + 1), []
    sdir = folder / strategy
    sdir.mkdir(exist_ok=True)
    partner = FORCE_TRAINED.get(strategy)
    replay = picks.get(partner)             # the labels of the energy-only partner, per round
    # seeded by the picking rule, so a strategy's draws do not depend on which others run
    rng = np.random.default_rng([seed, STRATEGIES.index(partner or strategy)])
    pt, ckpt = base
    committee = [(c.with_suffix(".pt"), c) for c in committee0] if strategy == "uncertainty" else []
    src = Sources(model=None, starts=list(run.starts), reserve=run.reserve, epsilon=s.epsilon,
                  distortion=s.distortion, ascent_steps=s.ascent_steps,
                  alignment=run.alignment, order=pool_order, seen=set(run.seen))
    force_weight = s.force_weight if partner else 0.0
    after, records, trained, keys = [first], [], [], set()
    for r, n in enumerate(s.per_round()):
        if replay is not None:
            labelled = replay[r]
        else:
            labelled = label(_pick(run, strategy, src, pt, committee, n, rng, comm),
                             s.reference, comm, what="mitigate labels")
        picks.setdefault(strategy, []).append(labelled)
        for c in labelled:
            key = key_of(c)
            why = outlier(c, run.median_energy, s)
            records.append({"round": r + 1, "source": c["source"], "config_key": key,
                            "energy_per_atom_eV": c["energy"] / len(c["positions"]),
                            "max_force_eV_per_A": max_atom_norm(c["forces"]),
                            "duplicate": key in run.seen or key in keys, "outlier": why})
            keys.add(key)
            if not why:
                trained.append(c)
                src.starts.append(c)        # a start once the base set's are used up
        data_path = sdir / f"round{r + 1}.h5"
        if is_root(comm):
            training_file(run.base_ds, run.validation, trained, data_path)
        comm.Barrier()
        info = {"strategy": strategy, "round": r + 1, "seed": seed,
                "labels_used": len(records), "labels_trained_on": len(trained)}
        pt = sdir / f"round{r + 1}.pt"
        ckpt = _train(data_path, pt, s, seed, warm_start=ckpt, info=info, comm=comm,
                      force_weight=force_weight)
        committee = [(sdir / f"round{r + 1}_committee{k}.pt",
                      _train(data_path, sdir / f"round{r + 1}_committee{k}.pt", s,
                             seed + 1000 * (k + 1), warm_start=c, comm=comm,
                             info={**info, "committee": k + 1}))
                     for k, (_, c) in enumerate(committee)]
        last = r + 1 == s.rounds
        after.append(measure(pt, run.eval_configs, run.eval_labels, s,
                             sdir / ("eval" if last else f"round{r + 1}_eval"), comm, full=last,
                             kinds=run.eval_kinds, alignment=run.alignment))
    if is_root(comm):
        (sdir / "labels.json").write_text(json.dumps(records, indent=1) + "\n")
    return after[-1], after, records


def _run_seed(run: _Run, j: int, comm, bar) -> dict:
    """Every strategy of seed ``s.seeds[j]`` on ``comm``: {strategy: (final, after,
    records)} and the wall seconds of each."""
    s = run.s
    seed = s.seeds[j]
    t0 = time.perf_counter()
    folder = run.out / f"seed{seed}"
    folder.mkdir(exist_ok=True)
    base_pt = folder / "base.pt"
    base_ckpt = _train(run.train0, base_pt, s, seed, comm=comm, info={
        "strategy": "base", "round": 0, "seed": seed, "labels_used": 0})
    committee0 = [_train(run.train0, folder / f"committee{k}.pt", s, seed + 1000 * k,
                         comm=comm, info={"strategy": "committee", "round": 0,
                                          "seed": seed + 1000 * k, "labels_used": 0})
                  for k in range(1, s.committee)] if "uncertainty" in s.strategies else []
    first = measure(base_pt, run.eval_configs, run.eval_labels, s, folder / "base_eval", comm,
                    kinds=run.eval_kinds, alignment=run.alignment)
    seconds = {"base": time.perf_counter() - t0}
    # the pool in one seeded order per seed: more-md (and its +forces twin) take it in turn
    pool_order = np.random.default_rng([seed, len(STRATEGIES)]).permutation(len(run.reserve))
    picks: dict = {}
    out = {}
    for strategy in s.strategies:
        t1 = time.perf_counter()
        out[strategy] = _run_strategy(run, strategy, seed, folder, (base_pt, base_ckpt),
                                      committee0, first, pool_order, picks, comm)
        seconds[strategy] = time.perf_counter() - t1
        bar.update(1)
    return {"runs": out, "seconds": seconds}


def _evaluation(evaluation, s: MitigateSettings, train0: Path, out: Path, comm):
    """The fixed evaluation set: configurations, reference labels and kinds (thermal,
    relax-start, minimum; md-end after training the driver model)."""
    file_configs = load_configs(evaluation, split=None)
    configs, kinds = evaluation_set(file_configs, s.reference, comm, s.minima, s.minima_fmax,
                                    s.minima_steps)
    labels = reference_labels(configs, s.reference, comm)
    k = minima_count(len(file_configs), s.minima) if s.md_ends is None else s.md_ends
    if k > len(file_configs):
        raise ValueError(f"--md-ends must be between 0 and the {len(file_configs)} "
                         f"evaluation configurations, not {k}")
    if k:
        driver = out / "driver.pt"
        _train(train0, driver, s, s.driver_seed, comm=comm, info={
            "strategy": "driver", "round": 0, "seed": s.driver_seed, "labels_used": 0})
        starts = [file_configs[int(i)] for i in spread(len(file_configs), k)]
        ends = md_end_points(starts, f"torchscript:{driver}", s.reference, comm,
                             s.md_temperature, s.md_steps, seed=s.driver_seed)
        configs += [Configuration(e["positions"], e["cell"], e["names"], e["source"], c.unit)
                    for e, c in zip(ends, starts)]
        labels += ends
        kinds += [KINDS[3]] * len(ends)
    return configs, labels, kinds


def mitigate(base: str | Path, evaluation: str | Path, pool: str | Path, out: str | Path,
             settings: MitigateSettings | None = None, comm=None, progress: bool = True,
             alignment: Alignment | None = None, validation: str | Path | None = None) -> Path:
    """Run every strategy for every seed; write the summary; returns its path.

    validation: the fixed validation set every training early-stops on (default: the base
    set's validation split). alignment: of the models' energies against the reference in
    every measure, probe and relaxation (and the adversarial strategy's A), unchanged;
    default none, since the models are trained on the reference's own energies
    (docs/alignment.md)."""
    s = settings or MitigateSettings()
    s.check()
    comm = comm or mpi_comm()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base_ds = load(base)
    _check_reference(base_ds, s.reference, "base set")
    val_frames = _validation_frames(validation, base_ds, s.reference)
    reserve = load_configs(pool, split=None)
    if len(reserve) < s.budget and {"more-md", "more-md+forces"} & set(s.strategies):
        raise ValueError(f"the pool {pool} holds {len(reserve)} configurations, fewer than "
                         f"the budget of {s.budget} labels (generate a larger pool)")
    train0 = out / "base_train.h5"
    if is_root(comm):
        training_file(base_ds, val_frames, [], train0)
    comm.Barrier()
    eval_configs, eval_labels, eval_kinds = _evaluation(evaluation, s, train0, out, comm)
    starts = _labelled_starts(base_ds)
    seen = {key_of(c) for c in [base_ds.config(i) for i in range(len(base_ds))]
            + val_frames + eval_labels}
    run = _Run(s, out, base_ds, train0, val_frames, eval_configs, eval_labels, eval_kinds,
               reserve, starts, seen,
               float(np.median([c["energy"] / len(c["positions"]) for c in starts])),
               alignment or NONE)
    sub, mine, _ = split_tasks(comm, len(s.seeds))
    bar = progress_bar(len(mine) * len(s.strategies), "mitigate (strategy x seed, rank 0)",
                       "run", progress, comm)
    try:
        done = {j: _run_seed(run, j, sub, bar) for j in mine}
    finally:
        bar.close()
        sub.Free()
    merged = {k: v for part in comm.allgather(done) for k, v in part.items()}
    summary = out / "mitigate.h5"
    if is_root(comm):
        _write_summary(summary, run, merged, base, evaluation, pool, validation)
        (out / "timings.json").write_text(json.dumps(
            {f"seed{s.seeds[j]}": merged[j]["seconds"] for j in sorted(merged)}, indent=1))
    comm.Barrier()
    return summary


def _write_summary(path: Path, run: _Run, merged: dict, base, evaluation, pool,
                   validation) -> None:
    s = run.s
    n_strat, n_seeds, n_eval = len(s.strategies), len(s.seeds), len(run.eval_configs)
    values = {m: np.full((n_strat, n_seeds), np.nan) for m in MEASURES}
    curve = {m: np.full((n_strat, n_seeds, s.rounds + 1), np.nan) for m in CURVES}
    per_run = {m: np.full((n_strat, n_seeds, n_eval), np.nan) for m in PER_CONFIGURATION}
    relax_curve = np.full((n_strat, n_seeds, s.relax_steps + 1), np.nan)
    spent, dups, outliers = (np.zeros((n_strat, n_seeds), dtype=np.int64) for _ in range(3))
    keys = np.full((n_strat, n_seeds, s.budget), "", dtype=object)
    flags = np.zeros((n_strat, n_seeds, s.budget), dtype=np.int64)
    for j in range(n_seeds):
        for i, strategy in enumerate(s.strategies):
            final, after, records = merged[j]["runs"][strategy]
            for m in MEASURES:
                values[m][i, j] = final[m]
            for m in CURVES:
                curve[m][i, j] = [a[m] for a in after]
            for m in PER_CONFIGURATION:
                per_run[m][i, j] = final[m]
            relax_curve[i, j] = final["relax_curve"]
            spent[i, j] = len(records)
            dups[i, j] = sum(r["duplicate"] for r in records)
            outliers[i, j] = sum(bool(r["outlier"]) for r in records)
            keys[i, j, :len(records)] = [r["config_key"] for r in records]
            flags[i, j, :len(records)] = [bool(r["outlier"]) for r in records]
    params = {"experiment": "mitigate", "approx_kind": s.model,
              "reference": spec_text(s.reference), "base": str(base),
              "evaluation": str(evaluation), "pool": str(pool),
              "validation": str(validation) if validation is not None
              else "the base set's validation split",
              "settings": json.dumps(dataclasses.asdict(dataclasses.replace(
                  s, reference=spec_text(s.reference))), sort_keys=True),
              "command_line": " ".join(sys.argv), "units": "metal", **run.alignment.attrs()}
    write_mitigation(path, params, strategies=list(s.strategies), seeds=list(s.seeds),
                     labels_spent=spent, measures=values, curves=curve,
                     labels_per_round=np.r_[0, np.cumsum(s.per_round())],
                     per_run={**per_run, "relax_curve": relax_curve},
                     eval_energy_per_atom=[r["energy"] / len(r["positions"])
                                           for r in run.eval_labels],
                     eval_kind=run.eval_kinds,
                     eval_max_force=[max_atom_norm(r["forces"]) for r in run.eval_labels],
                     eval_n_atoms=[len(r["positions"]) for r in run.eval_labels],
                     duplicate_labels=dups, outlier_labels=outliers, label_key=keys,
                     label_outlier=flags)
