"""Reference (accurate) models behind one interface: energy + forces of a configuration.

Spec strings (``get_reference``):
  bks, bks:pppm, bks-dsf, lammps:FILE   a potential of the catalogue (lammps_adv.potentials),
                                        run in a private LAMMPS instance on the same MPI
                                        communicator as the caller
  torchscript:FILE.pt                   a TorchScript model of the design.md contract,
                                        evaluated in-process (PyTorch, float64) on rank 0
  xtb:GFN1 | xtb:GFN2                   GFN-xTB through tblite's ASE calculator (rank 0;
                                        ``pip install 'lammps-adv[xtb]'``)
  ase:MODULE:CLASS                      any ASE calculator class built without arguments,
                                        e.g. ``ase:ase.calculators.emt:EMT`` (rank 0)

Interface (``Reference``): ``setup(symbols)`` once with the element of every atom (atom-ID
order), then ``evaluate(positions, cell)`` -> ``(energy_eV, forces_eV_per_A [N,3])``.
``evaluate`` is collective over the communicator: every rank calls it; positions and cell
are only read on rank 0, and the result is only returned on rank 0 (None elsewhere).
Positions are Cartesian (A) of one periodic cell whose edge vectors are the rows of
``cell`` (any origin: a periodic system does not depend on it).

The element of each LAMMPS atom type (``type_elements``) comes from its type label
(``labelmap`` or a data file's "Atom Type Labels") when every type has a label that is an
element symbol, else from an explicit species list, else from the per-type masses.
"""
from __future__ import annotations

import hashlib
import importlib
import os
import re
import tempfile
from pathlib import Path

import numpy as np


class ReferenceError(ValueError):
    """A reference model could not be set up or evaluated; the message says why."""


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _chemical_symbols():
    from ase.data import chemical_symbols
    return chemical_symbols


def normalize_symbol(name: str) -> str | None:
    """'si' / 'SI' / 'Si' -> 'Si'; None if not an element symbol."""
    name = str(name).strip()
    if not name:
        return None
    cand = name[0].upper() + name[1:].lower()
    syms = _chemical_symbols()
    return cand if cand in syms[1:] else None


def element_from_mass(mass: float, tol: float = 0.5) -> str | None:
    from ase.data import atomic_masses
    syms = _chemical_symbols()
    diff = np.abs(np.asarray(atomic_masses[1:]) - float(mass))
    i = int(np.argmin(diff))
    return syms[i + 1] if diff[i] <= tol else None


def _comm_of(lmp, comm=None):
    if comm is not None:
        return comm
    try:
        c = lmp.get_mpi_comm()
        if c is not None:
            return c
    except Exception:
        pass
    from lammps_adv.engine import mpi_comm
    return mpi_comm()


def type_labels(lmp, comm=None) -> dict[int, str]:
    """Atom type labels of a LAMMPS instance ({type: label}; empty when none are set)."""
    comm = _comm_of(lmp, comm)
    rank = comm.Get_rank()
    path = None
    if rank == 0:
        fd, path = tempfile.mkstemp(suffix=".labelmap")
        os.close(fd)
    path = comm.bcast(path, root=0)
    labels = {}
    try:
        lmp.command(f"labelmap write {path}")
        if rank == 0:
            text = Path(path).read_text()
            for line in text.splitlines():
                if line.startswith("labelmap atom"):
                    for m in re.finditer(r'(\d+)\s+(?:"""\s*(.*?)\s*"""|(\S+))', line[len("labelmap atom"):]):
                        labels[int(m.group(1))] = m.group(2) if m.group(2) is not None else m.group(3)
    finally:
        if rank == 0 and path and os.path.exists(path):
            os.unlink(path)
    return comm.bcast(labels, root=0)


def type_elements(lmp, species=None, comm=None) -> tuple[dict[int, str], str]:
    """Element of every LAMMPS atom type: ({type: symbol}, source) with source one of
    'labels', 'species', 'masses'. Raises ReferenceError when it cannot be decided."""
    ntypes = int(lmp.extract_global("ntypes"))
    labels = type_labels(lmp, comm)
    if labels and all(normalize_symbol(labels.get(t, "")) for t in range(1, ntypes + 1)):
        return {t: normalize_symbol(labels[t]) for t in range(1, ntypes + 1)}, "labels"
    if species:
        species = list(species)
        if len(species) != ntypes:
            raise ReferenceError(f"--species names {len(species)} elements ({' '.join(species)}) "
                                 f"but the system has {ntypes} atom types")
        out = {}
        for t, s in enumerate(species, start=1):
            sym = normalize_symbol(s)
            if sym is None:
                raise ReferenceError(f"--species: {s!r} is not an element symbol")
            out[t] = sym
        return out, "species"
    masses = lmp.numpy.extract_atom("mass")
    out = {}
    for t in range(1, ntypes + 1):
        m = float(masses[t]) if masses is not None else 0.0
        sym = element_from_mass(m)
        if sym is None:
            raise ReferenceError(f"cannot tell the element of atom type {t} (mass {m}): give type "
                                 "labels (labelmap) or --species")
        out[t] = sym
    return out, "masses"


# ---------------------------------------------------------------------------- interface
class Reference:
    """Energy + forces of a periodic configuration (see the module docstring)."""

    spec: str = ""
    description: str = ""
    species: tuple | None = None       # elements it can evaluate; None: any

    def __init__(self, comm=None):
        if comm is None:
            from lammps_adv.engine import mpi_comm
            comm = mpi_comm()
        self.comm = comm
        self.symbols: list[str] | None = None

    @property
    def rank(self) -> int:
        return self.comm.Get_rank()

    def check_species(self, symbols) -> None:
        if self.species is None:
            return
        missing = sorted(set(symbols) - set(self.species))
        if missing:
            raise ReferenceError(f"reference {self.spec!r} covers the elements "
                                 f"{', '.join(self.species)}; the system also has "
                                 f"{', '.join(missing)}")

    def setup(self, symbols) -> None:
        symbols = [str(s) for s in symbols]
        self.check_species(symbols)
        self.symbols = symbols

    def evaluate(self, positions, cell):
        raise NotImplementedError

    def hashes(self) -> dict:
        """{file: sha256} of the model files it depends on."""
        return {}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SerialReference(Reference):
    """A reference computed on rank 0 only (TorchScript, ASE)."""

    def evaluate(self, positions, cell):
        if self.symbols is None:
            raise ReferenceError("reference used before setup(symbols)")
        if self.rank != 0:
            return None
        pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        if len(pos) != len(self.symbols):
            raise ReferenceError(f"{len(pos)} positions for {len(self.symbols)} atoms")
        e, f = self._evaluate(pos, np.asarray(cell, dtype=np.float64).reshape(3, 3))
        return float(e), np.asarray(f, dtype=np.float64).reshape(-1, 3)

    def _evaluate(self, pos, cell):
        raise NotImplementedError


# ---------------------------------------------------------------------------- LAMMPS
def lammps_box(cell) -> tuple:
    """(lx, ly, lz, xy, xz, yz) of a cell given as rows a, b, c in LAMMPS' lower-triangular
    form (a along x, b in the xy plane)."""
    c = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    if abs(c[0, 1]) > 1e-9 * abs(c[0, 0]) or abs(c[0, 2]) > 1e-9 * abs(c[0, 0]) \
            or abs(c[1, 2]) > 1e-9 * abs(c[1, 1]):
        raise ReferenceError("cell is not in LAMMPS' lower-triangular form (rotate it first)")
    return tuple(float(v) for v in (c[0, 0], c[1, 1], c[2, 2], c[1, 0], c[2, 0], c[2, 1]))


def wrap_positions(positions, cell) -> np.ndarray:
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    frac = np.asarray(positions, dtype=np.float64) @ np.linalg.inv(cell)
    frac -= np.floor(frac)
    frac[frac >= 1.0] = 0.0
    return frac @ cell


class LammpsReference(Reference):
    """A potential of the catalogue evaluated in a private LAMMPS instance (collective).

    Built lazily on the first evaluation (a ``LammpsSystem`` with atom IDs 1..N in the
    caller's atom order); per evaluation the box is updated when it changed, positions are
    scattered and ``run 0`` computes energy and forces.
    """

    def __init__(self, spec: str, comm=None):
        super().__init__(comm)
        from lammps_adv.potentials import PotentialError, get
        try:
            self.potential = get(spec)
        except PotentialError as exc:
            raise ReferenceError(str(exc)) from None
        self.spec = spec
        self.description = self.potential.description
        self.species = tuple(self.potential.species)
        self.system = None
        self._box = None

    def hashes(self) -> dict:
        return {str(self.potential.snippet): file_sha256(self.potential.snippet)}

    def _build(self, positions, cell, box):
        from ase import Atoms
        from lammps_adv.system import LammpsSystem
        self.close()
        atoms = Atoms(self.symbols, positions=positions, cell=cell, pbc=True)
        self.system = LammpsSystem(atoms, self.potential, comm=self.comm)
        self.system.set_cell(cell)       # the exact box (the data file holds 12 decimals)
        # single points rebuild the neighbour list every time: a small skin is cheapest
        self.system.lmp.command("neighbor 1.0 bin")
        if self.system.natoms != len(self.symbols):
            raise ReferenceError(f"reference {self.spec}: created {self.system.natoms} of "
                                 f"{len(self.symbols)} atoms")
        self._box = box

    def evaluate(self, positions, cell):
        if self.symbols is None:
            raise ReferenceError("reference used before setup(symbols)")
        comm = self.comm
        n = len(self.symbols)
        if comm.Get_size() > 1:
            if self.rank == 0:
                data = np.concatenate([np.asarray(cell, dtype=np.float64).reshape(-1),
                                       np.asarray(positions, dtype=np.float64).reshape(-1)])
            else:
                data = np.empty(9 + 3 * n)
            comm.Bcast(data, root=0)
            cell, positions = data[:9].reshape(3, 3), data[9:].reshape(n, 3)
        cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
        box = lammps_box(cell)
        x = wrap_positions(np.asarray(positions).reshape(n, 3), cell)
        tri = any(abs(t) > 0 for t in box[3:])
        if self.system is None or tri != any(abs(t) > 0 for t in self._box[3:]):
            self._build(x, cell, box)
        elif box != self._box:
            self.system.set_cell(cell)   # no remap: positions are scattered next
            self._box = box
        self.system.set_positions(x)
        energy, forces = self.system.energy_forces()
        if self.rank != 0:
            return None
        return energy, forces

    def close(self) -> None:
        if self.system is not None:
            self.system.close()
            self.system = None


# ---------------------------------------------------------------------------- TorchScript
class TorchScriptReference(SerialReference):
    """A TorchScript model of the design.md contract, evaluated in-process on rank 0.

    The periodic graph is built with ``lammps_adv.models.graph.periodic_graph`` (images within
    the receptive field; edges centred on images too when receptive_field > cutoff); the
    energy is the sum of the per-atom energies of the N cell atoms; forces are the negative
    gradient with respect to all positions, images folded back onto their atoms.
    """

    def __init__(self, path, comm=None):
        super().__init__(comm)
        self.path = Path(path).resolve()
        if not self.path.is_file():
            raise ReferenceError(f"TorchScript model not found: {self.path}")
        self.spec = f"torchscript:{path}"
        self.model = None
        import torch
        import warnings
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                model = torch.jit.load(str(self.path), map_location="cpu")
        except Exception as exc:
            raise ReferenceError(f"cannot load TorchScript model {self.path}: {exc}") from None
        for attr in ("cutoff", "species"):
            if not hasattr(model, attr):
                raise ReferenceError(f"TorchScript model {self.path.name} lacks attribute "
                                     f"{attr!r} (see the model contract in design.md)")
        self.model = model
        self.cutoff = float(model.cutoff)
        self.receptive_field = float(getattr(model, "receptive_field", self.cutoff)
                                     if hasattr(model, "receptive_field") else self.cutoff)
        self.species = tuple(normalize_symbol(s) or s for s in model.species)
        self.description = f"TorchScript model {self.path.name}"

    def hashes(self) -> dict:
        return {str(self.path): file_sha256(self.path)}

    def _evaluate(self, pos, cell):
        import torch
        from lammps_adv.models.graph import periodic_graph
        n = len(pos)
        halo = max(self.receptive_field, self.cutoff)
        ext, image_of, edges = periodic_graph(pos, cell, self.cutoff, halo=halo,
                                              ghost_edges=halo > self.cutoff)
        spec_idx = np.array([self.species.index(s) for s in self.symbols], dtype=np.int64)
        x = torch.tensor(ext, dtype=torch.float64, requires_grad=True)
        e_atoms = self.model(x, torch.from_numpy(spec_idx[image_of]),
                             torch.from_numpy(np.ascontiguousarray(edges, dtype=np.int64)), n)
        energy = e_atoms[:n].sum()
        (grad,) = torch.autograd.grad(energy, x)
        forces = np.zeros((n, 3))
        np.add.at(forces, image_of, -grad.detach().numpy())
        return float(energy.detach()), forces


# ---------------------------------------------------------------------------- ASE
class AseReference(SerialReference):
    """Any ASE calculator (rank 0), e.g. GFN-xTB through tblite. Periodic in 3D."""

    def __init__(self, spec: str, calculator_factory, description: str, comm=None):
        super().__init__(comm)
        self.spec = spec
        self.description = description
        self._factory = calculator_factory
        self.calc = None

    def _evaluate(self, pos, cell):
        from ase import Atoms
        if self.calc is None:
            self.calc = self._factory()
        atoms = Atoms(self.symbols, positions=pos, cell=cell, pbc=True)
        atoms.calc = self.calc
        try:
            return atoms.get_potential_energy(), atoms.get_forces()
        except Exception as exc:
            raise ReferenceError(f"reference {self.spec} failed: {exc}") from None


def _xtb_factory(method: str):
    try:
        from tblite.ase import TBLite
    except ImportError:
        raise ReferenceError("xtb references need tblite: pip install 'lammps-adv[xtb]'") from None

    def make():
        return TBLite(method=method, verbosity=0)
    return make


XTB_METHODS = {"GFN1": "GFN1-xTB", "GFN2": "GFN2-xTB", "GFN1-XTB": "GFN1-xTB", "GFN2-XTB": "GFN2-xTB"}


def names() -> list[str]:
    from lammps_adv import potentials
    out = [n for n in potentials.names() if not n.startswith("torchscript:")]
    return out + ["torchscript:FILE.pt", "xtb:GFN1", "xtb:GFN2", "ase:MODULE:CLASS"]


def get_reference(spec: str, comm=None) -> Reference:
    """Build the reference model named by a spec string (see the module docstring)."""
    if not isinstance(spec, str) or not spec:
        raise ReferenceError(f"empty reference spec; known: {', '.join(names())}")
    if spec.startswith("torchscript:"):
        return TorchScriptReference(spec.split(":", 1)[1], comm=comm)
    if spec.startswith("xtb:"):
        method = XTB_METHODS.get(spec.split(":", 1)[1].upper())
        if method is None:
            raise ReferenceError(f"unknown xtb method in {spec!r}: use xtb:GFN1 or xtb:GFN2")
        return AseReference(spec, _xtb_factory(method), f"{method} (tblite)", comm=comm)
    if spec.startswith("ase:"):
        parts = spec.split(":")
        if len(parts) != 3:
            raise ReferenceError(f"ase reference spec must be ase:MODULE:CLASS, got {spec!r}")
        try:
            cls = getattr(importlib.import_module(parts[1]), parts[2])
        except (ImportError, AttributeError) as exc:
            raise ReferenceError(f"cannot import ASE calculator {parts[1]}.{parts[2]}: {exc}") from None
        return AseReference(spec, cls, f"ASE calculator {parts[1]}.{parts[2]}", comm=comm)
    try:
        return LammpsReference(spec, comm=comm)
    except ReferenceError as exc:
        raise ReferenceError(f"unknown reference spec {spec!r}; known: {', '.join(names())}"
                             if "unknown potential" in str(exc) else str(exc)) from None
