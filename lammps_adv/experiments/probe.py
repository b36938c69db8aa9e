"""Probe: model error along the adversarial direction vs along random directions.

For each configuration R0 both models are evaluated, giving A(R0); then for each total
distortion epsilon (A^2) the configuration is displaced by sqrt(epsilon) A/|A| and by the
same amount along ``n_random`` seeded random directions, and both models are evaluated
again. The signed energy error E_acc - E_app (eV) of every displaced configuration is saved.

HDF5 layout (besides /h5md and /parameters, whose attrs hold approx, reference, units,
epsilons_A2, n_random, seed, sampling):

    /probe/epsilon            float64 [E]        A^2
    /probe/natoms             int64   [C]
    /probe/source             str     [C]        where configuration c came from
    /probe/cos_adversarial    float64 [C]        cos(theta) at R0
    /probe/error_adversarial  float64 [C, E]     E_acc - E_app (eV) after displacing along A
    /probe/error_random       float64 [C, R, E]  the same along R random directions
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from lammps_adv import adversarial
from lammps_adv.experiments.parallel import split_tasks
from lammps_adv.progress import bar as progress_bar
from lammps_adv.calculators import get_calculator

DEFAULT_EPSILONS = (0.0, 0.1, 0.3, 0.5)


def load_configs(path: str | Path, split: str | None = "test", limit: int | None = None):
    """Configurations (positions, cell, names, source) from a dataset file (a split of it)
    or from any structure file ASE reads (every frame)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"configuration file not found: {path}")
    out = []
    if path.suffix in (".h5", ".hdf5"):
        from lammps_adv.training.dataset import load
        ds = load(path)
        idx = ds.split(split) if split else np.arange(len(ds))
        for i in idx[:limit]:
            c = ds.config(int(i))
            out.append((c["positions"], c["cell"], c["names"], f"{path.name}#{int(i)}"))
    else:
        from ase.io import iread
        for k, atoms in enumerate(iread(str(path), index=":")):
            if limit is not None and k >= limit:
                break
            out.append((atoms.get_positions(), atoms.cell.array, atoms.get_chemical_symbols(),
                        f"{path.name}#{k}"))
    if not out:
        raise ValueError(f"no configurations in {path}" + (f" (split {split!r})" if split else ""))
    return out


def probe(configs, approx: str, reference: str, out: str | Path = "probe.h5",
          epsilons=DEFAULT_EPSILONS, n_random: int = 5, seed: int = 0,
          sampling: str = "given configurations", ranks_per_task: int = 1, comm=None,
          progress: bool = True) -> Path:
    """Run the probe over ``configs`` [(positions, cell, names, source)]; write ``out``.

    sampling: how the configurations were made (e.g. "MD driven by the reference"), kept
    in /parameters and used to label the cos(theta) statistics. Under MPI the
    configurations are spread over groups of ``ranks_per_task`` ranks; the numbers do not
    depend on the number of ranks."""
    from lammps_adv.mpi import mpi_comm
    comm = comm or mpi_comm()
    root = comm.Get_rank() == 0
    eps = np.asarray(epsilons, dtype=float)
    if np.any(eps < 0):
        raise ValueError(f"epsilon is a sum of squared displacements (A^2), must be >= 0: {list(eps)}")
    out = Path(out)
    if root:
        from lammps_adv.h5md import check_writable
        check_writable(out, "probe file")      # unwritable output fails before any work
    c_n = len(configs)
    err_adv = np.zeros((c_n, len(eps)))
    err_rand = np.zeros((c_n, n_random, len(eps)))
    cos0 = np.zeros(c_n)
    sub, mine, n_groups = split_tasks(comm, c_n, ranks_per_task)
    bar = progress_bar(c_n * (1 + len(eps) * (1 + n_random)), "probe evaluations", "eval",
                       progress, comm)
    models = []
    try:
        models = [get_calculator(approx, comm=sub), get_calculator(reference, comm=sub)]
        for c in mine:
            pos, cell, names, source = configs[c]

            def error(x, what="the configuration"):
                (e_app, f_app), (e_acc, f_acc) = (
                    m.evaluate(x, cell, symbols=names, label=f"{what} of {source}") for m in models)
                bar.update(n_groups)
                return e_app, f_app, e_acc, f_acc

            e_app, f_app, e_acc, f_acc = error(pos)
            cos0[c] = adversarial.cos_adversarial(e_app, e_acc, f_app, f_acc)
            direction = adversarial.adversarial_direction(e_app, e_acc, f_app, f_acc).reshape(pos.shape)
            for k, e in enumerate(eps):
                ea, _, er, _ = error(adversarial.displace(pos, direction, e),
                                     f"the step along A (epsilon {e} A^2)")
                err_adv[c, k] = er - ea
                for r in range(n_random):
                    rand = adversarial.random_direction(pos.shape, seed=seed + 1000 * c + r)
                    ea, _, er, _ = error(adversarial.displace(pos, rand, e),
                                         f"random direction {r} (epsilon {e} A^2)")
                    err_rand[c, r, k] = er - ea
    finally:
        for m in models:
            m.close()
        bar.close()
        sub.Free()
    # every configuration was computed by exactly one group: summing collects them
    # (only the group leader's copy counts, so other members contribute zeros)
    leader = comm.Get_rank() % ranks_per_task == 0
    parts = [a if leader else np.zeros_like(a) for a in (cos0, err_adv, err_rand)]
    cos0, err_adv, err_rand = (comm.allreduce(a) for a in parts)
    if root:
        from lammps_adv.h5md import write_probe
        write_probe(out, {"experiment": "probe", "approx": approx, "reference": reference,
                          "units": "metal", "epsilons_A2": eps, "sampling": sampling,
                          "n_random": n_random, "seed": seed,
                          "command_line": " ".join(sys.argv)},
                    epsilon=eps, natoms=[len(p) for p, *_ in configs],
                    source=[s for *_, s in configs], cos_adversarial=cos0,
                    error_adversarial=err_adv, error_random=err_rand)
    return out
