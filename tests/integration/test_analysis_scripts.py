"""The scripts of analysis/ on real small outputs of `lammps-adv run` and `lammps-adv relax`:
their CSV numbers equal values recomputed from the HDF5 files, they write their figures,
and a bad file is one line and exit status 2."""
import csv
import math

import h5py
import numpy as np
import pytest
from ase.io import write

from conftest import BIN, REPO, run_cmd
from lammps_adv.lammps.structures import read

SCRIPTS = REPO / "analysis"
LOOP = REPO / "tests" / "decks" / "loop_md_min.in"
DSF = REPO / "potentials" / "bks_dsf.lmp"
N_RELAX = 5


@pytest.fixture(scope="module")
def outputs(glass_192, tmp_path_factory):
    """A recording (two NVE runs in a loop, then CG) and 5 short FIRE relaxations of rattled
    copies of the glass, all bks-dsf driving against Ewald BKS."""
    d = tmp_path_factory.mktemp("analysis")
    run_cmd([BIN / "lammps-adv", "run", LOOP, "--reference", "bks", "--every", "2", "--quiet",
             "--out", d / "loop.h5", "-var", "data", glass_192, "-var", "pot", DSF])
    atoms, rng = read(glass_192), np.random.default_rng(0)
    frames = []
    for _ in range(N_RELAX):
        a = atoms.copy()
        a.positions += rng.normal(0.0, 0.05, a.positions.shape)
        frames.append(a)
    write(d / "configs.extxyz", frames)
    run_cmd([BIN / "lammps-adv", "relax", d / "configs.extxyz", "--approx", "bks-dsf",
             "--reference", "bks", "--steps", "6", "-o", d / "relax"])
    with h5py.File(d / "foreign.h5", "w") as f:
        f["x"] = np.arange(3)
    data = (d / "loop.h5").read_bytes()
    (d / "corrupt.h5").write_bytes(data[: len(data) // 3])
    return d


def _script(name, *args, cwd, check=True):
    return run_cmd([BIN / "python", SCRIPTS / name, *args], cwd=cwd, check=check)


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _obs(path, name):
    with h5py.File(path, "r") as f:
        return f[f"observables/{name}/value"][()]


def test_cos_timeseries(outputs, tmp_path):
    run = outputs / "loop.h5"
    proc = _script("cos_timeseries.py", run, "-o", tmp_path / "ts", cwd=tmp_path)
    rows = _csv(tmp_path / "ts.csv")
    cos = _obs(run, "cos_adversarial")
    assert len(rows) == len(cos) > 10
    np.testing.assert_allclose([float(r["cos_adversarial"]) for r in rows], cos, rtol=1e-8)
    np.testing.assert_allclose([float(r["energy_error_meV_per_atom"]) for r in rows],
                               1000 * _obs(run, "energy_error_per_atom"), rtol=1e-8)
    np.testing.assert_allclose([float(r["force_rmse_eV_per_A"]) for r in rows],
                               _obs(run, "force_rmse"), rtol=1e-8)
    with h5py.File(run, "r") as f:
        kinds = [k.decode() for k in f["stages/kind"][()]]
        steps = f["observables/cos_adversarial/step"][()]
    assert kinds == ["run", "run", "minimize"]
    assert [int(r["step"]) for r in rows] == steps.tolist()
    assert [r["stage_kind"] for r in rows] == [kinds[int(s)] for s in _obs(run, "stage")]
    assert (tmp_path / "ts.png").stat().st_size > 1000
    out = proc.stdout
    assert f"{len(cos)} rows" in out and "stages: 3 (run, run, minimize)" in out
    assert f"mean |cos theta| {np.abs(cos).mean():.4g}" in out
    assert f"a random direction: {math.sqrt(2 / (math.pi * 3 * 192)):.4g}" in out
    # a relaxation is a recording too; default prefix: the file's name, in the current folder
    relax = outputs / "relax" / "relax_0000.h5md"
    _script("cos_timeseries.py", relax, cwd=tmp_path)
    assert len(_csv(tmp_path / "relax_0000_timeseries.csv")) == len(_obs(relax, "stage"))


def _curve(path):
    """|E_acc - E_app| (meV/atom) at the last evaluation of each minimizer step."""
    with h5py.File(path, "r") as f:
        step = f["observables/energy_error/step"][()]
        err = f["observables/energy_error/value"][()]
        n = f["parameters"].attrs["n_atoms"]
    last = [i for i in range(len(step)) if i == len(step) - 1 or step[i + 1] != step[i]]
    return np.abs(err[last]) * 1000 / n


def test_relax_growth(outputs, tmp_path):
    files = sorted((outputs / "relax").glob("*.h5md"))
    proc = _script("relax_growth.py", outputs / "relax", "-o", tmp_path / "g", cwd=tmp_path)
    assert f"{N_RELAX} relaxations of bks-dsf vs bks, {N_RELAX} independent units" in proc.stdout
    assert "start temperature unknown" in proc.stdout and "converged" in proc.stdout
    assert "not resolved" not in proc.stdout
    curves = [_curve(p) for p in files]
    per = _csv(tmp_path / "g_relaxations.csv")
    assert [r["file"] for r in per] == [str(p) for p in files]
    for r, p, c in zip(per, files, curves):
        assert float(r["cos0"]) == pytest.approx(_obs(p, "cos_adversarial")[0], rel=1e-8)
        assert float(r["error_first_meV_per_atom"]) == pytest.approx(c[0], rel=1e-8)
        assert float(r["rise_meV_per_atom"]) == pytest.approx(c[1] - c[0], rel=1e-7, abs=1e-12)
        assert float(r["error_last_meV_per_atom"]) == pytest.approx(c[-1], rel=1e-8)
        # the first step's change of E_acc - E_app over its recorded first-order prediction
        # (rattled starts: large forces, a first step beyond the linear regime), and the cap
        with h5py.File(p, "r") as f:
            step = f["observables/energy_error/step"][()]
        err = _obs(p, "energy_error")
        end1 = np.nonzero(np.diff(step))[0][1]
        ratio = (err[end1] - err[0]) / _obs(p, "first_order_change")[end1]
        assert float(r["first_order_ratio"]) == pytest.approx(ratio, rel=1e-7)
        assert (r["converged"], r["steps"]) == ("False", "6")
    steps = _csv(tmp_path / "g_steps.csv")
    n = max(len(c) for c in curves)
    padded = np.array([np.r_[c, np.full(n - len(c), c[-1])] for c in curves])
    assert len(steps) == n
    np.testing.assert_allclose([float(r["median_meV_per_atom"]) for r in steps],
                               np.median(padded, axis=0), rtol=1e-8)
    np.testing.assert_allclose([float(r["q25_meV_per_atom"]) for r in steps],
                               np.percentile(padded, 25, axis=0), rtol=1e-8)
    for png in ("g_error_vs_step.png", "g_first_step.png"):
        assert (tmp_path / png).stat().st_size > 1000
    # fewer than 5 relaxations: no interval
    proc = _script("relax_growth.py", *files[:3], "-o", tmp_path / "g3", cwd=tmp_path)
    assert "3 relaxations" in proc.stdout and proc.stdout.count("not resolved") >= 3
    assert {r["q75_meV_per_atom"] for r in _csv(tmp_path / "g3_steps.csv")} == {"not resolved"}
    # a recording of `lammps-adv run` is not a relaxation
    proc = _script("relax_growth.py", outputs / "relax", outputs / "loop.h5", cwd=tmp_path,
                   check=False)
    assert proc.returncode == 2 and "loop.h5" in proc.stderr and "not a relaxation" in proc.stderr


def test_compare_runs(outputs, tmp_path):
    a, b = outputs / "relax" / "relax_0000.h5md", outputs / "relax" / "relax_0001.h5md"
    proc = _script("compare_runs.py", a, b, "-o", tmp_path / "c", cwd=tmp_path)
    table = {(r["quantity"], r["statistic"]): r for r in _csv(tmp_path / "c.csv")}
    for path, col in ((a, "A"), (b, "B")):
        cos = _obs(path, "cos_adversarial")
        assert float(table["abs(cos theta)", "mean"][col]) == pytest.approx(np.abs(cos).mean(), rel=1e-5)
        assert float(table["abs(cos theta)", "median"][col]) == pytest.approx(np.median(np.abs(cos)), rel=1e-5)
        assert float(table["cos theta", "q95"][col]) == pytest.approx(np.quantile(cos, 0.95), rel=1e-5)
        assert int(table["cos theta", "n"][col]) == len(cos)
        err = np.abs(_obs(path, "energy_error_per_atom")) * 1000
        assert float(table["abs(E_acc - E_app) per atom", "mean"][col]) == pytest.approx(err.mean(), rel=1e-5)
        assert float(table["force RMSE", "q25"][col]) == pytest.approx(
            np.quantile(_obs(path, "force_rmse"), 0.25), rel=1e-5)
    row = table["force RMSE", "mean"]
    assert float(row["B - A"]) == pytest.approx(float(row["B"]) - float(row["A"]), rel=1e-4)
    assert (tmp_path / "c_cos_hist.png").stat().st_size > 1000
    assert (tmp_path / "c.md").read_text().startswith("| quantity | unit | statistic | A | B |")
    assert "A: " in proc.stdout and "B: " in proc.stdout
    # different kinds: a run recording and a relaxation
    proc = _script("compare_runs.py", outputs / "loop.h5", a, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "run recording" in proc.stderr and "a relaxation" in proc.stderr


@pytest.mark.parametrize("bad", ["foreign.h5", "corrupt.h5", "missing.h5"])
def test_bad_files_are_one_line_and_exit_2(outputs, tmp_path, bad):
    path = outputs / bad
    for args in (["cos_timeseries.py", path], ["relax_growth.py", path],
                 ["compare_runs.py", outputs / "loop.h5", path]):
        proc = _script(*args, cwd=tmp_path, check=False)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith(f"{args[0]}: error: ") and bad in proc.stderr
    assert not list(tmp_path.iterdir())            # nothing written
