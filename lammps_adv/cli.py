"""``lammps-adv`` command line: thin wrappers over the library modules."""
from __future__ import annotations

import argparse
import os
import sys


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
    from lammps_adv.structures import amorphous, density
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
    from lammps_adv.structures import read
    from lammps_adv.system import LammpsSystem
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
    from lammps_adv import potentials
    entries = potentials.catalogue()       # placeholders (FILE) are described, never built
    width = max(len(name) for name, _ in entries)
    for name, description in entries:
        _say(f"{name:{width}s}  {description}")


def _add_demo(sub):
    p = sub.add_parser("demo", help="run the main job (the study at small scale)")
    p.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--scale", choices=["small", "full"], default="small",
                   help="small: 96-atom glass, about 10 min on 2 cores; full: 3000-atom glass, hours")
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
                        "temperatures and of alpha-quartz, labelled by the reference potential "
                        "(energies, forces, stress); frames `--stride` steps apart.")
    g.add_argument("-o", "--out", required=True, help="output dataset file (.h5)")
    g.add_argument("--reference", default="bks-dsf", help="potential spec (default bks-dsf)")
    g.add_argument("--glass-atoms", type=int, default=96, help="atoms per glass, 0: no glass (default 96)")
    g.add_argument("--glasses", type=int, default=1, help="independent glasses (default 1)")
    g.add_argument("--glass-temps", type=_floats, default=[300, 1000, 2000, 3000],
                   help="K, comma-separated (default 300,1000,2000,3000)")
    g.add_argument("--quartz", type=_ints, default=[2, 2, 2],
                   help="quartz supercell NXxNYxNZ, 0: none (default 2x2x2)")
    g.add_argument("--quartz-temps", type=_floats, default=[300, 900, 1500],
                   help="K, comma-separated (default 300,900,1500)")
    g.add_argument("--frames", type=int, default=20, help="frames per run (default 20)")
    g.add_argument("--stride", type=int, default=50, help="MD steps between frames (default 50)")
    g.add_argument("--equil", type=int, default=500, help="MD steps before the first frame (default 500)")
    g.add_argument("--timestep", type=float, default=0.001, help="ps (default 0.001)")
    g.add_argument("--melt-ps", type=float, default=5.0, help="glass melt time (default 5)")
    g.add_argument("--quench-ps", type=float, default=10.0, help="glass quench time (default 10)")
    g.add_argument("--split", type=_floats, default=[0.8, 0.1, 0.1],
                   help="train,validation,test fractions (default 0.8,0.1,0.1)")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=_run_dataset_generate)
    i = dsub.add_parser("import", help="dataset from extxyz / VASP OUTCAR / ... (through ASE)")
    i.add_argument("files", nargs="+", help="files with energies (and forces, stress)")
    i.add_argument("-o", "--out", required=True, help="output dataset file (.h5)")
    i.add_argument("--species", default="Si,O", help="species names in model order (default Si,O)")
    i.add_argument("--reference", default="DFT", help="what labelled the data (default DFT)")
    i.add_argument("--index", default=":", help="ASE frame selection (default all)")
    i.add_argument("--format", default=None, help="ASE format (default from the file name)")
    i.add_argument("--split", type=_floats, default=[0.8, 0.1, 0.1])
    i.add_argument("--seed", type=int, default=0)
    i.set_defaults(func=_run_dataset_import)
    n = dsub.add_parser("info", help="summary of a dataset file")
    n.add_argument("file")
    n.set_defaults(func=_run_dataset_info)


def _run_dataset_generate(args):
    from lammps_adv.training.dataset import generate
    q = args.quartz if args.quartz and any(args.quartz) else None
    if q is not None and len(q) != 3:
        raise ValueError(f"--quartz needs NXxNYxNZ, got {args.quartz}")
    ds = generate(args.out, reference=args.reference, glass_atoms=args.glass_atoms,
                  n_glasses=args.glasses, glass_temps=args.glass_temps, quartz_cells=q,
                  quartz_temps=args.quartz_temps, frames=args.frames, stride=args.stride,
                  equil=args.equil, timestep=args.timestep, seed=args.seed,
                  melt_ps=args.melt_ps, quench_ps=args.quench_ps, split=args.split,
                  progress=not args.quiet)
    _say(f"wrote {args.out}: {ds.summary()}")


def _run_dataset_import(args):
    from lammps_adv.training.dataset import import_ase
    ds = import_ase(args.files, args.out, species=args.species.split(","),
                    reference=args.reference, split=args.split, seed=args.seed,
                    index=args.index, fmt=args.format)
    _say(f"wrote {args.out}: {ds.summary()}")


def _run_dataset_info(args):
    from lammps_adv.training.dataset import load
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
    p.add_argument("--approx", default=None, help="name of the driving model (provenance only)")
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
    n = run_deck(args.deck, args.reference, out=args.out, every=args.every,
                 frames_every=args.frames_every, variables=variables, species=args.species,
                 append=args.append, overwrite=args.overwrite, approx=args.approx,
                 flush_every=args.flush_every,
                 flush_seconds=args.flush_seconds, progress=not args.quiet,
                 screen=args.screen, log=args.log,
                 command_line=" ".join(["lammps-adv"] + sys.argv[1:]))
    _say(f"recorded {n} rows to {args.out}")


def _say(msg: str) -> None:
    from lammps_adv.mpi import is_root
    if is_root():
        print(msg, flush=True)


def _add_probe(sub):
    p = sub.add_parser("probe", help="model error along the adversarial vs random directions",
                       description="For each configuration, displace along the adversarial "
                       "direction A and along random directions with total distortion epsilon "
                       "(sum of squared displacements, A^2) and record E_acc - E_app (eV) to HDF5.")
    p.add_argument("configs", help="dataset (.h5, a split of it) or structure file(s) ASE reads")
    p.add_argument("--approx", required=True, help="approximate model spec, e.g. torchscript:potentials/bp_bks_dsf.pt")
    p.add_argument("--reference", required=True, help="accurate model spec, e.g. bks-dsf")
    p.add_argument("--epsilon", type=_floats, default=[0.0, 0.1, 0.3, 0.5],
                   help="total distortions in A^2, comma-separated (default 0,0.1,0.3,0.5)")
    p.add_argument("--random", type=int, default=5, help="random directions per configuration (default 5)")
    p.add_argument("--split", default="test", help="dataset split to use, 'all' for every configuration (default test)")
    p.add_argument("--limit", type=int, default=None, help="use at most this many configurations")
    p.add_argument("--sampling", default="given configurations",
                   help="how the configurations were sampled, for the report's labels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", default="probe.h5", help="output HDF5 file (default probe.h5)")
    p.set_defaults(func=_run_probe)


def _run_probe(args):
    from lammps_adv.experiments.probe import load_configs, probe
    configs = load_configs(args.configs, split=None if args.split == "all" else args.split,
                           limit=args.limit)
    out = probe(configs, args.approx, args.reference, out=args.out, epsilons=args.epsilon,
                n_random=args.random, seed=args.seed, sampling=args.sampling)
    _say(f"wrote {out}: {len(configs)} configurations")


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
    p.add_argument("--split", default="test", help="dataset split to use, 'all' for every configuration (default test)")
    p.add_argument("--limit", type=int, default=None, help="use at most this many configurations")
    p.add_argument("-o", "--out", default="relax", help="output folder (default relax/)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace relaxation files already in the output folder")
    p.set_defaults(func=_run_relax)


def _run_relax(args):
    from lammps_adv.experiments.probe import load_configs
    from lammps_adv.experiments.relax import relax
    configs = load_configs(args.configs, split=None if args.split == "all" else args.split,
                           limit=args.limit)
    relax(configs, args.approx, args.reference, out_dir=args.out, min_style=args.min_style,
          steps=args.steps, ftol=args.ftol, min_modify=args.min_modify,
          frames_every=args.frames_every, ranks_per_relax=args.ranks_per_relax,
          overwrite=args.overwrite)
    _say(f"wrote {len(configs)} relaxations to {args.out}/")


def _add_report(sub):
    p = sub.add_parser("report", help="tables, figures and report.md from result files",
                       description="Aggregate probe, relax and run HDF5 files (files or folders) "
                       "into CSV/Markdown tables, PNG figures and report.md.")
    p.add_argument("results", nargs="+", help="HDF5 files or folders holding them")
    p.add_argument("-o", "--out", default="report", help="output folder (default report/)")
    p.set_defaults(func=_run_report)


def _run_report(args):
    from lammps_adv.analysis import build_report, find_h5
    _say(f"wrote {build_report(find_h5(args.results), args.out)}")


PARSERS = [_add_glass, _add_energy, _add_potentials, _add_dataset, _add_train, _add_run,
           _add_probe, _add_relax, _add_report, _add_demo]


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
    from lammps_adv.errors import RunInterrupted
    try:
        args.func(args)
    except KeyboardInterrupt:
        print(f"lammps-adv {args.command}: interrupted (SIGINT)", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:  # one clear line, not a traceback (LAMMPSADV_DEBUG=1 shows it)
        if os.environ.get("LAMMPSADV_DEBUG"):
            raise
        msg = (" ".join(str(exc).split()) or type(exc).__name__).removeprefix("ERROR: ")
        code = exc.exit_code if isinstance(exc, RunInterrupted) else 2
        print(f"lammps-adv {args.command}: error: {msg}", file=sys.stderr, flush=True)
        if not isinstance(exc, RunInterrupted):   # a signal reaches every rank by itself
            from lammps_adv.mpi import abort_other_ranks
            abort_other_ranks(code)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
