"""Every energy model behind one small interface: energy + forces of a configuration.

Spec strings (``get_calculator``):
  bks, bks:pppm, bks-dsf, lammps:FILE   a potential of the catalogue (lammps_adv.potentials),
                                        run in a private LAMMPS instance on the communicator
  torchscript:FILE.pt                   a TorchScript model of the design.md contract,
                                        evaluated in-process (PyTorch, float64)
  xtb:GFN1 | xtb:GFN2[:accuracy=A][:etemp=K][:maxiter=N]
                                        GFN-xTB through tblite (rank 0), labels cached on
                                        disk (lammps_adv.experiments.label_cache)
  ase:MODULE:CLASS                      any ASE calculator class built without arguments,
                                        e.g. ``ase:ase.calculators.emt:EMT``
  labels:FILE.h5                        energies and forces stored in a dataset file

The interface (``Calculator``), as ASE's calculators share theirs:

* ``evaluate(positions, cell, symbols=None, label=None) -> (energy_eV, forces_eV_per_A)``
  with positions [N, 3] (A, Cartesian, any origin) of one periodic cell whose edge vectors
  are the rows of ``cell``. ``symbols`` (element of every atom) is needed once, or whenever
  it changes; ``label`` names the configuration in error messages.
* Collective over the calculator's communicator: every rank calls it, inputs are read on
  rank 0, and the result is returned on every rank.
* Results are cached per configuration (symbols, cell and positions, bit for bit): asking
  again for the last configuration computes nothing.
* Every result is validated here, in ``_validated``, whatever the model: a finite energy,
  forces of shape [N, 3] that are all finite, returned as float64. A failure raises
  ``CalculatorError`` naming the model and the configuration.

A backend implements one method, ``compute(positions, cell) -> (energy, forces)``, with
``self.symbols`` set. Backends that run on rank 0 only (TorchScript, ASE, stored labels)
keep ``collective = False``; LAMMPS runs on every rank of the communicator
(``collective = True``).
"""
from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

import numpy as np

from lammps_adv.elements import normalize_symbol
from lammps_adv.errors import CalculatorError, PotentialError, one_line
from lammps_adv.mpi import mpi_comm


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def config_key(symbols, positions, cell) -> str:
    """Hash of a configuration (bit-exact): the cache key of calculators and label stores."""
    h = hashlib.blake2b(digest_size=16)
    h.update(" ".join(symbols).encode())
    h.update(np.ascontiguousarray(cell, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(positions, dtype=np.float64).tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------- interface
class Calculator:
    """Energy + forces of periodic configurations (see the module docstring)."""

    spec: str = ""
    description: str = ""
    species: tuple | None = None       # elements it can evaluate; None: any
    collective: bool = False           # True: every rank takes part in compute()

    def __init__(self, comm=None):
        self.comm = comm if comm is not None else mpi_comm()
        self.symbols: list[str] | None = None
        self.n_computed = 0            # evaluations that were not cache hits
        self._cache = (None, None)     # (key, (energy, forces))

    @property
    def rank(self) -> int:
        return self.comm.Get_rank()

    def check_species(self, symbols) -> None:
        if self.species is None:
            return
        missing = sorted(set(symbols) - set(self.species))
        if missing:
            raise CalculatorError(f"{self.spec} covers the elements {', '.join(self.species)}; "
                                  f"the system also has {', '.join(missing)}")

    def setup(self, symbols) -> None:
        """Element of every atom (rank 0's list counts; call it on every rank)."""
        symbols = [str(s) for s in symbols]
        self.check_species(symbols)
        self.symbols = symbols

    # -------------------------------------------------------------- the one entry point
    def evaluate(self, positions, cell, symbols=None, label=None):
        comm = self.comm
        parallel = comm.Get_size() > 1
        head = None
        if self.rank == 0:
            if symbols is not None and (self.symbols is None or list(symbols) != self.symbols):
                self.setup(symbols)
            head = self._inputs(positions, cell, label)
        pos = cell = None
        if self.rank == 0 and not isinstance(head, CalculatorError):
            *head, pos, cell = head        # the arrays travel only if a collective compute needs them
        if parallel:
            head = comm.bcast(head, root=0)
        if isinstance(head, CalculatorError):
            raise head
        key, new_symbols, label = head
        if new_symbols is not None and self.rank != 0:
            self.symbols = new_symbols
        if key == self._cache[0]:
            e, f = self._cache[1]
            return e, f.copy()
        if self.collective and parallel:
            if self.rank != 0:
                pos, cell = np.empty((len(self.symbols), 3)), np.empty((3, 3))
            comm.Bcast(pos, root=0)
            comm.Bcast(cell, root=0)
        result = err = None
        if self.collective or self.rank == 0:
            try:
                result = self.compute(pos, cell)
                self.n_computed += 1
            except Exception as exc:  # noqa: BLE001 - any backend failure, named here
                msg = one_line(exc).removeprefix(f"{self.spec}: ")
                err = CalculatorError(f"{self.spec} failed on {label}: {msg}")
            else:
                if self.rank == 0:
                    try:
                        result = self._validated(result, label)
                    except CalculatorError as exc:
                        err = exc
        if parallel:
            err = comm.bcast(err if self.rank == 0 else None, root=0)
        if err is not None:
            raise err
        if parallel:
            result = comm.bcast(result if self.rank == 0 else None, root=0)
        self._cache = (key, result)
        return result[0], result[1].copy()

    def _inputs(self, positions, cell, label):
        """Rank 0: checked inputs (key, symbols to share, label, positions, cell), or the
        error to raise on every rank."""
        if self.symbols is None:
            return CalculatorError(f"{self.spec}: evaluate() needs the element of every atom "
                                   "(symbols=... or setup())")
        try:
            pos = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 3)
            cell = np.ascontiguousarray(cell, dtype=np.float64).reshape(3, 3)
        except (TypeError, ValueError) as exc:
            return CalculatorError(f"{self.spec}: positions must be [N, 3] and the cell 3x3 "
                                   f"(A): {one_line(exc)}")
        label = label or describe(self.symbols, pos, cell)
        if len(pos) != len(self.symbols):
            return CalculatorError(f"{self.spec} on {label}: {len(pos)} positions for "
                                   f"{len(self.symbols)} atoms")
        if not (np.isfinite(pos).all() and np.isfinite(cell).all()):
            return CalculatorError(f"{self.spec} on {label}: non-finite positions or cell")
        if abs(np.linalg.det(cell)) < 1e-6:
            return CalculatorError(f"{self.spec} on {label}: the cell has no volume")
        key = config_key(self.symbols, pos, cell)
        shared = getattr(self, "_shared_symbols", None)
        new = None if shared is self.symbols else self.symbols
        self._shared_symbols = self.symbols
        return key, new, label, pos, cell

    def _validated(self, result, label):
        """The one place where every model's result is checked (see the module docstring)."""
        n = len(self.symbols)
        where = f"{self.spec} on {label}"
        try:
            energy, forces = result
        except (TypeError, ValueError):
            raise CalculatorError(f"{where}: returned {type(result).__name__}, "
                                  "expected (energy, forces)") from None
        e = np.asarray(energy)
        if e.size != 1 or not np.issubdtype(e.dtype, np.number) or np.iscomplexobj(e):
            raise CalculatorError(f"{where}: energy must be one real number (eV), got shape "
                                  f"{list(e.shape)} of {e.dtype}")
        e = float(e.reshape(()))
        if not np.isfinite(e):
            raise CalculatorError(f"{where}: energy is {e}")
        f = np.asarray(forces)
        if f.shape != (n, 3):
            raise CalculatorError(f"{where}: forces have shape {list(f.shape)}, expected [{n}, 3]")
        if not np.issubdtype(f.dtype, np.number) or np.iscomplexobj(f):
            raise CalculatorError(f"{where}: forces must be real numbers, got {f.dtype}")
        f = np.array(f, dtype=np.float64)
        bad = ~np.isfinite(f)
        if bad.any():
            atoms = np.flatnonzero(bad.any(axis=1))
            raise CalculatorError(f"{where}: forces are not finite on {len(atoms)} of {n} atoms "
                                  f"(first: atom {atoms[0]}, {f[atoms[0]].tolist()})")
        return e, f

    # -------------------------------------------------------------- for backends
    def compute(self, positions, cell):
        """Backends: (energy eV, forces eV/A [N, 3]) of one configuration, self.symbols set."""
        raise NotImplementedError

    def hashes(self) -> dict:
        """{file: sha256} of the model files it depends on (provenance)."""
        return {}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def describe(symbols, positions, cell) -> str:
    """A configuration in words: 'configuration of 96 atoms (Si32 O64, cell 10.2 x ... A,
    id 3f2a9c01)' - what error messages name when the caller gives no label."""
    from collections import Counter
    counts = " ".join(f"{s}{c}" for s, c in sorted(Counter(symbols).items()))
    lengths = " x ".join(f"{x:.3g}" for x in np.linalg.norm(cell, axis=1))
    return (f"configuration of {len(symbols)} atoms ({counts}, cell {lengths} A, "
            f"id {config_key(symbols, positions, cell)[:8]})")


# ---------------------------------------------------------------------------- LAMMPS
def lammps_box(cell) -> tuple:
    """(lx, ly, lz, xy, xz, yz) of a cell given as rows a, b, c in LAMMPS' lower-triangular
    form (a along x, b in the xy plane)."""
    c = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    if abs(c[0, 1]) > 1e-9 * abs(c[0, 0]) or abs(c[0, 2]) > 1e-9 * abs(c[0, 0]) \
            or abs(c[1, 2]) > 1e-9 * abs(c[1, 1]):
        raise CalculatorError("cell is not in LAMMPS' lower-triangular form (rotate it first)")
    return tuple(float(v) for v in (c[0, 0], c[1, 1], c[2, 2], c[1, 0], c[2, 0], c[2, 1]))


def wrap_positions(positions, cell) -> np.ndarray:
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    frac = np.asarray(positions, dtype=np.float64) @ np.linalg.inv(cell)
    frac -= np.floor(frac)
    frac[frac >= 1.0] = 0.0
    return frac @ cell


class LammpsCalculator(Calculator):
    """A potential of the catalogue in a private LAMMPS instance (collective).

    Built lazily on the first evaluation (a ``LammpsSystem`` with atom IDs 1..N in the
    caller's atom order); per evaluation the box is updated when it changed, positions are
    scattered and ``run 0`` computes energy and forces.
    """
    collective = True

    def __init__(self, spec: str, comm=None):
        super().__init__(comm)
        from lammps_adv.potentials import get
        try:
            self.potential = get(spec)
        except PotentialError as exc:
            raise CalculatorError(str(exc)) from None
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
            raise CalculatorError(f"{self.spec}: LAMMPS created {self.system.natoms} of "
                                  f"{len(self.symbols)} atoms")
        self._box = box

    def compute(self, positions, cell):
        box = lammps_box(cell)
        x = wrap_positions(positions, cell)
        tri = any(abs(t) > 0 for t in box[3:])
        if self.system is None or tri != any(abs(t) > 0 for t in self._box[3:]):
            self._build(x, cell, box)
        elif box != self._box:
            self.system.set_cell(cell)   # no remap: positions are scattered next
            self._box = box
        self.system.set_positions(x)
        return self.system.energy_forces()

    def close(self) -> None:
        if self.system is not None:
            self.system.close()
            self.system = None


# ---------------------------------------------------------------------------- TorchScript
class TorchScriptCalculator(Calculator):
    """A TorchScript model of the design.md contract, evaluated in-process on rank 0.

    The periodic graph is built with ``lammps_adv.models.graph.periodic_graph`` (images within
    the receptive field; edges centred on images too when receptive_field > cutoff); the
    energy is the sum of the per-atom energies of the N cell atoms; forces are the negative
    gradient with respect to all positions, images folded back onto their atoms. A model that
    also exports ``energies_periodic(positions, species, edges, n, image_of)`` (the graph
    network) is called through it: images take their cell atom's state, so only edges
    centred on cell atoms within the cutoff are needed.
    """

    def __init__(self, path, comm=None):
        super().__init__(comm)
        self.path = Path(path).resolve()
        self.spec = f"torchscript:{path}"
        if not self.path.is_file():
            raise CalculatorError(f"TorchScript model not found: {self.path}")
        import warnings

        import torch

        from lammps_adv.plugin.kernels import load_kernels
        load_kernels()          # the model may call torch.ops.lammps_adv.*
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                model = torch.jit.load(str(self.path), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
            raise CalculatorError(f"cannot load TorchScript model {self.path}: "
                                  f"{one_line(exc)}") from None
        for attr in ("cutoff", "species"):
            if not hasattr(model, attr):
                raise CalculatorError(f"TorchScript model {self.path.name} lacks attribute "
                                      f"{attr!r} (see the model contract in docs/plugin.md)")
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.is_floating_point() and t.dtype != torch.float64:
                raise CalculatorError(f"TorchScript model {self.path.name}: parameter or buffer "
                                      f"{name} is {t.dtype}, the contract needs float64")
        self.model = model
        self.cutoff = float(model.cutoff)
        self.receptive_field = float(getattr(model, "receptive_field", self.cutoff))
        self.periodic = hasattr(model, "energies_periodic")     # the graph network's shortcut
        if not (self.cutoff > 0 and np.isfinite(self.cutoff)):
            raise CalculatorError(f"TorchScript model {self.path.name}: cutoff {self.cutoff} A")
        self.species = tuple(normalize_symbol(s) or s for s in model.species)
        self.description = f"TorchScript model {self.path.name}"

    def hashes(self) -> dict:
        return {str(self.path): file_sha256(self.path)}

    def compute(self, positions, cell):
        import torch

        from lammps_adv.models.export import plain_execution
        from lammps_adv.models.graph import periodic_graph
        n = len(positions)
        # with energies_periodic images take their cell atom's state: images within the
        # cutoff and edges centred on cell atoms are all it needs
        halo = self.cutoff if self.periodic else max(self.receptive_field, self.cutoff)
        ext, image_of, edges = periodic_graph(positions, cell, self.cutoff, halo=halo,
                                              ghost_edges=halo > self.cutoff)
        spec_idx = np.array([self.species.index(s) for s in self.symbols], dtype=np.int64)
        x = torch.tensor(ext, dtype=torch.float64, requires_grad=True)
        args = (x, torch.from_numpy(spec_idx[image_of]),
                torch.from_numpy(np.ascontiguousarray(edges, dtype=np.int64)), n)
        with plain_execution():
            if self.periodic:
                e_atoms = self.model.energies_periodic(
                    *args, torch.from_numpy(np.ascontiguousarray(image_of, dtype=np.int64)))
            else:
                e_atoms = self.model(*args)
        self._check_energies(e_atoms, n, len(ext))
        energy = e_atoms[:n].sum()
        (grad,) = torch.autograd.grad(energy, x)
        forces = np.zeros((n, 3))
        np.add.at(forces, image_of, -grad.detach().numpy())
        return energy.detach().numpy(), forces

    def _check_energies(self, e_atoms, n, n_positions):
        """One float64 energy per cell atom (energies_periodic) or, the contract as the plugin
        checks it, per position given (cell atoms and their images)."""
        import torch
        if self.periodic:
            if not isinstance(e_atoms, torch.Tensor) or tuple(e_atoms.shape) != (n,) or \
                    e_atoms.dtype != torch.float64:
                raise CalculatorError(f"{self.spec}: energies_periodic must return one float64 "
                                      f"energy per cell atom, shape [{n}]")
            return
        if not isinstance(e_atoms, torch.Tensor) or tuple(e_atoms.shape) != (n_positions,):
            shape = list(e_atoms.shape) if isinstance(e_atoms, torch.Tensor) else type(e_atoms).__name__
            raise CalculatorError(f"{self.spec}: model output has shape {shape} for {n_positions} "
                                  f"positions ({n} in the cell); the contract is one energy per "
                                  f"position, shape [{n_positions}]")
        if e_atoms.dtype != torch.float64:
            raise CalculatorError(f"{self.spec}: model output has dtype {e_atoms.dtype}, the "
                                  "contract needs float64")


# ---------------------------------------------------------------------------- ASE
class AseCalculator(Calculator):
    """Any ASE calculator (rank 0), e.g. GFN-xTB through tblite. Periodic in 3D."""

    def __init__(self, spec: str, calculator_factory, description: str, comm=None):
        super().__init__(comm)
        self.spec = spec
        self.description = description
        self._factory = calculator_factory
        self.calc = None

    def compute(self, positions, cell):
        from ase import Atoms
        if self.calc is None:
            self.calc = self._factory()
        atoms = Atoms(self.symbols, positions=positions, cell=cell, pbc=True)
        atoms.calc = self.calc
        return atoms.get_potential_energy(), atoms.get_forces()


XTB_METHODS = {"GFN1": "GFN1-xTB", "GFN2": "GFN2-xTB", "GFN1-XTB": "GFN1-xTB", "GFN2-XTB": "GFN2-xTB"}
XTB_OPTIONS = {"accuracy": ("accuracy", float), "etemp": ("electronic_temperature_K", float),
               "maxiter": ("max_iterations", int)}


class XtbCalculator(Calculator):
    """GFN-xTB through tblite's Python API (rank 0 of the communicator), 3D periodic.

    Spec: ``xtb:GFN1`` or ``xtb:GFN2``, optionally ``:accuracy=A`` (tblite's accuracy
    factor, lower is tighter; default 1), ``:etemp=K`` (electronic temperature, Fermi
    smearing, default 300 K), ``:maxiter=N`` (SCF iterations, default 250).

    Every configuration starts from a fresh SAD guess (tblite's ASE calculator restarts from
    the previous wavefunction instead): a label is then a function of the configuration
    alone, the same in any order and on any rank, which the label cache and the MPI
    labelling rely on. tblite treats a periodic cell at the Gamma point only (no k-point
    sampling), so small cells carry a finite-size error; ``settings`` and ``description``
    say so in every output. Labels are cached on disk (``label_cache``) unless ``cache`` is
    False; ``n_backend`` counts real tblite evaluations, ``n_cache_hits`` labels read back.
    """

    def __init__(self, spec: str, comm=None, cache=None):
        super().__init__(comm)
        _, *parts = spec.split(":")
        method = XTB_METHODS.get(parts[0].upper()) if parts else None
        if method is None:
            raise CalculatorError(f"unknown xtb method in {spec!r}: use xtb:GFN1 or xtb:GFN2 "
                                  "(options :accuracy=A :etemp=K :maxiter=N)")
        opts = {"accuracy": 1.0, "electronic_temperature_K": 300.0, "max_iterations": 250}
        for item in parts[1:]:
            name, sep, value = item.partition("=")
            if not sep or name not in XTB_OPTIONS:
                raise CalculatorError(f"xtb option {item!r} in {spec!r}: expected one of "
                                      + ", ".join(f"{k}=VALUE" for k in XTB_OPTIONS))
            key, conv = XTB_OPTIONS[name]
            try:
                opts[key] = conv(value)
            except ValueError:
                raise CalculatorError(f"xtb option {name} in {spec!r}: {value!r} is not a "
                                      f"{conv.__name__}") from None
        if not (opts["accuracy"] > 0 and opts["electronic_temperature_K"] >= 0
                and opts["max_iterations"] >= 1):
            raise CalculatorError(f"xtb options in {spec!r}: accuracy must be > 0, etemp >= 0 K "
                                  "and maxiter >= 1")
        try:
            from importlib.metadata import version
            import tblite.interface  # noqa: F401
            tb_version = version("tblite")
        except ImportError:
            raise CalculatorError("xtb calculators need tblite: pip install "
                                  "'lammps-adv[xtb]'") from None
        self.spec = spec
        self.settings = {"method": method, **opts, "charge": 0, "unpaired_electrons": 0,
                         "initial_guess": "SAD, fresh for every configuration",
                         "periodicity": "3D periodic cell",
                         "k_points": "Gamma point only (tblite has no k-point sampling)",
                         "code": f"tblite {tb_version}", "units": "eV, eV/A"}
        self.description = (f"{method} (tblite {tb_version}): accuracy {opts['accuracy']:g}, "
                            f"electronic temperature {opts['electronic_temperature_K']:g} K, "
                            f"at most {opts['max_iterations']} SCF iterations, neutral closed "
                            "shell, 3D periodic, Gamma point only")
        self.n_backend = self.n_cache_hits = 0
        self._cache_choice = cache
        self.cache = None

    def setup(self, symbols) -> None:
        super().setup(symbols)
        if self.cache is None and self._cache_choice is not False:
            from lammps_adv.experiments.label_cache import LabelCache, default_root
            root = default_root() if self._cache_choice in (None, True) else self._cache_choice
            if root is not None:
                self.cache = LabelCache(root, self.settings)

    def compute(self, positions, cell):
        key = config_key(self.symbols, positions, cell)
        if self.cache is not None:
            hit = self.cache.get(key, self.symbols, positions, cell)
            if hit is not None:
                self.n_cache_hits += 1
                return hit
        energy, forces = self.single_point(positions, cell)
        self.n_backend += 1
        if self.cache is not None:
            self.cache.put(key, self.symbols, positions, cell, energy, forces)
        return energy, forces

    def single_point(self, positions, cell):
        """tblite on one configuration: (energy eV, forces eV/A), nothing cached."""
        from ase.data import atomic_numbers
        from ase.units import Bohr, Hartree, kB      # the constants tblite's ASE calculator uses
        from tblite.interface import Calculator as TBCalculator
        s = self.settings
        numbers = np.array([atomic_numbers[x] for x in self.symbols], dtype=np.int32)
        try:
            calc = TBCalculator(s["method"], numbers, np.asarray(positions) / Bohr, 0, 0,
                                np.asarray(cell) / Bohr, np.array([True, True, True]))
            calc.set("accuracy", s["accuracy"])
            calc.set("temperature", s["electronic_temperature_K"] * kB / Hartree)
            calc.set("max-iter", s["max_iterations"])
            calc.set("verbosity", 0)
            res = calc.singlepoint()
        except RuntimeError as exc:       # e.g. SCF not converged
            raise CalculatorError(f"tblite: {one_line(exc)}") from None
        return (float(res["energy"]) * Hartree,
                -np.asarray(res["gradient"], dtype=np.float64) * (Hartree / Bohr))


# ---------------------------------------------------------------------------- stored labels
class LabelsCalculator(Calculator):
    """Energies and forces stored in a dataset file, looked up by configuration (bit-exact
    symbols, cell and positions): experiments on stored (e.g. DFT) labels, no live model."""

    def __init__(self, path, comm=None):
        super().__init__(comm)
        self.path = Path(path)
        self.spec = f"labels:{path}"
        if not self.path.is_file():
            raise CalculatorError(f"label file not found: {self.path}")
        self._index = None
        self.description = f"stored labels of {self.path.name}"

    def hashes(self) -> dict:
        return {str(self.path.resolve()): file_sha256(self.path)}

    def _load(self):
        from lammps_adv.training.dataset import load
        ds = load(self.path)
        if ds.forces is None:
            raise CalculatorError(f"{self.path} stores no forces: labels:FILE needs energies "
                                  "and forces")
        self._ds = ds
        gen = ds.attrs.get("generator") or {}
        labelled_by = ds.attrs.get("reference", "unknown")
        detail = gen.get("reference_description") if isinstance(gen, dict) else None
        self.description = (f"stored labels of {self.path.name}, labelled by {labelled_by}"
                            + (f" ({detail})" if detail else ""))
        self._index = {}
        for i in range(len(ds)):
            c = ds.config(i)
            self._index[config_key(c["names"], c["positions"], c["cell"])] = i
        self.species = tuple(ds.species)

    def setup(self, symbols) -> None:
        if self._index is None and self.rank == 0:
            self._load()
        super().setup(symbols)

    def compute(self, positions, cell):
        i = self._index.get(config_key(self.symbols, positions, cell))
        if i is None:
            raise CalculatorError(f"this configuration is not among the {len(self._index)} "
                                  f"stored in {self.path} (stored labels cover only those "
                                  "configurations, bit for bit: displaced or relaxed ones need "
                                  "a live reference; for cos(theta) alone run the probe with "
                                  "--epsilon 0 --random 0)")
        c = self._ds.config(i)
        return c["energy"], c["forces"]


# ---------------------------------------------------------------------------- by name
def names() -> list[str]:
    from lammps_adv import potentials
    out = [n for n in potentials.names() if not n.startswith("torchscript:")]
    return out + ["torchscript:FILE.pt", "xtb:GFN1", "xtb:GFN2", "ase:MODULE:CLASS",
                  "labels:FILE.h5"]


def get_calculator(spec, comm=None) -> Calculator:
    """The calculator named by a spec string (see the module docstring); a ``Calculator``
    is returned as it is."""
    if isinstance(spec, Calculator):
        return spec
    if not isinstance(spec, str) or not spec:
        raise CalculatorError(f"empty model spec; known: {', '.join(names())}")
    kind, _, rest = spec.partition(":")
    if kind == "torchscript":
        return TorchScriptCalculator(rest, comm=comm)
    if kind == "labels":
        return LabelsCalculator(rest, comm=comm)
    if kind == "xtb":
        return XtbCalculator(spec, comm=comm)
    if kind == "ase":
        parts = spec.split(":")
        if len(parts) != 3:
            raise CalculatorError(f"ase calculator spec must be ase:MODULE:CLASS, got {spec!r}")
        try:
            cls = getattr(importlib.import_module(parts[1]), parts[2])
        except (ImportError, AttributeError) as exc:
            raise CalculatorError(f"cannot import ASE calculator {parts[1]}.{parts[2]}: "
                                  f"{exc}") from None
        return AseCalculator(spec, cls, f"ASE calculator {parts[1]}.{parts[2]}", comm=comm)
    try:
        return LammpsCalculator(spec, comm=comm)
    except CalculatorError as exc:
        raise CalculatorError(f"unknown model spec {spec!r}; known: {', '.join(names())}"
                              if "unknown potential" in str(exc) else str(exc)) from None
