"""The interface every energy model implements (``Calculator``): validated, cached,
collective over an MPI communicator. What a backend must provide: ``compute``; what it may
add: ``compute_stress`` (then ``evaluate(..., stress=True)`` and the ASE adapter give the
stress)."""
from __future__ import annotations

import numpy as np

from lammps_adv.core.configuration import config_key, describe
from lammps_adv.core.errors import CalculatorError, one_line
from lammps_adv.core.finite import nonfinite
from lammps_adv.parallel.mpi import mpi_comm


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
    @property
    def has_stress(self) -> bool:
        """Whether the backend gives the stress (it implements ``compute_stress``)."""
        return type(self).compute_stress is not Calculator.compute_stress

    def evaluate(self, positions, cell, symbols=None, label=None, stress=False):
        """(energy eV, forces eV/A [N, 3]) of a configuration; with ``stress=True`` also the
        stress [3, 3] (eV/A^3, ASE's sign: (1/V) dE/d(strain), positive under tension)."""
        if stress and not self.has_stress:
            raise CalculatorError(f"{self.spec} gives no stress (energy and forces only)")
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
        # the cache holds the configuration computed last: on a hit that lacks the stress,
        # only compute_stress runs (a LAMMPS backend reads the virial of that same run)
        cached = self._cache[1] if key == self._cache[0] else None
        if cached is not None and (not stress or len(cached) == 3):
            return self._returned(cached, stress)
        if self.collective and parallel:
            if self.rank != 0:
                pos, cell = np.empty((len(self.symbols), 3)), np.empty((3, 3))
            comm.Bcast(pos, root=0)
            comm.Bcast(cell, root=0)
        result = err = None
        if self.collective or self.rank == 0:
            try:
                if cached is None:
                    result = self.compute(pos, cell)
                    self.n_computed += 1
                else:
                    result = cached
                if stress:       # after compute of this configuration: it may reuse the run
                    result = (*result[:2], self.compute_stress(pos, cell))
            except Exception as exc:  # noqa: BLE001 - any backend failure, named here
                msg = one_line(exc).removeprefix(f"{self.spec}: ")
                err = CalculatorError(f"{self.spec} failed on {label}: {msg}")
            else:
                if self.rank == 0:
                    try:
                        result = self._validated(result, label, stress)
                    except CalculatorError as exc:
                        err = exc
        if parallel:
            err = comm.bcast(err if self.rank == 0 else None, root=0)
        if err is not None:
            raise err
        if parallel:
            result = comm.bcast(result if self.rank == 0 else None, root=0)
        self._cache = (key, result)
        return self._returned(result, stress)

    @staticmethod
    def _returned(result, stress):
        """Copies of the cached arrays, so that a caller's changes do not reach the cache."""
        if stress:
            return result[0], result[1].copy(), result[2].copy()
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

    def _validated(self, result, label, with_stress=False):
        """The one place where every model's result is checked (see the module docstring)."""
        n = len(self.symbols)
        where = f"{self.spec} on {label}"
        try:
            energy, forces, *stress = result
            if len(stress) != int(with_stress):
                raise ValueError
        except (TypeError, ValueError):
            raise CalculatorError(f"{where}: returned {type(result).__name__}, "
                                  "expected (energy, forces)") from None
        e = np.asarray(energy)
        if e.size != 1 or not np.issubdtype(e.dtype, np.number) or np.iscomplexobj(e):
            raise CalculatorError(f"{where}: energy must be one real number (eV), got shape "
                                  f"{list(e.shape)} of {e.dtype}")
        e = float(e.reshape(()))
        f = np.asarray(forces)
        if f.shape != (n, 3):
            raise CalculatorError(f"{where}: forces have shape {list(f.shape)}, expected [{n}, 3]")
        if not np.issubdtype(f.dtype, np.number) or np.iscomplexobj(f):
            raise CalculatorError(f"{where}: forces must be real numbers, got {f.dtype}")
        f = np.array(f, dtype=np.float64)
        problem = nonfinite(e, f)
        if problem:
            raise CalculatorError(f"{where}: {problem}")
        if not stress:
            return e, f
        sigma = np.asarray(stress[0])
        if sigma.shape != (3, 3) or not np.issubdtype(sigma.dtype, np.number) \
                or np.iscomplexobj(sigma):
            raise CalculatorError(f"{where}: stress must be 3x3 real numbers (eV/A^3), got "
                                  f"shape {list(sigma.shape)} of {sigma.dtype}")
        sigma = np.array(sigma, dtype=np.float64)
        if not np.isfinite(sigma).all():
            raise CalculatorError(f"{where}: stress is not finite")
        return e, f, sigma

    # -------------------------------------------------------------- for backends
    def compute(self, positions, cell):
        """Backends: (energy eV, forces eV/A [N, 3]) of one configuration, self.symbols set."""
        raise NotImplementedError

    def compute_stress(self, positions, cell):
        """Backends that can: stress [3, 3] (eV/A^3, ASE sign) of the configuration that
        ``compute`` was last called with (no other compute in between)."""
        raise NotImplementedError

    def as_ase(self):
        """This calculator as an ASE calculator (``atoms.calc = calc.as_ase()``), for ASE's
        optimizers and MD (``calculators.for_ase``)."""
        from lammps_adv.calculators.for_ase import LammpsAdvCalculator
        return LammpsAdvCalculator(self)

    def hashes(self) -> dict:
        """{file: sha256} of the model files it depends on (provenance)."""
        return {}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
