"""Probe: model error along the adversarial direction vs along random directions.

For each configuration R0 both models are evaluated, giving the energy error and A(R0).
The approximate energy is first aligned (lammps_adv.core.alignment): with an ``alignment``
given (fitted on an independent set, read from an earlier result, or shifts from the user)
unchanged; otherwise per-species shifts fitted on all the configurations given (``align``
"per-species", recorded as self-fitted) or none. Then for each distortion epsilon the
configuration is moved along A, and by the same amount along ``n_random`` seeded random
directions, and both models are evaluated again.

Distortion: ``total`` (the study's convention) means sum_i |dr_i|^2 = epsilon (A^2) for the
whole cell, so the same epsilon moves the atoms of a small cell much more; ``per-atom``
means epsilon per atom (sum_i |dr_i|^2 = N epsilon), comparable across cell sizes.

Along A: ``ascent_steps`` K steps of projected gradient ascent on (E_acc - E_app)^2 inside
the ball sum_i |dr_i|^2 <= epsilon. Each step moves 2 sqrt(epsilon) / K along the
normalised A of the current configuration (re-evaluated) and projects back onto the ball;
K = 1 is the one-shot step sqrt(epsilon) A/|A|.

Per configuration, cos(theta) is stored with its decomposition (core.adversarial:
cos = energy_error_sign * cos_force_error, |cos|, |F_app - F_acc| and its ratio to |F_app|)
and the |cos| a direction without information would have: sqrt(2 / (pi 3N)) and the mean
|cos(random direction, F_app)| over this probe's own random directions.

Every displaced configuration also gets its largest single-atom displacement and its
closest pair per species pair (O-O, O-Si, Si-Si; periodic images count), looked for up to
the largest threshold below (inf: no pair that close). It is flagged,
and the report keeps it out of every mean and shows it apart, when a species pair came
closer than its threshold, or when |E_acc - E_app| exceeds ``FLAG_ERROR_EV_PER_ATOM``
(1 eV/atom; also a non-finite error): both models are then outside what they were made
for. Threshold of a species pair: ``CLOSEST_PAIR_FACTOR`` (0.9) x its closest pair in the
approximate model's training data (the model card's training_data.closest_pair_A); for
models without one (catalogue potentials, GFN-xTB, stored labels, older cards) 0.9 x its
closest pair over all the undisplaced probe configurations. /parameters
closest_pair_threshold_source says which.

HDF5 layout (besides /h5md): see ``lammps_adv.io.h5md.write_probe``; the /parameters
attributes are ``lammps_adv.io.schema.PROBE_PARAMETERS``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from lammps_adv.calculators import get_calculator, spec_text
from lammps_adv.core import adversarial
from lammps_adv.core.alignment import NONE, Alignment, check_fit, check_mode, fit
from lammps_adv.core.configuration import Configuration
from lammps_adv.core.progress import bar as progress_bar
from lammps_adv.io.files import check_writable
from lammps_adv.io.h5md import write_probe
from lammps_adv.io.model_card import card_closest_pairs, card_of_spec
from lammps_adv.lammps.structures import (CLOSEST_PAIR_CUTOFF, closest_pairs,
                                          closest_pairs_of_set, species_pairs)
from lammps_adv.parallel.mpi import mpi_comm
from lammps_adv.parallel.tasks import split_tasks

DEFAULT_EPSILONS = (0.0, 0.1, 0.3, 0.5)
# per configuration: cos(theta) and its decomposition (lammps_adv.core.adversarial)
DECOMPOSITION = ("cos_adversarial", "abs_cos_adversarial", "energy_error_sign",
                 "cos_force_error", "force_error_ratio", "force_error_norm")
CLOSEST_PAIR_FACTOR = 0.9    # flagged below this times the closest pair seen (per species pair)
FLAG_ERROR_EV_PER_ATOM = 1.0  # flagged above this |E_acc - E_app| per atom (eV)


def probe(configs, approx: str, reference: str, out: str | Path | None = "probe.h5",
          epsilons=DEFAULT_EPSILONS, n_random: int = 5, seed: int = 0,
          sampling: str = "given configurations", ranks_per_task: int = 1, comm=None,
          progress: bool = True, align: str = "per-species", distortion: str = "total",
          ascent_steps: int = 1,
          alignment: Alignment | None = None) -> Path | dict | None:
    """Run the probe over ``configs`` [(positions, cell, names, source)]; write ``out`` and
    return its path, or with ``out=None`` write nothing and return on rank 0 what
    ``read_probe`` would read from the file (the /probe arrays by name) plus
    ``"parameters"`` (the file's /parameters), None on the other ranks.

    sampling: how the configurations were made (e.g. "MD driven by the reference"), kept
    in /parameters and used to label the cos(theta) statistics. Under MPI the
    configurations are spread over groups of ``ranks_per_task`` ranks; the numbers do not
    depend on the number of ranks. alignment: applied unchanged when given (no refit);
    else ``align`` decides."""
    comm = comm or mpi_comm()
    configs = [Configuration(*c) for c in configs]
    eps = _check(epsilons, align, distortion, ascent_steps, n_random)
    fitted = alignment is None and align == "per-species"
    if fitted:                           # a fit with no degree of freedom fails before any work
        check_fit([c.names for c in configs])
    out = Path(out) if out is not None else None
    if comm.Get_rank() == 0 and out is not None:
        check_writable(out, "probe file")      # unwritable output fails before any work
    c_n, e_n = len(configs), len(eps)
    pairs = sorted(set().union(*(species_pairs(c.names) for c in configs)))
    # models may be given as specs, Calculators or ASE calculator instances
    approx_spec, reference_spec = spec_text(approx), spec_text(reference)
    threshold, threshold_source = closest_pair_threshold(approx_spec, configs, pairs)
    # a displaced configuration's pairs are looked for only as far as a flag can reach
    # (bench/bench_analysis.py: 3.9x faster than a 5 A neighbour list at 3000 atoms)
    reach = float(threshold.max()) if threshold.max() > 0 else CLOSEST_PAIR_CUTOFF
    res = {**{k: np.zeros(c_n) for k in DECOMPOSITION}, "energy_error": np.zeros(c_n),
           "random_abs_cos_measured": np.zeros(c_n),
           "energy_reference": np.zeros(c_n), "energy_approx_raw": np.zeros(c_n),
           "error_adversarial": np.zeros((c_n, e_n)),
           "max_displacement_adversarial": np.zeros((c_n, e_n)),
           "min_distance_adversarial": np.zeros((c_n, e_n)),
           "error_random": np.zeros((c_n, n_random, e_n)),
           "max_displacement_random": np.zeros((c_n, n_random, e_n)),
           "min_distance_random": np.zeros((c_n, n_random, e_n)),
           "closest_pair_adversarial": np.zeros((c_n, e_n, len(pairs))),
           "closest_pair_random": np.zeros((c_n, n_random, e_n, len(pairs)))}
    sub, mine, n_groups = split_tasks(comm, c_n, ranks_per_task)
    leader = comm.Get_rank() % ranks_per_task == 0
    bar = progress_bar(c_n * (1 + e_n * (ascent_steps + n_random)), "probe evaluations",
                       "eval", progress, comm)
    models = []
    try:
        models = [get_calculator(approx, comm=sub), get_calculator(reference, comm=sub)]

        def evaluate(x, cell, names, label, offset=0.0):
            (e_app, f_app), (e_acc, f_acc) = (
                m.evaluate(x, cell, symbols=names, label=label) for m in models)
            bar.update(n_groups)
            return e_app + offset, f_app, e_acc, f_acc

        # pass 1: every configuration as given (a self-fitted alignment uses all of them)
        first = {}
        for c in mine:
            pos, cell, names, source = configs[c][:4]
            first[c] = evaluate(pos, cell, names, f"the configuration {source}")
            res["energy_approx_raw"][c], res["energy_reference"][c] = first[c][0], first[c][2]
        raw, ref = (comm.allreduce(res[k] if leader else np.zeros(c_n))
                    for k in ("energy_approx_raw", "energy_reference"))
        if alignment is None:
            alignment = fit([c.names for c in configs], raw, ref) if fitted else NONE
        # pass 2: the displacements, with aligned energies
        for c in mine:
            pos, cell, names, source = configs[c][:4]
            offset = alignment.offset(names)
            e_app, f_app, e_acc, f_acc = first[c]
            base = (e_app + offset, f_app, e_acc, f_acc)
            res["energy_error"][c] = e_acc - base[0]
            parts = adversarial.decomposition(base[0], e_acc, f_app, f_acc)
            for key in DECOMPOSITION:
                res[key][c] = parts[key]
            randoms = [adversarial.random_direction(pos.shape, seed=seed + 1000 * c + r)
                       for r in range(n_random)]
            res["random_abs_cos_measured"][c] = np.mean([
                abs(adversarial.cosine(v, f_app)) for v in randoms]) if n_random else np.nan

            def at(x, what):
                return evaluate(x, cell, names, f"{what} of {source}", offset)

            for k, e in enumerate(eps):
                total = adversarial.total_distortion(e, len(pos), distortion)
                x, (ea, _, er, _), done = adversarial.ascend(
                    lambda x, j: at(x, f"ascent step {j + 1} along A (epsilon {e:g} A^2)"),
                    lambda s: adversarial.adversarial_direction(s[0], s[2], s[1], s[3]),
                    pos, base, total, ascent_steps)
                bar.update(n_groups * (ascent_steps - done))
                _store(res, "adversarial", (c, k), er - ea, x, pos, cell, names, pairs, reach)
                for r, rand in enumerate(randoms):
                    x = adversarial.displace(pos, rand, total)
                    if total == 0.0:      # not displaced: the error of the configuration as given
                        ea, er = base[0], base[2]
                        bar.update(n_groups)
                    else:
                        ea, _, er, _ = at(x, f"random direction {r} (epsilon {e:g} A^2)")
                    _store(res, "random", (c, r, k), er - ea, x, pos, cell, names, pairs, reach)
    finally:
        for m in models:
            m.close()
        bar.close()
        sub.Free()
    # every configuration was computed by exactly one group: summing collects them
    # (only the group leader's copy counts, so other members contribute zeros)
    res = {k: comm.allreduce(v if leader else np.zeros_like(v)) for k, v in res.items()}
    if comm.Get_rank() == 0:
        res["alignment_offset"] = np.array([alignment.offset(c.names) for c in configs])
        # what the report's intervals resample (an unknown unit: the configuration alone)
        res["independent_unit"] = np.array([c.unit or c.source for c in configs], dtype=str)
        res["temperature"] = np.array([c.temperature for c in configs], dtype=float)
        res["random_abs_cos_expected"] = np.array(
            [adversarial.random_abs_cos(len(c.positions)) for c in configs])
        res["species_pairs"] = np.array(pairs, dtype=str)
        res["closest_pair_threshold"] = threshold
        natoms = np.array([len(c.positions) for c in configs], dtype=float)
        res["flagged_adversarial"] = flagged(res["closest_pair_adversarial"], threshold,
                                             res["error_adversarial"], natoms[:, None])
        res["flagged_random"] = flagged(res["closest_pair_random"], threshold,
                                        res["error_random"], natoms[:, None, None])
        params = {"experiment": "probe", "approx": approx_spec, "reference": reference_spec,
                  # what the specs stand for (e.g. GFN-xTB's method, accuracy, k-points)
                  "approx_description": models[0].description,
                  "reference_description": models[1].description,
                  "units": "metal", "epsilons_A2": eps, "distortion": distortion,
                  "ascent_steps": ascent_steps, "closest_pair_factor": CLOSEST_PAIR_FACTOR,
                  "closest_pair_threshold_source": threshold_source,
                  "flag_error_eV_per_atom": FLAG_ERROR_EV_PER_ATOM,
                  "sampling": sampling, "n_random": n_random, "seed": seed,
                  "command_line": " ".join(sys.argv), **alignment.attrs()}
        natoms, sources = [len(c.positions) for c in configs], [c.source for c in configs]
        if out is None:
            return {**res, "epsilon": eps, "natoms": np.array(natoms, dtype=np.int64),
                    "source": np.array(sources, dtype=str), "parameters": params}
        write_probe(out, params, epsilon=eps, natoms=natoms, source=sources, arrays=res)
    return out


def _check(epsilons, align, distortion, ascent_steps, n_random) -> np.ndarray:
    eps = np.asarray(epsilons, dtype=float)
    if np.any(eps < 0) or not np.all(np.isfinite(eps)):
        raise ValueError(f"epsilon is a sum of squared displacements (A^2), must be >= 0: {list(eps)}")
    check_mode(align)
    adversarial.check_distortion(distortion)
    if ascent_steps < 1:
        raise ValueError(f"--ascent-steps must be >= 1, got {ascent_steps}")
    if n_random < 0:
        raise ValueError(f"--random must be >= 0, got {n_random}")
    return eps


def _store(res, kind, index, error, x, pos, cell, names, pairs, reach) -> None:
    """Error and geometry diagnostics of one displaced configuration: its largest atom
    displacement, its closest pair per species pair and the smallest of them (A), looked for
    within ``reach`` (inf: no pair that close)."""
    dr = x - pos
    res[f"error_{kind}"][index] = error
    res[f"max_displacement_{kind}"][index] = float(np.sqrt(np.einsum("ij,ij->i", dr, dr)).max())
    closest = closest_pairs(x, cell, names, reach)
    res[f"closest_pair_{kind}"][index] = [closest.get(p, np.inf) for p in pairs]
    res[f"min_distance_{kind}"][index] = min(closest.values(), default=np.inf)


def flagged(closest, threshold, error, natoms) -> np.ndarray:
    """Displaced configurations to keep out of the means (bool, shape of ``error``): a
    species pair closer than its threshold (``closest`` [..., P] and ``threshold`` [P], A),
    or |error| / natoms (eV/atom) above ``FLAG_ERROR_EV_PER_ATOM`` or not finite."""
    too_close = np.any(np.asarray(closest) < np.asarray(threshold), axis=-1)
    per_atom = np.abs(np.asarray(error, dtype=float)) / natoms
    return too_close | ~(per_atom <= FLAG_ERROR_EV_PER_ATOM)


def closest_pair_threshold(approx: str, configs, pairs) -> tuple[np.ndarray, str]:
    """The flagging threshold of each species pair in ``pairs`` (A) and where it came from:
    ``CLOSEST_PAIR_FACTOR`` x the closest pair of the approximate model's training data
    (its model card), or, for pairs the card does not give, x the closest pair over the
    undisplaced ``configs``; 0 (no distance flag) for a pair never seen within 5 A
    (``lammps.structures.CLOSEST_PAIR_CUTOFF``), where nothing says what is close for it."""
    card, trained = _training_closest_pairs(approx)
    start = closest_pairs_of_set([(c.positions, c.cell, c.names) for c in configs]) \
        if any(p not in trained for p in pairs) else {}
    seen = np.array([trained.get(p, start.get(p, np.inf)) for p in pairs])
    threshold = np.where(np.isfinite(seen), CLOSEST_PAIR_FACTOR * seen, 0.0)
    from_card = [p for p in pairs if p in trained]
    rest = [p for p in pairs if p not in trained]
    parts = []
    if from_card:
        parts.append(f"{CLOSEST_PAIR_FACTOR:g} x the closest pair in the training data of the "
                     f"approximate model ({card.name}: training_data.closest_pair_A) for "
                     f"{', '.join(from_card)}")
    if rest:
        why = ("the approximate model has no model card" if card is None else
               "its model card records no closest pairs" if not trained else
               "not in its model card")
        parts.append(f"{CLOSEST_PAIR_FACTOR:g} x the closest pair over the {len(configs)} "
                     f"undisplaced probe configurations for {', '.join(rest)} ({why})")
    return threshold, "; ".join(parts)


def _training_closest_pairs(approx: str):
    """(card path or None, {species pair: closest distance in the training data, A})."""
    path, card = card_of_spec(approx)
    return path, card_closest_pairs(card)
