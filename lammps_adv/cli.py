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
    p.add_argument("-n", "--atoms", type=int, default=192, help="number of atoms, a multiple of 3 (default 192)")
    p.add_argument("--density", type=float, default=2.20, help="g/cm^3 (default 2.20)")
    p.add_argument("--potential", default="bks-dsf", help="potential spec (default bks-dsf; see `lammps-adv potentials`)")
    p.add_argument("--t-melt", type=float, default=5000.0, help="melt temperature in K (default 5000)")
    p.add_argument("--melt-ps", type=float, default=10.0, help="melt time in ps (default 10)")
    p.add_argument("--quench-ps", type=float, default=20.0, help="quench time in ps (default 20)")
    p.add_argument("--seed", type=int, default=12345)
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
    p = sub.add_parser("potentials", help="list the potentials of the catalogue")
    p.set_defaults(func=_run_potentials)


def _run_potentials(args):
    from lammps_adv import potentials
    for name in potentials.names():
        if ":" in name and name.split(":")[1].isupper():
            _say(f"{name:14s} (any file)")
        else:
            _say(f"{name:14s} {potentials.get(name).description}")


def _add_demo(sub):
    p = sub.add_parser("demo", help="run the main job (the study at small scale)")
    p.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--scale", choices=["small", "full"], default="small",
                   help="small: 192-atom cells, minutes on 2 cores; full: 3000 atoms")
    p.set_defaults(func=_run_demo)


def _run_demo(args):
    from lammps_adv.demo import run_demo
    run_demo(out=args.out, scale=args.scale)


def _say(msg: str) -> None:
    from lammps_adv.engine import is_root
    if is_root():
        print(msg, flush=True)


PARSERS = [_add_glass, _add_energy, _add_potentials, _add_demo]


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
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("lammps-adv: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line, not a traceback (LAMMPSADV_DEBUG=1 shows it)
        if os.environ.get("LAMMPSADV_DEBUG"):
            raise
        msg = " ".join(str(exc).split()) or type(exc).__name__
        msg = msg.removeprefix("ERROR: ")
        print(f"lammps-adv {args.command}: error: {msg}", file=sys.stderr, flush=True)
        _abort_other_ranks()
        return 2
    return 0


def _abort_other_ranks() -> None:
    """Under mpirun an error on one rank must not leave the others waiting forever."""
    if "mpi4py.MPI" in sys.modules:
        from mpi4py import MPI
        if MPI.Is_initialized() and not MPI.Is_finalized() and MPI.COMM_WORLD.Get_size() > 1:
            MPI.COMM_WORLD.Abort(2)


if __name__ == "__main__":
    sys.exit(main())
