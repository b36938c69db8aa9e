#!/usr/bin/env python
"""cos(theta), energy error per atom and force RMSE along a recorded run (`lammps-adv run`).

    python analysis/cos_timeseries.py run.h5md -o out/run

Reads the observables of a recording (docs/recorder.md): cos_adversarial, the energy error
E_ref - E_app per atom in meV/atom (signed: > 0, the model is too low) and the force RMSE in
eV/Angstrom, one row per record, and the stages (/stages) of the run.
Writes PREFIX.csv (one line per record: row, stage, stage kind, step, time in ps and the
three observables) and PREFIX.png (three panels vs time in ps, or vs step when the run
holds a minimization; dashed lines where a stage starts). Prints the rows, the stages and
mean |cos theta| next to that of a random direction, sqrt(2 / (pi 3N)).
Metal units: eV, Angstrom, ps. A missing, corrupt or foreign file: one line, exit status 2.
"""
import argparse
from pathlib import Path

import numpy as np

from _script import kind_of, read_result, run_main
from lammps_adv.core.adversarial import random_abs_cos
from lammps_adv.core.summaries import error_observables
from lammps_adv.io.h5md import read_stages
from lammps_adv.report.figures import plot_timeseries
from lammps_adv.report.tables import write_table

LABELS = {"cos_adversarial": r"cos$\theta$",
          "energy_error_meV_per_atom": "E_ref - E_app\n(meV/atom)",
          "force_rmse_eV_per_A": "force RMSE\n(eV/A)"}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="recording of `lammps-adv run` (HDF5)")
    ap.add_argument("-o", "--out", metavar="PREFIX",
                    help="output prefix: writes PREFIX.csv and PREFIX.png "
                         "(default: RUN's name + _timeseries, in the current folder)")
    args = ap.parse_args()
    res = read_result(args.run)
    if kind_of(res) == "probe file":
        raise ValueError(f"{res.path}: a probe file, not a recording of `lammps-adv run`")
    obs = error_observables(res)
    stages = read_stages(res.path)
    d = res.data
    rows = len(d["step"])
    stage = d["stage"].astype(int)
    kinds = stages["kind"]
    by_step = "minimize" in kinds
    prefix = Path(args.out or f"{res.path.stem}_timeseries")

    table = [{"row": i, "stage": int(stage[i]),
              "stage_kind": kinds[stage[i]] if 0 <= stage[i] < len(kinds) else "",
              "step": int(d["step"][i]), "time_ps": float(d["time"][i]),
              **{k: float(v[i]) for k, v in obs.items()}} for i in range(rows)]
    csv, _ = write_table(table, prefix, floatfmt="{:.9g}", markdown=False)

    x = d["step"] if by_step else d["time"]
    boundaries = [(x[r], f"{k} {s}") for s, (k, r) in enumerate(zip(kinds, stages["first_row"]))
                  if 0 <= r < rows]
    n_atoms = int(res.params.get("n_atoms", 0))
    rnd = random_abs_cos(n_atoms) if n_atoms else float("nan")
    png = plot_timeseries(x, {LABELS[k]: v for k, v in obs.items()}, Path(f"{prefix}.png"),
                          "step" if by_step else "time (ps)", boundaries,
                          guides={LABELS["cos_adversarial"]:
                                  (rnd, "+-|cos| of a random direction")})

    abs_cos = np.abs(obs["cos_adversarial"])
    print(f"{res.path}: {rows} rows, {n_atoms} atoms; stages: {len(kinds)} "
          f"({', '.join(kinds) or 'none recorded'})")
    print(f"mean |cos theta| {abs_cos.mean():.4g}; a random direction: "
          f"{rnd:.4g} (sqrt(2 / (pi 3N)), dotted in the figure)")
    print(f"mean |E_ref - E_app| {np.abs(obs['energy_error_meV_per_atom']).mean():.4g} meV/atom, "
          f"mean force RMSE {obs['force_rmse_eV_per_A'].mean():.4g} eV/A")
    print(f"wrote {csv} and {png}")


if __name__ == "__main__":
    run_main(main)
