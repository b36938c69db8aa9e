"""Recording real LAMMPS runs and minimizations to HDF5 (lammps_adv.recorder, lammps-adv run)."""
import os
import re
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

from conftest import BIN, REPO, run_cmd
from lammps_adv.core import adversarial
from lammps_adv.core.configuration import periodic_displacement
from lammps_adv.io.files import recover
from lammps_adv.io.h5md import open_h5, read_observables
from lammps_adv.recorder import Recorder, RecorderError, logical_commands, prepare_deck, run_deck
from lammps_adv.calculators import get_calculator

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit")

LOOP = REPO / "tests" / "decks" / "loop_md_min.in"
LOST = REPO / "tests" / "decks" / "lost_atoms.in"
NVT = REPO / "tests" / "decks" / "nvt_short.in"
DSF = str(REPO / "potentials" / "bks_dsf.lmp")


def _vars(glass, **kw):
    return {"data": str(glass), "pot": DSF, **{k: str(v) for k, v in kw.items()}}


def _frames(path):
    with open_h5(path) as f:
        p = f["particles/all"]
        return {k: p[k]["value"][()] for k in ("position", "force_approx", "force_reference",
                                                "box/edges", "record")} | \
            {"species": [s.decode() for s in p["species"][()]], "step": p["position/step"][()]}


@pytest.fixture(scope="module")
def loop_run(glass_192, tmp_path_factory):
    """The loop deck (2 MD runs in a label/jump loop, then CG) recorded against Ewald BKS."""
    d = tmp_path_factory.mktemp("loop")
    out, log = d / "loop.h5", d / "log.lammps"
    n = run_deck(LOOP, "bks", out=out, every=5, frames_every=1, progress=False, log=str(log),
                 variables=_vars(glass_192))
    return out, log, n


def test_recorded_values_equal_an_independent_reevaluation(loop_run):
    out, _, n = loop_run
    obs = read_observables(out)
    fr = _frames(out)
    assert n == len(obs["step"]) == len(fr["position"]) > 10
    approx, ref = get_calculator("bks-dsf"), get_calculator("bks")
    approx.setup(fr["species"])
    ref.setup(fr["species"])
    for k in range(len(fr["position"])):
        row = fr["record"][k]
        assert fr["step"][k] == obs["step"][row]
        e_app, f_app = approx.evaluate(fr["position"][k], fr["box/edges"][k])
        e_acc, f_acc = ref.evaluate(fr["position"][k], fr["box/edges"][k])
        np.testing.assert_allclose(fr["force_approx"][k], f_app, rtol=0, atol=1e-8)
        np.testing.assert_allclose(fr["force_reference"][k], f_acc, rtol=0, atol=1e-8)
        assert obs["energy_approx"][row] == pytest.approx(e_app, abs=1e-8)
        assert obs["energy_reference"][row] == pytest.approx(e_acc, abs=1e-8)
        fresh = adversarial.measures(e_app, e_acc, f_app, f_acc)
        for name, value in fresh.items():
            assert obs[name][row] == pytest.approx(value, abs=1e-8), (name, k)
    approx.close()
    ref.close()
    # first_order_change: from the last record of the previous step of the same stage (MD:
    # the record before; CG: every line-search trial from the step's start); NaN at a
    # stage's first record
    stage, step = obs["stage"], obs["step"]
    start = None
    for k in range(len(step)):
        if k == 0 or stage[k] != stage[k - 1]:
            start = None
        elif step[k] != step[k - 1]:
            start = k - 1
        if start is None:
            assert obs["first_order_change"][k] == 0.0, k
            continue
        dr = periodic_displacement(fr["position"][start], fr["position"][k], fr["box/edges"][k])
        expected = adversarial.first_order_change(fr["force_approx"][start],
                                                  fr["force_reference"][start], dr)
        assert obs["first_order_change"][k] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert np.isfinite(obs["first_order_change"]).sum() > len(step) // 2


def test_md_every_n_steps_minimization_every_evaluation(loop_run):
    out, log, _ = loop_run
    obs = read_observables(out)
    stage, ev, step = obs["stage"].astype(int), obs["evaluation"].astype(int), obs["step"]
    with h5py.File(out, "r") as f:
        kinds = [k.decode() for k in f["stages/kind"][()]]
        cmds = [c.decode() for c in f["stages/command"][()]]
        first_rows = f["stages/first_row"][()]
        assert f["h5md"].attrs["version"].tolist() == [1, 1]
        assert f["h5md/creator"].attrs["name"] == "lammps-adv"
        par = f["parameters"]
        assert par.attrs["reference"] == "bks" and par.attrs["units"] == "metal"
        assert par.attrs["every"] == 5 and par.attrs["lammps_version"]
        assert "jump SELF loop" in par["deck"][()].decode()
        assert "bks.lmp" in par.attrs["model_hashes"]
        # step/time of every observable are the same datasets
        assert f["observables/cos_adversarial/step"] == f["observables/energy_error/step"]
    assert kinds == ["run", "run", "minimize"] and cmds[2].startswith("minimize")
    assert first_rows.tolist() == [0, 3, 6]
    # MD: the first configuration of each run, then every 5th step
    assert step[stage == 0].tolist() == [0, 5, 10] and step[stage == 1].tolist() == [10, 15, 20]
    assert ev[stage == 1].tolist() == [0, 5, 10]
    # minimization: every force evaluation (LAMMPS' count + the setup evaluation)
    text = log.read_text()
    nevals = int(re.search(r"Iterations, force evaluations = \d+ (\d+)", text).group(1))
    assert ev[stage == 2].tolist() == list(range(nevals + 1))
    # temperature as LAMMPS' thermo reports it (synchronous velocities)
    thermo = {int(m.group(1)): float(m.group(2))
              for m in re.finditer(r"^\s+(\d+)\s+([\d.]+)\s+-?[\d.]+\s+0\s", text, re.M)}
    for s, t, k in zip(step, obs["temperature"], stage):
        if k < 2 and s in thermo:
            assert t == pytest.approx(thermo[s], rel=2e-6)
    assert np.all(np.isfinite(np.column_stack([obs[k] for k in obs])))


def test_reference_equal_to_the_driving_model(glass_192, tmp_path):
    out = tmp_path / "same.h5"
    run_deck(NVT, "bks-dsf", out=out, every=2, progress=False, variables=_vars(glass_192, nsteps=10))
    obs = read_observables(out)
    assert len(obs["step"]) == 6
    assert np.all(np.abs(obs["energy_error"]) < 1e-8)
    assert np.all(obs["force_rmse"] < 1e-8) and np.all(obs["force_max_error"] < 1e-8)
    for k in obs:
        assert np.all(np.isfinite(obs[k])), k
    assert np.all(np.abs(obs["cos_adversarial"]) <= 1.0)
    assert np.all(obs["force_cos"] > 1 - 1e-12)


def test_one_and_two_mpi_ranks_give_the_same_file(glass_192, tmp_path):
    args = [LOOP, "--reference", "bks", "--every", "5", "--frames-every", "4", "--quiet",
            "-var", "data", glass_192, "-var", "pot", DSF]
    run_cmd([BIN / "lammps-adv", "run", *args, "--out", tmp_path / "np1.h5"])
    proc = run_cmd([BIN / "mpirun", "-np", "2", BIN / "lammps-adv", "run", *args,
                    "--out", tmp_path / "np2.h5"])
    assert proc.stdout.count("recorded") == 1                 # rank 0 alone speaks
    a, b = read_observables(tmp_path / "np1.h5"), read_observables(tmp_path / "np2.h5")
    assert len(a["step"]) == len(b["step"]) > 10
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-8, err_msg=k)
    fa, fb = _frames(tmp_path / "np1.h5"), _frames(tmp_path / "np2.h5")
    for k in ("position", "force_approx", "force_reference", "box/edges"):
        np.testing.assert_allclose(fa[k], fb[k], rtol=0, atol=1e-8, err_msg=k)
    with h5py.File(tmp_path / "np2.h5") as f:
        assert f["parameters"].attrs["mpi_ranks"] == 2


def _swmr_rows(path):
    try:
        with h5py.File(path, "r", libver="latest", swmr=True) as f:
            return len(f["observables/stage/step"])
    except (OSError, KeyError):
        return 0


def test_sigkill_keeps_flushed_rows_and_append_resumes(glass_192, tmp_path):
    out = tmp_path / "killed.h5"
    cmd = [BIN / "lammps-adv", "run", LOOP, "--reference", "bks-dsf", "--every", "1",
           "--frames-every", "3", "--flush-every", "2", "--flush-seconds", "0.001", "--quiet",
           "--out", out, "-var", "data", glass_192, "-var", "pot", DSF,
           "-var", "nloop", "1", "-var", "nsteps", "1000000"]
    err_file = tmp_path / "stderr.txt"
    with open(err_file, "w") as err:
        proc = subprocess.Popen([str(c) for c in cmd], cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=err, env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        deadline = time.time() + 240
        while _swmr_rows(out) < 20 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, f"the run ended early: {err_file.read_text()}"
        seen = _swmr_rows(out)
        assert seen >= 20, err_file.read_text()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    # a kill during a flush leaves HDF5's 'open for write' marks: recover() clears them, then
    # every row seen before the kill is there
    recover(out)
    rows = _swmr_rows(out)
    assert rows >= seen
    obs = read_observables(out)
    assert len(obs["step"]) == rows
    assert obs["step"].tolist() == list(range(rows))          # every step, no torn row
    assert np.all(np.abs(obs["energy_error"]) < 1e-8)
    with h5py.File(out, "r") as f:
        k = len(f["particles/all/position/value"])
        assert k >= 1 and np.all(np.isfinite(f["particles/all/position/value"][()]))
        assert np.all(f["particles/all/record/value"][()] < rows)
    # --append continues the file (stage numbers go on)
    out2 = out
    run_cmd([BIN / "lammps-adv", "run", LOOP, "--reference", "bks-dsf", "--every", "5",
             "--append", "--quiet", "--out", out2, "-var", "data", glass_192, "-var", "pot", DSF,
             "-var", "nloop", "1", "-var", "nsteps", "10"])
    obs2 = read_observables(out2)
    np.testing.assert_array_equal(obs2["step"][:rows], obs["step"])
    last = obs["stage"].max()
    new_stage, new_step = obs2["stage"][rows:], obs2["step"][rows:]
    assert new_step[new_stage == last + 1].tolist() == [0, 5, 10]           # the MD run
    assert (new_stage == last + 2).sum() >= 3                               # the minimization
    with h5py.File(out2, "r") as f:
        assert "append_1" in f["parameters"]
        assert "--append" in f["parameters/append_1/command_line"][()].decode()


def test_deck_runs_unmodified_and_with_plain_lammps(glass_192, tmp_path):
    """The loop deck is an ordinary LAMMPS deck; the hooks do not change what it computes."""
    proc = run_cmd([BIN / "lmp", "-in", LOOP, "-var", "data", glass_192, "-var", "pot", DSF,
                    "-log", tmp_path / "plain.log"])
    assert proc.stdout.count("loop iteration") == 2 and "done" in proc.stdout
    text = LOOP.read_text()
    new, hooks = prepare_deck(text, LOOP, tmp_path / "copy.in", tmp_path / "empty.in")
    assert sorted(w for w, _ in hooks.values()) == sorted(["read_data", "run", "run", "minimize", "minimize"])
    # the original commands are all still there, in order
    orig = [w for _, _, w in logical_commands(text) if w]
    kept = [w for _, _, w in logical_commands(new) if w and not any("__adv" in x for x in w)
            and w[0] != "jump" or (w and w[:2] == ["jump", "SELF"])]
    assert kept == orig


def test_python_api_in_a_users_session_with_torchscript_reference(glass_192, tmp_path):
    from test_calculators import script_model
    from lammps_adv.lammps.engine import open_lammps
    from lammps_adv.lammps.snippets import get
    model = script_model(tmp_path / "pair.pt")
    lmp = open_lammps()
    lmp.commands_list(["units metal", "atom_style full", f"read_data {glass_192}"])
    get("bks-dsf").apply(lmp)
    out = tmp_path / "api.h5"
    with Recorder(lmp, f"torchscript:{model}", out=out, every=4, frames_every=2) as rec:
        rec.commands(["velocity all create 800 5", "fix md all nve", "timestep 0.001"])
        rec.command("run 8")
        lmp.command("run 4")                       # plain LAMMPS command: recorded as well
        rec.command("unfix md")
        rec.command("minimize 0 1e-6 3 30")
    lmp.close()
    obs = read_observables(out)
    stage, step = obs["stage"].astype(int), obs["step"]
    assert step[stage == 0].tolist() == [0, 4, 8] and step[stage == 1].tolist() == [8, 12]
    assert (stage == 2).sum() >= 4
    fr = _frames(out)
    ref = get_calculator(f"torchscript:{model}")
    ref.setup(fr["species"])
    for k in range(len(fr["position"])):
        e, f = ref.evaluate(fr["position"][k], fr["box/edges"][k])
        assert obs["energy_reference"][fr["record"][k]] == pytest.approx(e, abs=1e-8)
        np.testing.assert_allclose(fr["force_reference"][k], f, atol=1e-8)


def test_xtb_reference_in_a_recorded_run(tmp_path):
    from lammps_adv.lammps.structures import quartz, write_lammps_data
    data = write_lammps_data(tmp_path / "quartz.data", quartz())
    out = tmp_path / "xtb.h5"
    deck = tmp_path / "sp.in"
    deck.write_text(f"units metal\natom_style full\nboundary p p p\nread_data {data}\n"
                    f"include {DSF}\nrun 0\n")
    assert run_deck(deck, "xtb:GFN1", out=out, progress=False) == 1
    obs = read_observables(out)
    assert -1000 < obs["energy_reference"][0] < -900 and np.isfinite(obs["cos_adversarial"][0])


# ------------------------------------------------------------------ bad input
def test_unknown_reference_spec_is_a_clear_cli_error(glass_192, tmp_path):
    proc = run_cmd([BIN / "lammps-adv", "run", LOOP, "--reference", "nonsense", "--out",
                    tmp_path / "x.h5", "-var", "data", glass_192], check=False)
    assert proc.returncode == 2
    assert "unknown model spec 'nonsense'" in proc.stderr and "Traceback" not in proc.stderr


def test_species_mismatch_unwritable_output_and_lost_atoms(glass_192, tmp_path):
    from test_calculators import script_model
    model = script_model(tmp_path / "sin.pt", species=("Si", "N"))
    with pytest.raises(RecorderError, match=r"covers the elements Si, N.*also has O.*labels"):
        run_deck(LOOP, f"torchscript:{model}", out=tmp_path / "m.h5", progress=False,
                 variables=_vars(glass_192))
    with pytest.raises(RecorderError, match="cannot write output file"):
        run_deck(LOOP, "bks-dsf", out=tmp_path, progress=False, variables=_vars(glass_192))
    out = tmp_path / "lost.h5"
    with pytest.raises(RecorderError, match=r"(?i)lost.*rows recorded in"):
        run_deck(LOST, "bks-dsf", out=out, every=2, progress=False, variables=_vars(glass_192))
    obs = read_observables(out)                    # the rows before the loss are kept
    assert len(obs["step"]) >= 3 and obs["step"][0] == 0
    assert np.all(np.isfinite(obs["energy_approx"]))
