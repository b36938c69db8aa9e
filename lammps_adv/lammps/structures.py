"""Silica structures: alpha-quartz supercells, melt-quenched glass, LAMMPS data / extxyz I/O.

Conventions shared with every deck and potential file: metal units, ``atom_style full`` (the
style MDAnalysis and other readers take for a LAMMPS data file without being told), LAMMPS
type 1 = Si, type 2 = O, with type labels ``Si`` and ``O``. Data files in ``atom_style
charge`` are still read.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.spacegroup import crystal

from lammps_adv.core.errors import StructureError
from lammps_adv.core.units import MASSES
from lammps_adv.io.resources import INPUTS
from lammps_adv.lammps.engine import open_lammps
from lammps_adv.lammps.snippets import get as get_potential
from lammps_adv.parallel.mpi import mpi_comm

SPECIES = ("Si", "O")
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660

# alpha-quartz, space group P3_221 (No. 154): Si on 3a (x, 0, 2/3), O on 6c, with the
# room-temperature fractional parameters of Levien et al., Am. Mineral. 65, 920 (1980).
QUARTZ_A, QUARTZ_C = 4.916, 5.405          # A
QUARTZ_SI_X = 0.4697
QUARTZ_O_XYZ = (0.4135, 0.2669, 0.1191 + 2.0 / 3.0)


def quartz(nx: int = 1, ny: int = 1, nz: int = 1, handedness: str = "right") -> Atoms:
    """alpha-quartz supercell of nx x ny x nz hexagonal cells (9 atoms each).

    handedness "right" is P3_221 (No. 154), "left" its mirror image P3_121 (No. 152).
    """
    if handedness == "right":
        sg, si, o = 154, (QUARTZ_SI_X, 0.0, 2.0 / 3.0), QUARTZ_O_XYZ
    elif handedness == "left":
        x, y, z = QUARTZ_O_XYZ
        sg, si, o = 152, (QUARTZ_SI_X, 0.0, 1.0 / 3.0), (x, y, 1.0 - z)
    else:
        raise StructureError(f"handedness must be 'right' or 'left', not {handedness!r}")
    cell = crystal(["Si", "O"], basis=[si, o], spacegroup=sg,
                   cellpar=[QUARTZ_A, QUARTZ_A, QUARTZ_C, 90, 90, 120], primitive_cell=True)
    return sort_species(cell.repeat((nx, ny, nz)))


def sort_species(atoms: Atoms) -> Atoms:
    """Si first, then O (a stable order, so atom IDs are reproducible)."""
    order = np.argsort([SPECIES.index(s) for s in atoms.get_chemical_symbols()], kind="stable")
    return atoms[order]


def density(atoms: Atoms) -> float:
    """Mass density in g/cm^3."""
    return float(atoms.get_masses().sum() / atoms.get_volume() * AMU_PER_A3_TO_G_PER_CM3)


def cell_of(boxlo, boxhi, xy, yz, xz) -> np.ndarray:
    """Cell vectors as rows from LAMMPS' box (``lmp.extract_box()``, lower-triangular)."""
    return np.array([[boxhi[0] - boxlo[0], 0.0, 0.0],
                     [xy, boxhi[1] - boxlo[1], 0.0],
                     [xz, yz, boxhi[2] - boxlo[2]]])


CLOSEST_PAIR_CUTOFF = 5.0      # A: beyond the second neighbours of silica (Si-Si 3.1 A)


def _pairs_within(positions, cell, cutoff: float, what: str = "d"):
    """ASE's neighbour list of a periodic cell (periodic images count, an atom with its own
    images included): the quantities ``what`` of every pair closer than ``cutoff`` (A)."""
    from ase.neighborlist import neighbor_list
    atoms = Atoms(numbers=np.ones(len(positions), dtype=int), positions=positions,
                  cell=cell, pbc=True)
    return neighbor_list(what, atoms, cutoff)


def min_pair_distance(positions, cell, cutoff: float = 3.0) -> float:
    """Smallest interatomic distance (A) in a periodic cell; ``inf`` when no pair is closer
    than ``cutoff``."""
    d = _pairs_within(positions, cell, cutoff)
    return float(d.min()) if len(d) else math.inf


def species_pair(a: str, b: str) -> str:
    """The name of a species pair: the two names sorted and joined by '-' ("O-Si")."""
    return "-".join(sorted((str(a), str(b))))


def species_pairs(names) -> list[str]:
    """Every species pair of the species in ``names``, sorted ("O-O", "O-Si", "Si-Si")."""
    kinds = sorted(set(map(str, names)))
    return [species_pair(a, b) for i, a in enumerate(kinds) for b in kinds[i:]]


def closest_pairs(positions, cell, names, cutoff: float = CLOSEST_PAIR_CUTOFF) -> dict:
    """{species pair: closest distance (A)} of a periodic cell, for every pair of the species
    in ``names`` (``species_pairs``); ``inf`` for a pair with no two atoms within
    ``cutoff``. Per species pair because a distance that is ordinary for Si-O (1.6 A) is a
    collapse for O-O or Si-Si."""
    kinds, index = np.unique(np.asarray(names, dtype=str), return_inverse=True)
    out = {species_pair(a, b): math.inf for a in kinds for b in kinds}
    i, j, d = _pairs_within(positions, cell, cutoff, "ijd")
    if len(d):
        a, b = index[i], index[j]
        code = np.minimum(a, b) * len(kinds) + np.maximum(a, b)
        best = np.full(len(kinds) ** 2, math.inf)
        np.minimum.at(best, code, d)
        for k in np.unique(code):
            out[species_pair(kinds[k // len(kinds)], kinds[k % len(kinds)])] = float(best[k])
    return {p: out[p] for p in sorted(out)}


def closest_pairs_of_set(configurations, cutoff: float = CLOSEST_PAIR_CUTOFF) -> dict:
    """{species pair: closest distance (A)} over configurations [(positions, cell, names)]:
    the smallest of each pair's closest distances; pairs never within ``cutoff`` left out."""
    best: dict = {}
    for positions, cell, names in configurations:
        for pair, d in closest_pairs(positions, cell, names, cutoff).items():
            best[pair] = min(d, best.get(pair, math.inf))
    return {p: d for p, d in sorted(best.items()) if math.isfinite(d)}


def cubic_box_length(n_atoms: int, rho: float) -> float:
    """Edge (A) of a cubic SiO2 box with n_atoms (a multiple of 3) at density rho (g/cm^3)."""
    check_n_atoms(n_atoms)
    mass = n_atoms // 3 * (MASSES["Si"] + 2 * MASSES["O"])
    return float((mass * AMU_PER_A3_TO_G_PER_CM3 / rho) ** (1.0 / 3.0))


def check_n_atoms(n_atoms: int) -> None:
    if (not isinstance(n_atoms, (int, np.integer)) or isinstance(n_atoms, bool)
            or n_atoms < 3 or n_atoms % 3):
        raise StructureError(f"SiO2 needs a number of atoms that is a positive multiple of 3, "
                             f"got {n_atoms}")


# ---------------------------------------------------------------- LAMMPS data files
def lammps_cell(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate a cell (rows a, b, c) into LAMMPS' lower-triangular form.

    Returns (new_cell, rotation) with new_cell = cell @ rotation.
    """
    a, b, c = np.asarray(cell, dtype=float)
    ax = np.linalg.norm(a)
    bx = b @ a / ax
    by = np.sqrt(b @ b - bx * bx)
    cx = c @ a / ax
    cy = (b @ c - bx * cx) / by
    cz = np.sqrt(c @ c - cx * cx - cy * cy)
    new = np.array([[ax, 0, 0], [bx, by, 0], [cx, cy, cz]])
    rotation = np.linalg.solve(np.asarray(cell, dtype=float), new)
    return new, rotation


def write_lammps_data(path: str | Path, atoms: Atoms, charges: dict | None = None,
                      type_labels: bool = True) -> Path:
    """Write a LAMMPS data file (atom_style full, molecule ID 0, masses). Types are always
    1 = Si, 2 = O; with type labels (default) the Masses and Atoms sections name them Si and
    O, so that readers such as MDAnalysis see element names. ``type_labels=False`` writes
    numbers only, for a LAMMPS that holds no labels (2021, or KOKKOS active)."""
    path = Path(path)
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(SPECIES))
    if unknown:
        raise StructureError(f"only Si and O are supported, got {unknown}")
    cell, rot = lammps_cell(atoms.cell.array)
    pos = atoms.get_positions() @ rot
    frac = np.linalg.solve(cell.T, pos.T).T % 1.0   # wrap into the box
    pos = frac @ cell
    charges = charges or {}
    lines = [f"# SiO2, {len(atoms)} atoms, written by lammps-adv", "",
             f"{len(atoms)} atoms", "2 atom types", "",
             f"0.0 {cell[0, 0]:.12f} xlo xhi", f"0.0 {cell[1, 1]:.12f} ylo yhi",
             f"0.0 {cell[2, 2]:.12f} zlo zhi"]
    if np.any(np.abs(cell[np.tril_indices(3, -1)]) > 1e-12):
        lines.append(f"{cell[1, 0]:.12f} {cell[2, 0]:.12f} {cell[2, 1]:.12f} xy xz yz")
    if type_labels:
        lines += ["", "Atom Type Labels", "", "1 Si", "2 O"]
    name = {s: (s if type_labels else str(SPECIES.index(s) + 1)) for s in SPECIES}
    lines += ["", "Masses", "", *(f"{name[s]} {MASSES[s]}" for s in SPECIES),
              "", "Atoms # full", ""]
    for i, (s, p) in enumerate(zip(symbols, pos), start=1):
        lines.append(f"{i} 0 {name[s]} {charges.get(s, 0.0)} "
                     f"{p[0]:.12f} {p[1]:.12f} {p[2]:.12f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# columns of an Atoms line (without image flags) -> atom style, where no comment names it
STYLE_OF_COLUMNS = {5: "atomic", 6: "charge", 7: "full"}
TYPE_COLUMN = {"atomic": 1, "charge": 1, "full": 2}


def _sections(lines: list[str]) -> dict[str, tuple[int, str]]:
    """Line index and header comment of each section a data file reader needs."""
    found = {}
    for i, line in enumerate(lines):
        head, _, comment = line.partition("#")
        if head.strip() in ("Atom Type Labels", "Masses", "Atoms"):
            found[head.strip()] = (i, comment.strip())
    return found


def _section_rows(lines: list[str], start: int):
    """Indices of the data rows of the section whose header is at ``start``."""
    i = start + 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    while i < len(lines) and lines[i].split("#")[0].strip():
        yield i
        i += 1


def data_atom_style(path: str | Path) -> str:
    """Atom style of a data file: the Atoms header's comment (as LAMMPS writes it), else
    from the number of columns (atomic, charge or full, image flags or not)."""
    return _atom_style(Path(path).read_text(), path)


def _atom_style(text: str, path) -> str:
    lines = text.splitlines()
    sections = _sections(lines)
    if "Atoms" not in sections:
        raise StructureError(f"{path}: no Atoms section")
    start, comment = sections["Atoms"]
    if comment:
        return comment.split()[0]
    row = next(_section_rows(lines, start), None)
    n = len(lines[row].split()) if row is not None else 0
    style = STYLE_OF_COLUMNS.get(n) or STYLE_OF_COLUMNS.get(n - 3)
    if style is None:
        raise StructureError(f"{path}: cannot tell the atom style of {n}-column Atoms lines; "
                             "name it after the header, e.g. 'Atoms # full'")
    return style


def _retype(text: str, style: str, to_labels: bool) -> str:
    """The data file with the types of its Masses and Atoms sections written as type labels
    or as numbers, by its Atom Type Labels section (unchanged without one). Numbers are what
    ASE's reader takes; labels in both sections are what MDAnalysis turns into type names
    (with masses). Nothing else of the file changes."""
    lines = text.splitlines()
    sections = _sections(lines)
    if "Atom Type Labels" not in sections:
        return text
    label_of = dict(lines[i].split()[:2] for i in _section_rows(lines, sections["Atom Type Labels"][0]))
    mapping = label_of if to_labels else {v: k for k, v in label_of.items()}
    for name, column in (("Masses", 0), ("Atoms", TYPE_COLUMN.get(style, 1))):
        for i in _section_rows(lines, sections.get(name, (len(lines), ""))[0]):
            cols = lines[i].split()
            cols[column] = mapping.get(cols[column], cols[column])
            lines[i] = " ".join(cols)
    return "\n".join(lines) + "\n"


def label_types(path: str | Path) -> Path:
    """Rewrite a data file that LAMMPS wrote (types as numbers, with an Atom Type Labels
    section) with Si/O in its Masses and Atoms sections; coordinates and velocities keep
    their text, so LAMMPS reads back the same numbers."""
    path = Path(path)
    text = path.read_text()
    path.write_text(_retype(text, _atom_style(text, path), to_labels=True))
    return path


def read_lammps_data(path: str | Path) -> Atoms:
    """Read a LAMMPS data file written by LAMMPS or by ``write_lammps_data`` (atom_style
    full or charge, types as numbers or labels)."""
    import io

    from ase.io import read
    path = Path(path)
    if not path.is_file():
        raise StructureError(f"data file not found: {path}")
    text = path.read_text()
    style = _atom_style(text, path)
    text = _retype(text, style, to_labels=False)
    atoms = read(io.StringIO(text), format="lammps-data", atom_style=style, units="metal",
                 Z_of_type={1: 14, 2: 8}, sort_by_id=True)
    atoms.set_initial_charges(None)
    return atoms


def read(path: str | Path) -> Atoms:
    """Read a structure: LAMMPS data (.data/.lmp) or anything ASE reads (extxyz, ...)."""
    path = Path(path)
    if path.suffix in (".data", ".lmp", ".lammps"):
        return read_lammps_data(path)
    from ase.io import read as ase_read
    if not path.is_file():
        raise StructureError(f"structure file not found: {path}")
    return ase_read(path)


def write(path: str | Path, atoms: Atoms) -> Path:
    """Write a structure: LAMMPS data for .data, else by ASE's format from the suffix."""
    path = Path(path)
    if path.suffix in (".data", ".lmp", ".lammps"):
        return write_lammps_data(path, atoms)
    from ase.io import write as ase_write
    path.parent.mkdir(parents=True, exist_ok=True)
    ase_write(path, atoms)
    return path


# ---------------------------------------------------------------- melt-quench glass
# What amorphous() (and `lammps-adv glass`) accepts; docs/potentials.md explains the choice.
# Density: SiO2 polymorphs span 1.9 (tridymite) to 4.3 g/cm^3 (stishovite); random insertion
# (atoms >= 1.6 A apart) places every atom up to 4.5 g/cm^3 and starts to fail above it.
GLASS_DENSITY = (1.0, 4.5)        # g/cm^3
GLASS_T_MELT = (300.0, 20000.0)   # K; above the 300 K the quench ends at
GLASS_TIME_PS = (0.001, 1.0e5)    # ps, melt and quench each: one 1 fs step to 100 ns
SEED_MAX = 2**31 - 2              # LAMMPS' Park-Miller seeds; the deck also uses seed + 1


def check_glass_parameters(n_atoms: int, rho: float, t_melt: float, melt_ps: float,
                           quench_ps: float, seed: int) -> None:
    """Raise StructureError naming the first parameter amorphous() cannot honour."""
    check_n_atoms(n_atoms)

    def in_range(name, value, lo, hi, unit, low_open=False):
        try:
            ok = math.isfinite(value) and (lo < value if low_open else lo <= value) and value <= hi
        except TypeError:
            ok = False
        if not ok:
            span = (f"above {lo:g} and at most {hi:g}" if low_open
                    else f"between {lo:g} and {hi:g}")
            raise StructureError(f"{name} must be {span} {unit}, got {value}")

    in_range("glass density", rho, *GLASS_DENSITY, "g/cm^3 (SiO2 polymorphs: 1.9 to 4.3)")
    in_range("melt temperature", t_melt, *GLASS_T_MELT, "K", low_open=True)
    in_range("melt time", melt_ps, *GLASS_TIME_PS, "ps")
    in_range("quench time", quench_ps, *GLASS_TIME_PS, "ps")
    if (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)
            or not 1 <= seed <= SEED_MAX):
        raise StructureError(f"seed must be an integer from 1 to {SEED_MAX}, got {seed}")


def amorphous(n_atoms: int = 192, rho: float = 2.20, potential: str = "bks-dsf",
              out: str | Path = "glass.data", seed: int = 12345, t_melt: float = 5000.0,
              melt_ps: float = 10.0, quench_ps: float = 20.0, comm=None,
              screen: bool = False) -> Atoms:
    """Amorphous silica by melt-quench in LAMMPS (``inputs/melt_quench.in``).

    Random insertion of n_atoms (a positive multiple of 3) in a cubic box at rho (g/cm^3,
    1.0 to 4.5), a hot NVT melt at t_melt (K, above 300 and at most 20000) for melt_ps, a
    linear quench to 300 K over quench_ps (each 0.001 to 1e5 ps), and a final minimization.
    Writes the LAMMPS data file ``out`` and returns the structure. Raises StructureError,
    before starting LAMMPS, for parameters outside these ranges, and when LAMMPS places fewer
    atoms than asked (naming both numbers); no ``out`` is written then.
    """
    check_glass_parameters(n_atoms, rho, t_melt, melt_ps, quench_ps, seed)
    pot = get_potential(potential)
    out = Path(out).resolve()
    before = out.stat().st_mtime_ns if out.is_file() else None
    out.parent.mkdir(parents=True, exist_ok=True)
    variables = {"N": n_atoms, "density": rho, "seed": seed, "T_melt": t_melt,
                 "melt_ps": melt_ps, "quench_ps": quench_ps, "out": str(out),
                 "potential_file": str(pot.snippet)}
    args = []
    for k, v in {**variables, **pot.variables}.items():
        args += ["-var", k, str(v)]
    lmp = open_lammps(comm=comm, screen=screen, args=args)
    try:
        try:
            lmp.file(str(INPUTS / "melt_quench.in"))
        except Exception as exc:
            placed, asked = (_lammps_number(lmp, v) for v in ("n_inserted", "n_asked"))
            if placed is not None and asked is not None and placed < asked:
                raise StructureError(
                    f"LAMMPS placed only {placed} of {n_atoms} atoms (random insertion at "
                    f"{rho} g/cm^3, atoms at least 1.6 A apart); lower the density; "
                    f"nothing written to {out}") from exc
            raise
        made = lmp.get_natoms()
    finally:
        lmp.close()
    comm = comm or mpi_comm()
    comm.Barrier()                        # rank 0 wrote ``out``
    if made != n_atoms or not out.is_file():      # the deck stops before this; never a short file
        if out.is_file() and out.stat().st_mtime_ns != before:
            out.unlink()
        raise StructureError(f"LAMMPS made {made} of {n_atoms} atoms; nothing written to {out}")
    if comm.Get_rank() == 0:
        label_types(out)                  # Si/O for readers such as MDAnalysis
    comm.Barrier()                        # every rank reads it next
    return read_lammps_data(out)


def _lammps_number(lmp, name: str) -> int | None:
    """An equal-style variable of the deck as an int, None when it is not defined (yet)."""
    try:
        value = lmp.extract_variable(name)
    except Exception:   # noqa: BLE001 - not defined, or the instance is unusable after an error
        return None
    return None if value is None else int(round(value))
