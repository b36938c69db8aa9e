"""Probe: model error along the adversarial direction vs along random directions.

For each configuration R0 both models are evaluated, giving the energy error and A(R0).
The approximate energy is first aligned (lammps_adv.core.alignment: per-species shifts fitted
on all the configurations given, by default). Then for each distortion epsilon the
configuration is moved along A, and by the same amount along ``n_random`` seeded random
directions, and both models are evaluated again.

Distortion: ``total`` (the study's convention) means sum_i |dr_i|^2 = epsilon (A^2) for the
whole cell, so the same epsilon moves the atoms of a small cell much more; ``per-atom``
means epsilon per atom (sum_i |dr_i|^2 = N epsilon), comparable across cell sizes.

Along A: ``ascent_steps`` K steps of projected gradient ascent on (E_acc - E_app)^2 inside
the ball sum_i |dr_i|^2 <= epsilon. Each step moves 2 sqrt(epsilon) / K along the
normalised A of the current configuration (re-evaluated) and projects back onto the ball;
K = 1 is the one-shot step sqrt(epsilon) A/|A|.

Every displaced configuration also gets its largest single-atom displacement and its
smallest interatomic distance; one closer than ``core_distance`` (default 1.2 A, well
inside the Si-O bond of 1.6 A) is flagged as pushed into the repulsive core, where both
models are outside what they were made for.

HDF5 layout (besides /h5md): see ``lammps_adv.io.h5md.write_probe``; the /parameters
attributes are ``lammps_adv.io.schema.PROBE_PARAMETERS``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from lammps_adv.calculators import get_calculator
from lammps_adv.core import adversarial
from lammps_adv.core.configuration import Configuration
from lammps_adv.core.alignment import NONE, check_mode, fit
from lammps_adv.core.progress import bar as progress_bar
from lammps_adv.io.files import check_writable
from lammps_adv.io.h5md import write_probe
from lammps_adv.lammps.structures import min_pair_distance
from lammps_adv.parallel.mpi import mpi_comm
from lammps_adv.parallel.tasks import split_tasks

DEFAULT_EPSILONS = (0.0, 0.1, 0.3, 0.5)
CORE_DISTANCE = 1.2          # A


def probe(configs, approx: str, reference: str, out: str | Path = "probe.h5",
          epsilons=DEFAULT_EPSILONS, n_random: int = 5, seed: int = 0,
          sampling: str = "given configurations", ranks_per_task: int = 1, comm=None,
          progress: bool = True, align: str = "per-species", distortion: str = "total",
          ascent_steps: int = 1, core_distance: float = CORE_DISTANCE) -> Path:
    """Run the probe over ``configs`` [(positions, cell, names, source)]; write ``out``.

    sampling: how the configurations were made (e.g. "MD driven by the reference"), kept
    in /parameters and used to label the cos(theta) statistics. Under MPI the
    configurations are spread over groups of ``ranks_per_task`` ranks; the numbers do not
    depend on the number of ranks."""
    comm = comm or mpi_comm()
    configs = [Configuration(*c) for c in configs]
    eps = _check(epsilons, align, distortion, ascent_steps, n_random)
    out = Path(out)
    if comm.Get_rank() == 0:
        check_writable(out, "probe file")      # unwritable output fails before any work
    c_n, e_n = len(configs), len(eps)
    res = {"cos_adversarial": np.zeros(c_n), "energy_error": np.zeros(c_n),
           "energy_reference": np.zeros(c_n), "energy_approx_raw": np.zeros(c_n),
           "error_adversarial": np.zeros((c_n, e_n)),
           "max_displacement_adversarial": np.zeros((c_n, e_n)),
           "min_distance_adversarial": np.zeros((c_n, e_n)),
           "error_random": np.zeros((c_n, n_random, e_n)),
           "max_displacement_random": np.zeros((c_n, n_random, e_n)),
           "min_distance_random": np.zeros((c_n, n_random, e_n))}
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

        # pass 1: every configuration as given (the alignment is fitted on all of them)
        first = {}
        for c in mine:
            pos, cell, names, source = configs[c][:4]
            first[c] = evaluate(pos, cell, names, f"the configuration {source}")
            res["energy_approx_raw"][c], res["energy_reference"][c] = first[c][0], first[c][2]
        raw, ref = (comm.allreduce(res[k] if leader else np.zeros(c_n))
                    for k in ("energy_approx_raw", "energy_reference"))
        alignment = fit([c.names for c in configs], raw, ref) \
            if align == "per-species" else NONE
        # pass 2: the displacements, with aligned energies
        for c in mine:
            pos, cell, names, source = configs[c][:4]
            offset = alignment.offset(names)
            e_app, f_app, e_acc, f_acc = first[c]
            base = (e_app + offset, f_app, e_acc, f_acc)
            res["energy_error"][c] = e_acc - base[0]
            res["cos_adversarial"][c] = adversarial.cos_adversarial(
                base[0], e_acc, f_app, f_acc)

            def at(x, what):
                return evaluate(x, cell, names, f"{what} of {source}", offset)

            for k, e in enumerate(eps):
                total = adversarial.total_distortion(e, len(pos), distortion)
                x, (ea, _, er, _), done = adversarial.ascend(
                    lambda x, j: at(x, f"ascent step {j + 1} along A (epsilon {e:g} A^2)"),
                    lambda s: adversarial.adversarial_direction(s[0], s[2], s[1], s[3]),
                    pos, base, total, ascent_steps)
                bar.update(n_groups * (ascent_steps - done))
                _store(res, "adversarial", (c, k), er - ea, x, pos, cell)
                for r in range(n_random):
                    rand = adversarial.random_direction(pos.shape, seed=seed + 1000 * c + r)
                    x = adversarial.displace(pos, rand, total)
                    if total == 0.0:      # not displaced: the error of the configuration as given
                        ea, er = base[0], base[2]
                        bar.update(n_groups)
                    else:
                        ea, _, er, _ = at(x, f"random direction {r} (epsilon {e:g} A^2)")
                    _store(res, "random", (c, r, k), er - ea, x, pos, cell)
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
        for kind in ("adversarial", "random"):
            res[f"core_{kind}"] = res[f"min_distance_{kind}"] < core_distance
        params = {"experiment": "probe", "approx": approx, "reference": reference,
                  # what the specs stand for (e.g. GFN-xTB's method, accuracy, k-points)
                  "approx_description": models[0].description,
                  "reference_description": models[1].description,
                  "units": "metal", "epsilons_A2": eps, "distortion": distortion,
                  "ascent_steps": ascent_steps, "core_distance_A": core_distance,
                  "sampling": sampling, "n_random": n_random, "seed": seed,
                  "command_line": " ".join(sys.argv), **alignment.attrs()}
        write_probe(out, params, epsilon=eps, natoms=[len(c.positions) for c in configs],
                    source=[c.source for c in configs], arrays=res)
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


def _store(res, kind, index, error, x, pos, cell) -> None:
    """Error and geometry diagnostics of one displaced configuration."""
    dr = x - pos
    res[f"error_{kind}"][index] = error
    res[f"max_displacement_{kind}"][index] = float(np.sqrt(np.einsum("ij,ij->i", dr, dr)).max())
    res[f"min_distance_{kind}"][index] = min_pair_distance(x, cell)
