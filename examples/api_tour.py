"""The function-level API in one script (docs/python.md walks through it).

    python examples/api_tour.py [FOLDER]      # writes run.h5md there (default: a temp folder)

About 30 s on 2 cores. Metal units throughout: eV, Angstrom, ps; forces in eV/A.
"""
import sys
import tempfile
from pathlib import Path

import MDAnalysis as mda
import numpy as np

from lammps_adv.calculators import ase_calculator, get_calculator
from lammps_adv.core import adversarial, alignment
from lammps_adv.experiments.probe import probe
from lammps_adv.io.h5md import read_frames, read_observables
from lammps_adv.io.resources import INPUTS
from lammps_adv.lammps.structures import quartz, write_lammps_data
from lammps_adv.recorder import run_deck

folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
folder.mkdir(parents=True, exist_ok=True)

# 1. models: any spec string (`lammps-adv potentials` lists them) is a calculator
atoms = quartz(2, 2, 1)                      # 36-atom alpha-quartz, an ase.Atoms
atoms.rattle(0.05, seed=0)
args = (atoms.positions, atoms.cell[:])
names = atoms.get_chemical_symbols()
with get_calculator("torchscript:gnn_bks_dsf") as app, get_calculator("bks-dsf") as acc:
    e_app, f_app = app.evaluate(*args, symbols=names)       # eV, eV/A [N, 3]
    e_acc, f_acc = acc.evaluate(*args, symbols=names)

# 2. measures of one configuration: pure functions of two energies and two force sets
m = adversarial.measures(e_app, e_acc, f_app, f_acc)
print(f"cos(theta) = {m['cos_adversarial']:+.3f}, |cos| = {m['abs_cos_adversarial']:.3f} "
      f"(random direction: {adversarial.random_abs_cos(len(atoms)):.3f}), "
      f"force RMSE {m['force_rmse']:.3f} eV/A")
direction = adversarial.adversarial_direction(e_app, e_acc, f_app, f_acc)   # eV^2/A [N, 3]
pushed = adversarial.displace(atoms.positions, direction, epsilon=0.05)      # sum |dr|^2 = 0.05 A^2

# 3. an energy zero fitted on configurations the result does not use
fit_set = [quartz(2, 2, 1) for _ in range(3)]
for k, a in enumerate(fit_set):
    a.rattle(0.03, seed=10 + k)
with get_calculator("bks-dsf") as app, get_calculator("bks") as acc:
    e = [(app.evaluate(a.positions, a.cell[:], symbols=a.get_chemical_symbols())[0],
          acc.evaluate(a.positions, a.cell[:], symbols=a.get_chemical_symbols())[0])
         for a in fit_set]
shifts = alignment.fit([a.get_chemical_symbols() for a in fit_set], *zip(*e),
                       source="three rattled quartz cells")
print(shifts.describe())

# 4. the probe, in memory (out=None): errors along A and random directions
configs = [(atoms.positions, atoms.cell[:], names, "rattled quartz")]
res = probe(configs, "bks-dsf", "bks", out=None, epsilons=(0.0, 0.05), n_random=3,
            alignment=shifts, progress=False)
print(f"probe: error along A {res['error_adversarial'][0]} eV, along random directions "
      f"{res['error_random'][0].mean(axis=0)} eV (epsilon {res['epsilon']} A^2)")

# 5. a recorded LAMMPS run (an unmodified deck) and its readers
data = write_lammps_data(folder / "quartz.data", quartz(2, 2, 2))
rows = run_deck(INPUTS / "nvt_glass.in", "bks-dsf", out=folder / "run.h5md", every=10,
                frames_every=2, overwrite=True, progress=False,
                variables={"data": data, "steps": 200, "out": folder / "final.data"})
obs = read_observables(folder / "run.h5md")
frames = read_frames(folder / "run.h5md")
print(f"run.h5md: {rows} rows, mean |cos| {np.mean(obs['abs_cos_adversarial']):.3f}; "
      f"{len(frames['step'])} frames of {frames['position'].shape[1]} atoms")
u = mda.Universe(str(data), str(folder / "run.h5md"))    # the data file as topology
print(f"MDAnalysis: {len(u.trajectory)} frames {u.trajectory.dt:g} ps apart, "
      f"types {sorted(set(u.atoms.types))}")

# 6. a lammps-adv model driving ASE
from ase.optimize import BFGS                  # noqa: E402
atoms.calc = ase_calculator("torchscript:gnn_bks_dsf")
BFGS(atoms, logfile=None).run(fmax=0.05)
print(f"BFGS with the graph network: {atoms.get_potential_energy() / len(atoms):.4f} eV/atom")
