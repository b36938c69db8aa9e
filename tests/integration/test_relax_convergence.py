"""Relaxations in LAMMPS: the recorded first-order change of the first step against a finite
difference, the fmax criterion (max per-atom |F_app|) and the convergence each file records.
bks-dsf drives, Ewald BKS is the reference, on 96-atom glass frames from 1000 K MD."""
import numpy as np
import pytest

from conftest import BIN, run_cmd
from lammps_adv.core.configuration import periodic_displacement
from lammps_adv.experiments.relax import relax
from lammps_adv.io.configs import load_configs
from lammps_adv.io.h5md import read_frames
from lammps_adv.io.results import read_files, recording


@pytest.fixture(scope="module")
def md96(tmp_path_factory):
    from lammps_adv.training.sampling import generate
    path = tmp_path_factory.mktemp("relax96") / "md96.h5"
    generate(path, reference="bks-dsf", glass_atoms=96, glass_temps=(1000,), quartz_cells=None,
             frames=2, stride=100, equil=200, melt_ps=1.0, quench_ps=1.0, seed=5,
             split=(1.0, 0.0, 0.0), progress=False)
    return path


def _step_ends(step):
    return np.r_[np.nonzero(np.diff(step))[0], len(step) - 1]


def _max_atom_force(forces):
    return float(np.sqrt((forces ** 2).sum(axis=1)).max())


def test_first_step_change_matches_its_first_order_prediction(md96, tmp_path):
    """A small first step (dmax 0.001 A): the change of E_acc - E_app equals the recorded
    (F_app - F_acc)_0 . dr_1 to 1e-3, and the recorded value equals the one recomputed from
    the frames (forces at the start, positions at the end of step 1)."""
    configs = load_configs(md96, split=None)
    files = relax(configs, "bks-dsf", "bks", tmp_path, steps=2, min_modify="dmax 0.001",
                  frames_every=1, progress=False)
    for r in read_files(files, recording):
        d, fr = r.data, read_frames(r.path)
        end1 = _step_ends(d["step"])[1]
        assert fr["record"][end1] == end1
        dr = periodic_displacement(fr["position"][0], fr["position"][end1], fr["box"][end1])
        assert 0 < np.abs(dr).max() <= 1.001e-3
        recomputed = float(np.sum((fr["force_approx"][0] - fr["force_reference"][0]) * dr))
        predicted = d["first_order_change"][end1]
        assert predicted == pytest.approx(recomputed, rel=1e-9)
        change = d["energy_error"][end1] - d["energy_error"][0]
        assert abs(predicted) > 1e-4                       # eV: a measurable step
        assert change / predicted == pytest.approx(1.0, abs=1e-3)
        assert d["first_order_change"][0] == 0.0
        assert r.params["converged"] is False and r.params["minimizer_steps"] == 2


def test_fmax_honoured_and_convergence_recorded(md96, tmp_path):
    """`lammps-adv relax --fmax`: a converged relaxation ends with every per-atom |F_app|
    within fmax and records it; one stopped by the cap records converged False and its
    steps."""
    fmax = 0.01
    run_cmd([BIN / "lammps-adv", "relax", md96, "--approx", "bks-dsf", "--reference",
             "bks-dsf", "--split", "all", "--limit", "1", "--fmax", fmax, "--steps", 2000,
             "--frames-every", 1, "--align", "none", "-o", tmp_path / "done"])
    (r,) = read_files(sorted((tmp_path / "done").glob("*.h5md")), recording)
    last = read_frames(r.path)["force_approx"][-1]
    assert r.params["converged"] is True and r.params["fmax_eV_per_A"] == fmax
    assert r.params["minimizer_steps"] == r.data["step"][-1] > 10
    assert r.params["final_fmax_eV_per_A"] == pytest.approx(_max_atom_force(last), rel=1e-9)
    assert _max_atom_force(last) <= fmax
    configs = load_configs(md96, split=None, limit=1)
    (path,) = relax(configs, "bks-dsf", "bks-dsf", tmp_path / "cap", steps=3, fmax=fmax,
                    progress=False, align="none")
    (r,) = read_files([path], recording)
    assert r.params["converged"] is False and r.params["minimizer_steps"] == 3
    assert r.params["final_fmax_eV_per_A"] > fmax and r.data["step"][-1] == 3


def test_relax_refuses_a_norm_that_would_change_fmax(md96, tmp_path):
    for args, needle in ((["--min-modify", "norm two"], "must not set norm"),
                         (["--fmax", "0"], "fmax must be a positive force")):
        proc = run_cmd([BIN / "lammps-adv", "relax", md96, "--approx", "bks-dsf",
                        "--reference", "bks", "--split", "all", *args, "-o", tmp_path],
                       check=False)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_overwrite_leaves_this_runs_recordings_only(md96, tmp_path):
    """--overwrite into a folder of an earlier, larger run (or one from before the .h5md
    names): its recordings go, so that a report counts this run's only; other files stay."""
    out = tmp_path / "again"
    out.mkdir()
    for stale in ("relax_0000.h5", "relax_0000.h5md", "relax_0007.h5md", "relax_0003.hdf5"):
        (out / stale).write_text("an earlier run")
    (out / "notes.txt").write_text("mine")
    configs = load_configs(md96, split=None, limit=1)
    (path,) = relax(configs, "bks-dsf", "bks-dsf", out, steps=2, progress=False, align="none",
                    overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "relax_0000.h5md"]
    assert read_files([path], recording)[0].params["minimizer_steps"] == 2
