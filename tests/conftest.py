"""Shared fixtures of unit/, integration/ and kokkos/: small real structures made once per
test session."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent          # the venv's bin: lmp, mpirun, lammps-adv

# unit/ (no LAMMPS), integration/ and kokkos/ share helpers defined in their test modules
# (small models, bad-output models): each folder is importable from the others
for _folder in ("unit", "integration"):
    sys.path.insert(0, str(Path(__file__).resolve().parent / _folder))


@pytest.fixture(autouse=True, scope="session")
def private_label_cache(tmp_path_factory):
    """Expensive references (xtb) cache their labels on disk: the tests use a folder of their
    own, never the user's ~/.cache, and start empty (subprocesses inherit the variable)."""
    from lammps_adv.io.label_cache import ENV
    old = os.environ.get(ENV)
    os.environ[ENV] = str(tmp_path_factory.mktemp("label_cache"))
    yield
    if old is None:
        os.environ.pop(ENV, None)
    else:
        os.environ[ENV] = old


@pytest.fixture(scope="session")
def glass_192(tmp_path_factory) -> Path:
    """A 192-atom BKS-DSF glass (short melt-quench), as a LAMMPS data file."""
    from lammps_adv.lammps.structures import amorphous
    out = tmp_path_factory.mktemp("glass") / "glass192.data"
    amorphous(192, melt_ps=2.0, quench_ps=3.0, out=out, seed=7)
    return out


def run_cmd(args, cwd=REPO, timeout=600, check=True):
    """Run a command from the venv's bin; return CompletedProcess (text)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(autouse=True)
def unit_tests_start_no_lammps(request, monkeypatch):
    """tests/unit/ holds the tests that need no LAMMPS: starting one there fails the test."""
    if "unit" not in Path(str(request.node.fspath)).parent.name:
        return
    import lammps_adv.lammps.engine as engine

    def refuse():
        raise AssertionError("a unit test started LAMMPS: move it to tests/integration/")
    monkeypatch.setattr(engine, "_import_lammps", refuse)

