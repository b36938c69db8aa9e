"""Dataset recipes beyond ``generate``: glasses of several sizes and quench rates with
relaxed copies (the training and held-out sets of ``make models``), and seeded subsets
(the learning curve, the graph network's training set).

Seeds: size k, quench rate j use ``seed + 7919 k + 104729 j`` for their ``generate`` run;
quartz goes with the first size and quench rate. Sources are tagged ``n<atoms>[q<ps>]-``.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from lammps_adv.calculators import get_calculator
from lammps_adv.core.errors import DatasetError
from lammps_adv.io.dataset import Dataset, frame_source, from_frames
from lammps_adv.io.h5md import read_frames, read_observables, read_parameters
from lammps_adv.io.schema import DATASET_SPLITS as SPLITS
from lammps_adv.lammps.structures import SPECIES, closest_pairs
from lammps_adv.lammps.system import LammpsSystem
from lammps_adv.training.sampling import generate


def mixed_glasses(out, reference: str = "bks-dsf", sizes: Sequence[int] = (96, 192),
                  glasses: int = 1, quench_ps: Sequence[float] = (10.0,),
                  temps: Sequence[float] = (300, 1000, 2000, 3000), quartz_cells=None,
                  quartz_temps: Sequence[float] = (300, 900, 1500), frames: int = 10,
                  stride: int = 100, equil: int = 500, melt_ps: float = 5.0, relaxed: int = 0,
                  rattle: Sequence[float] = (), volumes: Sequence[float] = (),
                  split: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 1,
                  progress: bool = True) -> Dataset:
    """Glasses of every size in ``sizes`` (``glasses`` per size and quench time), NVT MD at
    ``temps`` labelled by ``reference`` (``generate``), optionally alpha-quartz, plus the
    first ``relaxed`` frames of every run minimised with the reference (fixed cell) and
    labelled; one dataset with a seeded split, saved to ``out``.

    What relaxations and probes visit beyond thermal frames: for every MD run, frame #i
    rattled by the i-th amplitude of ``rattle`` (``rattled``) and frame #j scaled affinely
    to the j-th volume ratio of ``volumes`` (e.g. 0.9, 1.1), labelled."""
    t0 = time.time()
    say = print if progress else (lambda *a, **k: None)
    frames_out: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lammps-adv-mixed-") as tmp:
        for k, n in enumerate(sizes):
            for j, q in enumerate(quench_ps):
                part = generate(Path(tmp) / f"n{n}-{j}.h5", reference=reference,
                                glass_atoms=n, n_glasses=glasses, glass_temps=temps,
                                quartz_cells=quartz_cells if k == j == 0 else None,
                                quartz_temps=quartz_temps, frames=frames, stride=stride,
                                equil=equil, seed=seed + 7919 * k + 104729 * j,
                                melt_ps=melt_ps, quench_ps=q, split=(1, 0, 0),
                                progress=progress)
                tag = f"n{n}" + (f"q{q:g}" if len(quench_ps) > 1 else "")
                for i in range(len(part)):
                    c = part.config(i)
                    if c["source"].startswith("glass"):  # glass0-T300#1 -> n96-glass0-T300#1
                        c["source"] = f"{tag}-{c['source']}"
                        c["unit"] = f"{tag}-{c['unit']}"        # glass0 -> n96-glass0
                    frames_out.append(c)
                say(f"  {n} atoms, quench {q:g} ps: {len(part)} configurations "
                    f"({time.time() - t0:.0f} s)", flush=True)
    if relaxed > 0 or rattle or volumes:
        labellers = {}             # one calculator per cell size (it keeps its LAMMPS system)
        rng = np.random.default_rng(seed)
        try:
            thermal = list(frames_out)
            for c in thermal:
                run, _, k = c["source"].rpartition("#")
                k = int(k)
                n = len(c["positions"])
                if n not in labellers and (k < relaxed or k < max(len(rattle), len(volumes))):
                    labellers[n] = get_calculator(reference)
                if k < relaxed:
                    frames_out.append(labelled_frame(c, reference, labellers[n],
                                                     f"{run}-relaxed#{k}", minimise=True))
                if k < len(rattle):
                    moved = rattled(c, rattle[k], rng)
                    if moved is not None:
                        frames_out.append(labelled_frame(moved, reference, labellers[n],
                                                         f"{run}-rattle{rattle[k]:g}#{k}"))
                if k < len(volumes):
                    f = float(volumes[k]) ** (1.0 / 3.0)
                    scaled = dict(c, positions=c["positions"] * f, cell=c["cell"] * f)
                    frames_out.append(labelled_frame(scaled, reference, labellers[n],
                                                     f"{run}-volume{volumes[k]:g}#{k}"))
        finally:
            for lab in labellers.values():
                lab.close()
        say(f"  relaxed, rattled and rescaled: {len(frames_out) - len(thermal)} "
            f"configurations ({time.time() - t0:.0f} s)", flush=True)
    gen = {"kind": "mixed glasses", "reference": reference, "sizes": list(sizes),
           "glasses_per_size": glasses, "glass_temps": list(map(float, temps)),
           "quartz_cells": list(quartz_cells) if quartz_cells else None,
           "quartz_temps": list(map(float, quartz_temps)), "frames": frames, "stride": stride,
           "equil": equil, "melt_ps": melt_ps, "quench_ps": list(map(float, quench_ps)),
           "relaxed_per_run": relaxed, "rattle_A": list(map(float, rattle)),
           "volume_ratios": list(map(float, volumes)), "seed": seed, "split": list(split),
           "seeds": "size k, quench j: seed + 7919 k + 104729 j (then as generate)",
           "ensemble": "NVT (Nose-Hoover, damping 100 steps); relaxed: LAMMPS cg, fixed cell; "
                       "rattled: frame #i + N(0, rattle_A[i]^2 / 3) per component (RMS "
                       "rattle_A[i] per atom; redrawn while a species pair comes below "
                       f"{RATTLE_MIN_PAIR} x the frame's closest); rescaled: frame #j "
                       "scaled affinely to volume_ratios[j]"}
    ds = from_frames(frames_out, SPECIES, {"reference": reference, "generator": gen},
                     split=split, seed=seed)
    ds.save(out)
    ds.path = str(out)
    return ds


RATTLE_MIN_PAIR = 0.75      # x the frame's own closest distance of each species pair
RATTLE_TRIES = 20


def rattled(frame: dict, amplitude: float, rng) -> dict | None:
    """``frame`` with every atom displaced at random, ``amplitude`` the RMS displacement per
    atom (A; Gaussian, amplitude / sqrt(3) per component). A draw that brings any species
    pair below RATTLE_MIN_PAIR x the frame's own closest distance of that pair is drawn
    again (at most RATTLE_TRIES times, then None: no copy): a pair pushed into the
    reference's repulsive core gives labels of keV per atom, which no network should be fit
    to and no relaxation or probe visits."""
    pos, cell, names = frame["positions"], frame["cell"], list(frame["names"])
    floor = {p: RATTLE_MIN_PAIR * d for p, d in closest_pairs(pos, cell, names).items()}
    for _ in range(RATTLE_TRIES):
        moved = pos + rng.normal(0.0, amplitude / np.sqrt(3.0), pos.shape)
        close = closest_pairs(moved, cell, names)
        if all(close[p] >= floor[p] for p in floor):
            return dict(frame, positions=moved)
    return None


def labelled_frame(frame: dict, potential: str, labeller, label: str,
                   minimise: bool = False) -> dict:
    """``frame`` labelled by ``labeller`` (energy, forces) and the LAMMPS virial of
    ``potential`` (stress, ASE sign); with ``minimise``, first minimised with ``potential``
    (LAMMPS cg, fixed cell; temperature then 0 K)."""
    from ase import Atoms
    atoms = Atoms(frame["names"], positions=frame["positions"], cell=frame["cell"], pbc=True)
    with LammpsSystem(atoms, potential) as system:
        system.track_stress()
        system.lmp.commands_list((["min_style cg", "minimize 0.0 1.0e-4 5000 50000"]
                                  if minimise else []) + ["run 0"])
        positions, cell = system.frame()
        stress = system.stress()
    energy, forces = labeller.evaluate(positions, cell, symbols=list(frame["names"]),
                                       label=label)
    return {"positions": positions, "cell": cell, "names": list(frame["names"]),
            "energy": energy, "forces": forces, "stress": stress,
            "temperature": 0.0 if minimise else frame.get("temperature", float("nan")),
            "source": label, "unit": frame.get("unit", "")}


def subset(ds, fraction: float, splits, seed: int):
    """A copy of ``ds`` whose ``splits`` keep a seeded random ``fraction`` of their indices
    (at least one each); configurations of no split are dropped."""
    rng = np.random.default_rng(seed)
    new = {}
    for name in SPLITS:
        idx = np.asarray(ds.splits.get(name, []), dtype=np.int64)
        if name in splits and len(idx) and fraction < 1:
            keep = max(1, int(round(fraction * len(idx))))
            idx = np.sort(rng.permutation(idx)[:keep])
        new[name] = idx
    used = np.unique(np.concatenate(list(new.values())))
    frames = [ds.config(int(i)) for i in used]
    where = {int(i): j for j, i in enumerate(used)}
    attrs = dict(ds.attrs)
    attrs["generator"] = {**(ds.attrs.get("generator") or {}),
                          "subset": {"of": str(ds.path), "fraction": fraction,
                                     "splits": list(splits), "seed": seed}}
    out = from_frames(frames, ds.species, attrs, split=(1, 0, 0), seed=seed)
    out.splits = {k: np.array([where[int(i)] for i in v], dtype=np.int64)
                  for k, v in new.items()}
    return out


def with_visits(ds: Dataset, recordings: Sequence, every: int = 1,
                label: str = "visit") -> Dataset:
    """``ds`` plus every ``every``-th stored frame of each recording in ``recordings``
    (relaxations or MD driven by a model and recorded against the reference that labelled
    ``ds``, with ``--frames-every``): what a model-driven run visits, labelled by the
    reference energy and forces the recording holds, so that the next training sees it.

    Each frame goes to the split of the configuration its run started from (the
    recording's ``source``: ``<dataset file name>#i``, as ``relax`` and ``driven`` name a
    dataset's configuration i, or a source ``ds`` holds; train when it is neither), so no
    test or validation glass leaks into training. Its unit is that configuration's (else
    the recording's ``independent_unit``), its temperature NaN (not thermal), its source
    the start's tagged with ``label`` and the step (``n96-glass0-T300-visit#1-step30``; a
    second round names itself, e.g. ``visit2``). A frame at step 0 of a run whose start
    ``ds`` holds is that start and is skipped (no label twice). Stress is dropped
    (recordings carry none)."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    split_of = {int(i): name for name in SPLITS for i in ds.splits.get(name, [])}
    where = {src: i for i, src in enumerate(ds.source)}
    if ds.path:
        where.update({frame_source(ds.path, i): i for i in range(len(ds))})
    frames = [ds.config(i) for i in range(len(ds))]
    splits = [split_of.get(i, "") for i in range(len(ds))]
    for path in recordings:
        params = read_parameters(path, texts=False)
        if params.get("reference") != ds.attrs.get("reference"):
            raise DatasetError(f"{path} was recorded against {params.get('reference')!r}, "
                               f"the dataset is labelled by {ds.attrs.get('reference')!r}")
        stored = read_frames(path)
        energy = read_observables(path)["energy_reference"][stored["record"]]
        start = where.get(str(params.get("source", "")))
        unit = ds.unit[start] if start is not None else str(params.get("independent_unit", ""))
        src = ds.source[start] if start is not None else str(params.get("source", path))
        run, _, frame = src.rpartition("#")
        tag = f"{run}-{label}#{frame}" if run else f"{src}-{label}#0"
        # the run's first frame is its start, already labelled when ds holds it
        first = 1 if start is not None and len(stored["step"]) and stored["step"][0] == 0 else 0
        for k in range(first, len(stored["step"]), every):
            frames.append({"positions": stored["position"][k], "cell": stored["box"][k],
                           "names": stored["species"], "energy": float(energy[k]),
                           "forces": stored["force_reference"][k],
                           "source": f"{tag}-step{int(stored['step'][k])}",
                           "unit": unit, "temperature": float("nan")})
            splits.append(split_of.get(start, "train"))
    attrs = dict(ds.attrs)
    attrs["generator"] = {**(ds.attrs.get("generator") or {}),
                          label: {"of": str(ds.path), "every": every,
                                  "recordings": [str(p) for p in recordings],
                                  "added": len(frames) - len(ds)}}
    out = from_frames(frames, ds.species, attrs, split=(1, 0, 0))
    out.splits = {name: np.array([i for i, s in enumerate(splits) if s == name],
                                 dtype=np.int64) for name in SPLITS}
    return out
