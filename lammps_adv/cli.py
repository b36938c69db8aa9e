"""``lammps-adv`` command line: thin wrappers over the library modules."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _add_glass(sub):
    p = sub.add_parser("glass", help="make amorphous silica by melt-quench in LAMMPS",
                       description="Amorphous SiO2 by melt-quench: random insertion at the "
                       "given density, NVT melt, linear quench to 300 K, minimization. "
                       "Writes a LAMMPS data file (metal units, type 1 = Si, 2 = O).")
    p.add_argument("-n", "--atoms", type=int, default=192, help="number of atoms, a positive multiple of 3 (default 192)")
    p.add_argument("--density", type=float, default=2.20, help="g/cm^3, 1.0 to 4.5 (default 2.20)")
    p.add_argument("--potential", default="bks-dsf", help="potential spec (default bks-dsf; see `lammps-adv potentials`)")
    p.add_argument("--t-melt", type=float, default=5000.0, help="melt temperature in K, above 300 and at most 20000 (default 5000)")
    p.add_argument("--melt-ps", type=float, default=10.0, help="melt time in ps, 0.001 to 1e5 (default 10)")
    p.add_argument("--quench-ps", type=float, default=20.0, help="quench time in ps, 0.001 to 1e5 (default 20)")
    p.add_argument("--seed", type=int, default=12345, help="random seed, a positive integer (default 12345)")
    p.add_argument("-o", "--out", default="glass.data", help="output LAMMPS data file (default glass.data)")
    p.set_defaults(func=_run_glass)


def _run_glass(args):
    from lammps_adv.lammps.structures import amorphous, density
    atoms = amorphous(args.atoms, rho=args.density, potential=args.potential, out=args.out,
                      seed=args.seed, t_melt=args.t_melt, melt_ps=args.melt_ps,
                      quench_ps=args.quench_ps)
    _say(f"wrote {args.out}: {len(atoms)} atoms, {density(atoms):.3f} g/cm^3")


def _add_energy(sub):
    p = sub.add_parser("energy", help="energy and forces of a structure with a potential",
                       description="Single point: potential energy (eV, eV/atom) and the "
                       "largest force (eV/A) of a structure (LAMMPS data file, or any file "
                       "ASE reads) with a catalogue potential.")
    p.add_argument("structure", help="LAMMPS data file (type 1 = Si, 2 = O) or extxyz/...")
    p.add_argument("--potential", default="bks", help="potential spec (default bks)")
    p.set_defaults(func=_run_energy)


def _run_energy(args):
    from pathlib import Path
    from lammps_adv.lammps.structures import read
    from lammps_adv.lammps.system import LammpsSystem
    path = Path(args.structure)
    structure = path if path.suffix in (".data", ".lmp", ".lammps") else read(path)
    with LammpsSystem(structure, args.potential) as system:
        energy, forces = system.energy_forces()
        n = system.natoms
    fmax = float((forces**2).sum(1).max() ** 0.5)
    _say(f"{args.potential}: E = {energy:.8f} eV ({energy / n:.8f} eV/atom, {n} atoms), "
         f"max |F| = {fmax:.6f} eV/A")


def _add_potentials(sub):
    p = sub.add_parser("potentials", help="list the potentials of the catalogue",
                       description="Every potential spec `--potential` and `--reference` "
                       "accept, with what it is (docs/potentials.md).")
    p.set_defaults(func=_run_potentials)


def _run_potentials(args):
    from lammps_adv.lammps import snippets as potentials
    entries = potentials.catalogue()       # placeholders (FILE) are described, never built
    width = max(len(name) for name, _ in entries)
    for name, description in entries:
        _say(f"{name:{width}s}  {description}")


def _add_demo(sub):
    p = sub.add_parser("demo", help="run the main job (the study at small scale)")
    p.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--scale", choices=["small", "full"], default="small",
                   help="small: 96-atom glasses, about 4 min on 2 cores; full: the study's "
                        "3000-atom glass, about 40 min on 2 cores (default small)")
    p.add_argument("--ranks", type=int, default=2, help="MPI ranks for the parallel stages (default 2)")
    p.set_defaults(func=_run_demo)


def _run_demo(args):
    from lammps_adv.demo import run_demo
    run_demo(out=args.out, scale=args.scale, ranks=args.ranks)


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace("x", ",").split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def _add_dataset(sub):
    p = sub.add_parser("dataset", help="make, import or inspect training datasets (HDF5)",
                       description="Training datasets (HDF5, layout in docs/models.md).")
    dsub = p.add_subparsers(dest="action", required=True)
    g = dsub.add_parser("generate", help="label LAMMPS MD of glass and quartz with a potential",
                        description="NVT MD in LAMMPS of melt-quenched glasses at several "
                        "temperatures and of alpha-quartz (driven by --driver), labelled by --reference "
                        "(energies, forces; stress when the driver is the reference); frames "
                        "`--stride` steps apart. Units: eV, Angstrom, ps, K.")
    g.add_argument("-o", "--out", required=True, help="output dataset file (.h5)")
    g.add_argument("--reference", default="bks-dsf",
                   help="what labels energies and forces: a calculator spec, e.g. bks-dsf, "
                   "xtb:GFN1, MODEL.pt (default bks-dsf)")
    g.add_argument("--driver", default=None,
                   help="catalogue potential that drives the MD and melt-quench "
                   "(default: the reference)")
    g.add_argument("--glass-atoms", type=int, default=96, help="atoms per glass, 0: no glass (default 96)")
    g.add_argument("--glasses", type=int, default=1, help="independent glasses (default 1)")
    g.add_argument("--glass-temps", type=_floats, default=[300, 1000, 2000, 3000],
                   help="K, comma-separated (default 300,1000,2000,3000)")
    g.add_argument("--quartz", type=_ints, default=[2, 2, 2],
                   help="quartz supercell NXxNYxNZ, 0: none (default 2x2x2)")
    g.add_argument("--quartz-temps", type=_floats, default=[300, 900, 1500],
                   help="K, comma-separated (default 300,900,1500)")
    _add_md_frames(g, frames=20, stride=50)
    g.add_argument("--timestep", type=float, default=0.001, help="ps (default 0.001)")
    g.add_argument("--melt-ps", type=float, default=5.0, help="glass melt time (default 5)")
    g.add_argument("--quench-ps", type=float, default=10.0, help="glass quench time (default 10)")
    g.set_defaults(func=_run_dataset_generate)
    i = dsub.add_parser("import", help="dataset from extxyz / VASP OUTCAR / vasprun.xml / ... "
                        "(through ASE), units checked",
                        description="Import DFT (or any) labels from files ASE reads into a "
                        "dataset (.h5, metal units). Units: as given by --energy-unit/--force-unit/"
                        "--stress-unit, else as each extxyz frame declares (energy_unit, "
                        "force_unit, stress_unit), else eV, eV/A, eV/A^3; VASP files are converted "
                        "by ASE. Implausible forces or stresses (another unit?) are refused.")
    i.add_argument("files", nargs="+", help="files with energies (and forces, stress or virial)")
    i.add_argument("-o", "--out", required=True, help="output dataset file (.h5)")
    i.add_argument("--species", default="Si,O", help="species names in model order (default Si,O)")
    i.add_argument("--reference", default="DFT", help="what labelled the data (default DFT)")
    i.add_argument("--index", default=":", help="ASE frame selection (default all)")
    i.add_argument("--format", default=None, help="ASE format (default from the file name)")
    from lammps_adv.io.dft_import import unit_names
    units = unit_names()
    i.add_argument("--energy-unit", choices=units["energy"], default=None,
                   help="energy unit of the files (default: declared, else eV)")
    i.add_argument("--force-unit", choices=units["force"], default=None,
                   help="force unit of the files (default: declared, else eV/A)")
    i.add_argument("--stress-unit", choices=units["stress"], default=None,
                   help="stress unit of the files (default: declared, else eV/A^3; a virial "
                   "takes the energy unit)")
    from lammps_adv.io.dataset import ENERGY_KINDS
    i.add_argument("--energy", choices=ENERGY_KINDS, default="auto",
                   help="free_energy (VASP TOTEN, consistent with the forces), energy (VASP: "
                   "sigma -> 0), or auto: the free energy when present (default)")
    i.add_argument("--split", type=_floats, default=[0.8, 0.1, 0.1])
    i.add_argument("--seed", type=int, default=0)
    i.set_defaults(func=_run_dataset_import)
    m = dsub.add_parser("mixed", help="glasses of several sizes and quench rates, thermal and "
                        "relaxed, in one dataset",
                        description="Glasses of every size of --sizes (--glasses per size and "
                        "quench time), NVT MD at --temps labelled by --reference, optionally "
                        "alpha-quartz, plus the first --relaxed frames of every run minimised "
                        "with the reference. Units: eV, Angstrom, ps, K.")
    m.add_argument("-o", "--out", required=True, help="output dataset file (.h5)")
    m.add_argument("--reference", default="bks-dsf", help="catalogue potential (default bks-dsf)")
    m.add_argument("--sizes", type=_ints, default=[96, 192], help="atoms per glass (default 96,192)")
    m.add_argument("--glasses", type=int, default=1, help="glasses per size and quench time (default 1)")
    m.add_argument("--quench-ps", type=_floats, default=[10.0], help="quench times, ps (default 10)")
    m.add_argument("--melt-ps", type=float, default=5.0, help="melt time, ps (default 5)")
    m.add_argument("--temps", type=_floats, default=[300, 1000, 2000, 3000],
                   help="K, comma-separated (default 300,1000,2000,3000)")
    m.add_argument("--quartz", type=_ints, default=[0], help="quartz supercell NXxNYxNZ, with "
                   "the first size (default 0: none)")
    m.add_argument("--quartz-temps", type=_floats, default=[300, 900, 1500])
    _add_md_frames(m, frames=10, stride=100)
    m.add_argument("--relaxed", type=int, default=0,
                   help="minimised copies of the first N frames of every run (default 0)")
    m.set_defaults(func=_run_dataset_mixed)
    s = dsub.add_parser("subset", help="a seeded random fraction of some splits of a dataset")
    s.add_argument("dataset")
    s.add_argument("-o", "--out", required=True, help="output dataset file (.h5)")
    s.add_argument("--fraction", type=float, required=True, help="kept fraction, 0-1")
    s.add_argument("--splits", default="train,validation,test",
                   help="splits to thin (default all three)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_run_dataset_subset)
    n = dsub.add_parser("info", help="summary of a dataset file")
    n.add_argument("file")
    n.set_defaults(func=_run_dataset_info)


def _add_md_frames(p, frames: int, stride: int) -> None:
    """Options shared by the dataset recipes: MD frames, split, seed, progress."""
    p.add_argument("--frames", type=int, default=frames, help=f"frames per run (default {frames})")
    p.add_argument("--stride", type=int, default=stride,
                   help=f"MD steps between frames (default {stride})")
    p.add_argument("--equil", type=int, default=500, help="MD steps before the first frame (default 500)")
    p.add_argument("--split", type=_floats, default=[0.8, 0.1, 0.1],
                   help="train,validation,test fractions (default 0.8,0.1,0.1; 0,0,1: all held out)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _run_dataset_generate(args):
    from lammps_adv.training.sampling import generate
    q = args.quartz if args.quartz and any(args.quartz) else None
    if q is not None and len(q) != 3:
        raise ValueError(f"--quartz needs NXxNYxNZ, got {args.quartz}")
    ds = generate(args.out, reference=args.reference, driver=args.driver,
                  glass_atoms=args.glass_atoms,
                  n_glasses=args.glasses, glass_temps=args.glass_temps, quartz_cells=q,
                  quartz_temps=args.quartz_temps, frames=args.frames, stride=args.stride,
                  equil=args.equil, timestep=args.timestep, seed=args.seed,
                  melt_ps=args.melt_ps, quench_ps=args.quench_ps, split=args.split,
                  progress=not args.quiet)
    _say(f"wrote {args.out}: {ds.summary()}")


def _run_dataset_mixed(args):
    from lammps_adv.training.recipes import mixed_glasses
    q = args.quartz if args.quartz and any(args.quartz) else None
    if q is not None and len(q) != 3:
        raise ValueError(f"--quartz needs NXxNYxNZ, got {args.quartz}")
    ds = mixed_glasses(args.out, reference=args.reference, sizes=args.sizes,
                       glasses=args.glasses, quench_ps=args.quench_ps, temps=args.temps,
                       quartz_cells=q, quartz_temps=args.quartz_temps, frames=args.frames,
                       stride=args.stride, equil=args.equil, melt_ps=args.melt_ps,
                       relaxed=args.relaxed, split=args.split, seed=args.seed,
                       progress=not args.quiet)
    _say(f"wrote {args.out}: {ds.summary()}")


def _run_dataset_subset(args):
    from lammps_adv.io.dataset import load
    from lammps_adv.training.recipes import subset
    if not 0 < args.fraction <= 1:
        raise ValueError(f"--fraction must be in (0, 1], got {args.fraction}")
    out = subset(load(args.dataset), args.fraction, args.splits.split(","), args.seed)
    out.save(args.out)
    _say(f"wrote {args.out}: {out.summary()}")


def _run_dataset_import(args):
    from lammps_adv.io.dataset import import_ase
    ds = import_ase(args.files, args.out, species=args.species.split(","),
                    reference=args.reference, split=args.split, seed=args.seed,
                    index=args.index, fmt=args.format, energy_kind=args.energy,
                    units={"energy": args.energy_unit, "force": args.force_unit,
                           "stress": args.stress_unit})
    _say(f"wrote {args.out}: {ds.summary()}")


def _run_dataset_info(args):
    from lammps_adv.io.dataset import load
    _say(load(args.file).summary())


def _add_train(sub):
    p = sub.add_parser("train", help="train a BP or graph network on a dataset, export it",
                       description="Train a model (Adam, learning-rate schedule, early "
                       "stopping on the validation split), export it to TorchScript and "
                       "write a model card (OUT.card.json / OUT.card.md) with test metrics.")
    p.add_argument("dataset", help="dataset file (.h5, see `lammps-adv dataset`)")
    p.add_argument("-o", "--out", required=True, help="output TorchScript model (.pt)")
    p.add_argument("--model", choices=["bp", "gnn"], default="bp")
    p.add_argument("--force-weight", type=float, default=0.0,
                   help="weight of the force loss (eV/A)^2 vs energy (eV/atom)^2; 0: energies only")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--schedule", choices=["plateau", "cosine", "exponential", "constant"],
                   default="plateau")
    p.add_argument("--lr-factor", type=float, default=0.5, help="decay factor (default 0.5)")
    p.add_argument("--lr-patience", type=int, default=10, help="plateau patience (default 10)")
    p.add_argument("--patience", type=int, default=30, help="early-stopping patience (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=None, help="time budget")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--cutoff", type=float, default=None, help="A (default bp 8, gnn 5)")
    p.add_argument("--hidden", type=_ints, default=None, help="MLP widths, e.g. 30,30")
    p.add_argument("--width", type=int, default=None, help="gnn: node feature width (default 64)")
    p.add_argument("--rounds", type=int, default=None, help="gnn: message-passing rounds (default 2)")
    p.add_argument("--checkpoint", default=None, help="checkpoint file (default OUT.ckpt)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_train)


def _run_train(args):
    from lammps_adv.training.train import TrainSettings, train
    kw = {}
    for key, val in (("cutoff", args.cutoff), ("hidden", args.hidden), ("width", args.width),
                     ("n_rounds", args.rounds)):
        if val is not None:
            if args.model == "bp" and key in ("width", "n_rounds"):
                raise ValueError(f"--{key.replace('n_rounds', 'rounds')} is for --model gnn")
            kw[key] = val
    s = TrainSettings(model=args.model, model_kwargs=kw, force_weight=args.force_weight,
                      epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      schedule=args.schedule, lr_factor=args.lr_factor,
                      lr_patience=args.lr_patience, patience=args.patience, seed=args.seed,
                      max_minutes=args.max_minutes, threads=args.threads)
    train(args.dataset, args.out, s, checkpoint=args.checkpoint, resume=args.resume,
          progress=not args.quiet, log=_say)


def _add_run(sub):
    p = sub.add_parser("run", help="run a LAMMPS deck and record adversarial measures to HDF5",
                       description="Run an unmodified LAMMPS deck (one that runs with `lmp -in`) "
                       "and record, at every N-th MD step and every force evaluation of a "
                       "minimization, the driving model's energy and forces against a reference "
                       "model: cos(theta) of the adversarial direction, energy and force errors "
                       "(docs/recorder.md). Works under `mpirun -np N lammps-adv run ...`.")
    p.add_argument("deck", help="LAMMPS input deck")
    p.add_argument("--reference", required=True,
                   help="reference model: bks, bks:pppm, bks-dsf, lammps:FILE, torchscript:FILE.pt, "
                        "xtb:GFN1, xtb:GFN2, ase:MODULE:CLASS")
    p.add_argument("--every", type=int, default=1, help="record every N MD steps (default 1)")
    p.add_argument("--frames-every", type=int, default=0,
                   help="store positions, both force sets and the box every K records (default 0: never)")
    p.add_argument("--out", default="run.h5", help="HDF5 output (default run.h5)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--append", action="store_true", help="continue an existing output file")
    mode.add_argument("--overwrite", action="store_true",
                      help="replace an existing output file (without this or --append, an "
                           "existing file is an error)")
    p.add_argument("-var", "--var", nargs="+", action="append", default=[], metavar="NAME VALUE",
                   help="LAMMPS variable, as `lmp -var NAME VALUE...` (repeatable)")
    p.add_argument("--species", nargs="+", default=None,
                   help="element of each atom type, when the types have no labels (e.g. Si O)")
    p.add_argument("--approx", default=None,
                   help="name of the driving model (provenance; a calculator spec such as "
                   "bks-dsf when --align-from fits shifts on a configuration file)")
    align = p.add_mutually_exclusive_group()
    align.add_argument("--align-shifts", default=None, metavar="SI=EV,O=EV",
                       help="per-species energy shifts (eV per atom) added to the driving "
                       "model's energy before every measure (default: none, raw energies)")
    align.add_argument("--align-from", default=None, metavar="FILE",
                       help="take the alignment of a lammps-adv output (probe, relax, run), "
                       "or fit shifts on a dataset / structure file's configurations")
    p.add_argument("--flush-every", type=int, default=100, help="write after this many records (default 100)")
    p.add_argument("--flush-seconds", type=float, default=5.0, help="... or after this many seconds (default 5)")
    p.add_argument("--log", default=None, help="LAMMPS log file (default: none)")
    p.add_argument("--screen", action="store_true", help="show LAMMPS screen output")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_run_run)


def _run_run(args):
    from lammps_adv.recorder import run_deck
    variables = {}
    for item in args.var:
        if len(item) < 2:
            raise ValueError(f"-var {item[0]}: needs a name and at least one value")
        variables[item[0]] = item[1] if len(item) == 2 else item[1:]
    from lammps_adv.core.alignment import parse_shifts
    from lammps_adv.experiments.align import from_file
    aligned = (parse_shifts(args.align_shifts) if args.align_shifts else
               from_file(args.align_from, args.approx, args.reference)
               if args.align_from else None)
    n = run_deck(args.deck, args.reference, out=args.out, every=args.every,
                 frames_every=args.frames_every, variables=variables, species=args.species,
                 append=args.append, overwrite=args.overwrite, approx=args.approx,
                 flush_every=args.flush_every,
                 flush_seconds=args.flush_seconds, progress=not args.quiet,
                 screen=args.screen, log=args.log, alignment=aligned,
                 command_line=" ".join(["lammps-adv"] + sys.argv[1:]))
    _say(f"recorded {n} rows to {args.out}")


def _say(msg: str) -> None:
    from lammps_adv.parallel.mpi import is_root
    if is_root():
        print(msg, flush=True)


def _add_probe(sub):
    p = sub.add_parser("probe", help="model error along the adversarial vs random directions",
                       description="For each configuration, displace along the adversarial "
                       "direction A and along random directions with distortion epsilon "
                       "(sum of squared displacements, A^2, of the cell or per atom) and record "
                       "E_acc - E_app (eV, approximate energy aligned per species by default), "
                       "the largest atom displacement and the closest pair (A) to HDF5.")
    p.add_argument("configs", help="dataset (.h5, a split of it) or structure file(s) ASE reads")
    p.add_argument("--approx", required=True, help="approximate model spec, e.g. torchscript:potentials/bp_bks_dsf.pt")
    p.add_argument("--reference", required=True, help="accurate model spec, e.g. bks-dsf")
    p.add_argument("--epsilon", type=_floats, default=[0.0, 0.1, 0.3, 0.5],
                   help="distortions in A^2, comma-separated (default 0,0.1,0.3,0.5)")
    from lammps_adv.core.adversarial import DISTORTIONS
    p.add_argument("--distortion", choices=DISTORTIONS, default="total",
                   help="epsilon is the sum of |dr_i|^2 over the cell (total, the study's "
                   "convention) or per atom (per-atom: comparable across cell sizes); "
                   "default total")
    p.add_argument("--ascent-steps", type=int, default=1,
                   help="steps of projected gradient ascent on (E_acc - E_app)^2 inside the "
                   "distortion ball, re-evaluating A each step (default 1: one step along A)")
    _add_align(p)
    p.add_argument("--random", type=int, default=5, help="random directions per configuration (default 5)")
    p.add_argument("--split", default="test", help="dataset split to use, 'all' for every configuration (default test)")
    p.add_argument("--limit", type=int, default=None, help="use at most this many configurations")
    p.add_argument("--sampling", default="given configurations",
                   help="how the configurations were sampled, for the report's labels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", default="probe.h5", help="output HDF5 file (default probe.h5)")
    _add_label_cache(p)
    p.set_defaults(func=_run_probe)


def _run_probe(args):
    from lammps_adv.experiments.probe import probe
    from lammps_adv.io.configs import load_configs
    _apply_label_cache(args)
    configs = load_configs(args.configs, split=None if args.split == "all" else args.split,
                           limit=args.limit)
    out = probe(configs, args.approx, args.reference, out=args.out, epsilons=args.epsilon,
                n_random=args.random, seed=args.seed, sampling=args.sampling,
                align=args.align, distortion=args.distortion, ascent_steps=args.ascent_steps)
    _say(f"wrote {out}: {len(configs)} configurations; {_alignment_line(out)}")


def _alignment_line(path) -> str:
    from lammps_adv.io import h5md
    from lammps_adv.core.alignment import from_attrs
    from lammps_adv.parallel.mpi import is_root
    return f"alignment {from_attrs(h5md.read_parameters(path, texts=False)).describe()}" \
        if is_root() else ""


def _add_align(p):
    from lammps_adv.core.alignment import MODES
    p.add_argument("--align", choices=MODES, default="per-species",
                   help="energy alignment of the approximate model: per-species shifts fitted "
                   "by least squares on the configurations given (default), or none (raw "
                   "energies; an arbitrary energy zero then becomes the error)")


def _add_label(sub):
    p = sub.add_parser("label", help="label configurations with a reference (e.g. GFN-xTB), "
                       "in parallel, cached",
                       description="Energies (eV) and forces (eV/A) of every configuration of "
                       "a dataset or structure file, computed by --reference and written as a "
                       "dataset (.h5). Under `mpirun -np N` the configurations are spread over "
                       "N/--ranks-per-task groups; the labels equal a serial run's. GFN-xTB "
                       "labels are cached on disk by configuration and settings (--label-cache): "
                       "a rerun, or an interrupted run started again, computes only what is "
                       "missing. The reference's settings go into the output.")
    p.add_argument("configs", help="dataset (.h5) or structure file ASE reads (extxyz, ...)")
    p.add_argument("-o", "--out", required=True, help="output dataset file (.h5)")
    p.add_argument("--reference", required=True,
                   help="calculator spec, e.g. xtb:GFN1, xtb:GFN1:accuracy=0.1:etemp=300, bks")
    p.add_argument("--split", default="all", help="dataset split to label, or all (default all: "
                   "the dataset's splits are kept)")
    p.add_argument("--limit", type=int, default=None, help="label at most this many configurations")
    p.add_argument("--ranks-per-task", type=int, default=1, help="MPI ranks per configuration (default 1)")
    _add_label_cache(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_label)


def _add_label_cache(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--label-cache", default=None, metavar="DIR",
                   help="folder of cached reference labels (default: $LAMMPS_ADV_LABEL_CACHE, "
                   "else ~/.cache/lammps-adv/labels)")
    g.add_argument("--no-label-cache", action="store_true", help="neither read nor write cached labels")


def _apply_label_cache(args) -> None:
    from lammps_adv.io.label_cache import ENV
    if getattr(args, "no_label_cache", False):
        os.environ[ENV] = "off"
    elif getattr(args, "label_cache", None):
        os.environ[ENV] = str(Path(args.label_cache).resolve())


def _run_label(args):
    from lammps_adv.experiments.labelling import describe_stats, relabel
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    _apply_label_cache(args)
    ds, stats = relabel(args.configs, args.out, args.reference,
                        split=None if args.split == "all" else args.split, limit=args.limit,
                        ranks_per_task=args.ranks_per_task, progress=not args.quiet)
    _say(f"wrote {args.out}: {describe_stats(stats)}\n"
         f"reference: {stats.get('reference_description') or args.reference}")


def _add_relax(sub):
    p = sub.add_parser("relax", help="relaxations driven by the approximate model, recorded",
                       description="Relax each configuration with the approximate model in "
                       "LAMMPS while recording the adversarial measures against the reference "
                       "at every force evaluation; one HDF5 file per relaxation. Under "
                       "`mpirun -np N` the relaxations are spread over MPI sub-communicators.")
    p.add_argument("configs", help="dataset (.h5, a split of it) or structure file(s) ASE reads")
    p.add_argument("--approx", required=True, help="driving (approximate) model spec")
    p.add_argument("--reference", required=True, help="accurate model spec")
    p.add_argument("--min-style", choices=["fire", "cg", "sd"], default="fire", help="LAMMPS min_style (default fire)")
    p.add_argument("--min-modify", default="", help="options passed to LAMMPS min_modify, e.g. 'dmax 0.05'")
    p.add_argument("--steps", type=int, default=200, help="maximum minimizer steps (default 200)")
    p.add_argument("--ftol", type=float, default=1e-4, help="force tolerance in eV/A (default 1e-4)")
    p.add_argument("--frames-every", type=int, default=0, help="store frames every K records (default 0: none)")
    p.add_argument("--ranks-per-relax", type=int, default=1, help="MPI ranks per relaxation (default 1)")
    _add_align(p)
    p.add_argument("--split", default="test", help="dataset split to use, 'all' for every configuration (default test)")
    p.add_argument("--limit", type=int, default=None, help="use at most this many configurations")
    p.add_argument("-o", "--out", default="relax", help="output folder (default relax/)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace relaxation files already in the output folder")
    _add_label_cache(p)
    p.set_defaults(func=_run_relax)


def _run_relax(args):
    from lammps_adv.io.configs import load_configs
    from lammps_adv.experiments.relax import relax
    _apply_label_cache(args)
    configs = load_configs(args.configs, split=None if args.split == "all" else args.split,
                           limit=args.limit)
    relax(configs, args.approx, args.reference, out_dir=args.out, min_style=args.min_style,
          steps=args.steps, ftol=args.ftol, min_modify=args.min_modify,
          frames_every=args.frames_every, ranks_per_relax=args.ranks_per_relax,
          overwrite=args.overwrite, align=args.align)
    first = Path(args.out) / "relax_0000.h5"
    _say(f"wrote {len(configs)} relaxations to {args.out}/; {_alignment_line(first)}")


def _add_report(sub):
    p = sub.add_parser("report", help="tables, figures and report.md from result files",
                       description="Aggregate probe, relax and run HDF5 files (files or folders) "
                       "into CSV/Markdown tables, PNG figures and report.md.")
    p.add_argument("results", nargs="+", help="HDF5 files or folders holding them")
    p.add_argument("-o", "--out", default="report", help="output folder (default report/)")
    p.set_defaults(func=_run_report)


def _run_report(args):
    from lammps_adv.io.results import find_h5
    from lammps_adv.report.build import build_report
    _say(f"wrote {build_report(find_h5(args.results), args.out)}")


def _add_mitigate(sub):
    from lammps_adv.experiments.mitigate import MitigateSettings
    from lammps_adv.experiments.strategies import STRATEGIES
    d = MitigateSettings()
    p = sub.add_parser("mitigate", help="compare remedies (adversarial training, ...) on equal "
                       "label budgets",
                       description="Train a base model, then for every strategy and seed spend "
                       "the same budget of reference labels over rounds (pick configurations "
                       "with the current model, label them, retrain warm-started) and measure "
                       "the final model on a fixed evaluation set: energy/force RMSE, "
                       "cos(theta) statistics, the probe's extra error rise along A, "
                       "relaxation error growth. Writes OUT/mitigate.h5 and one .pt + model "
                       "card per model. Strategies: " + ", ".join(STRATEGIES) + ".")
    p.add_argument("base", help="base training dataset (.h5)")
    p.add_argument("--evaluation", required=True,
                   help="evaluation configurations no strategy trains on (dataset or structures)")
    p.add_argument("--pool", required=True,
                   help="reserve of thermal MD configurations for more-md / forces")
    p.add_argument("-o", "--out", default="out/mitigate", help="output folder (default out/mitigate)")
    p.add_argument("--model", choices=["bp", "gnn"], default=d.model, help="model kind (default bp)")
    p.add_argument("--strategies", default="all",
                   help="comma-separated strategies, or all (default all)")
    p.add_argument("--budget", type=int, default=d.budget,
                   help=f"reference labels per strategy, all rounds together (default {d.budget})")
    p.add_argument("--rounds", type=int, default=d.rounds, help=f"rounds (default {d.rounds})")
    p.add_argument("--seeds", type=_ints, default=list(d.seeds), help="seeds (default 0,1,2)")
    p.add_argument("--reference", default=d.reference, help="labelling calculator (default bks-dsf)")
    p.add_argument("--epsilon", type=float, default=d.epsilon,
                   help=f"distortion of the steps along A / F (A^2, default {d.epsilon})")
    from lammps_adv.core.adversarial import DISTORTIONS
    p.add_argument("--distortion", choices=DISTORTIONS, default=d.distortion,
                   help="epsilon over the cell or per atom (default per-atom)")
    p.add_argument("--committee", type=int, default=d.committee,
                   help=f"uncertainty: models in the committee (default {d.committee})")
    p.add_argument("--cutoff", type=float, default=None, help="model cutoff in A (default: the model's)")
    p.add_argument("--hidden", type=_ints, default=None, help="MLP widths, e.g. 16,16 (default: the model's)")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"base model epochs (default {d.epochs})")
    p.add_argument("--warm-epochs", type=int, default=d.warm_epochs,
                   help=f"epochs of each warm-started retraining (default {d.warm_epochs})")
    p.add_argument("--relaxations", type=int, default=d.relaxations,
                   help=f"recorded relaxations per model (default {d.relaxations})")
    p.add_argument("--relax-steps", type=int, default=d.relax_steps,
                   help=f"FIRE steps per relaxation (default {d.relax_steps})")
    p.add_argument("--probe-configs", type=int, default=d.probe_configs,
                   help=f"probe configurations per model (default {d.probe_configs})")
    p.set_defaults(func=_run_mitigate)


def _run_mitigate(args):
    from lammps_adv.experiments.mitigate import MitigateSettings, mitigate
    from lammps_adv.experiments.strategies import STRATEGIES
    names = STRATEGIES if args.strategies == "all" else tuple(
        x.strip() for x in args.strategies.split(",") if x.strip())
    s = MitigateSettings(model=args.model, strategies=names, budget=args.budget,
                         rounds=args.rounds, seeds=tuple(args.seeds), reference=args.reference,
                         epsilon=args.epsilon, distortion=args.distortion,
                         committee=args.committee, epochs=args.epochs,
                         warm_epochs=args.warm_epochs, relaxations=args.relaxations,
                         relax_steps=args.relax_steps, probe_configs=args.probe_configs,
                         model_kwargs={k: v for k, v in (("cutoff", args.cutoff),
                                                         ("hidden", args.hidden)) if v is not None})
    out = mitigate(args.base, args.evaluation, args.pool, args.out, s)
    _say(f"wrote {out}")


PARSERS = [_add_glass, _add_energy, _add_potentials, _add_dataset, _add_train, _add_run,
           _add_probe, _add_relax, _add_label, _add_mitigate, _add_report, _add_demo]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lammps-adv",
        description="Adversarial directions of physical models in LAMMPS runs "
                    "(metal units: eV, Angstrom, ps).")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in PARSERS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lammps_adv.core.errors import RunInterrupted, one_line
    try:
        args.func(args)
    except KeyboardInterrupt:
        print(f"lammps-adv {args.command}: interrupted (SIGINT)", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:  # one clear line, not a traceback (LAMMPSADV_DEBUG=1 shows it)
        if os.environ.get("LAMMPSADV_DEBUG"):
            raise
        msg = one_line(exc).removeprefix("ERROR: ")
        code = exc.exit_code if isinstance(exc, RunInterrupted) else 2
        from lammps_adv.parallel.mpi import is_root
        if not isinstance(exc, RunInterrupted) or is_root():   # every rank stops for a signal
            print(f"lammps-adv {args.command}: error: {msg}", file=sys.stderr, flush=True)
        if not isinstance(exc, RunInterrupted):   # a signal reaches every rank by itself
            from lammps_adv.parallel.mpi import abort_other_ranks
            abort_other_ranks(code)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
