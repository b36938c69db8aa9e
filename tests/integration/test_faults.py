"""Fault drills: what a new user runs into, each ending in one clear line and a non-zero
exit, or correct output; never exit 0 with a wrong file, never a lost row.

Model faults go through the Python path (the reference of `lammps-adv run/probe/relax`),
mirroring every bad input the plugin refuses; writer faults (full disk, signals, a second
writer, an existing file) run `lammps-adv run` as a user would.
"""
import os
import resource
import signal
import subprocess
import time
from typing import List

import h5py
import numpy as np
import pytest
import torch

from conftest import BIN, REPO, run_cmd
from lammps_adv.cli import main as cli
from test_calculators import BadOutput

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit")

NVT = REPO / "tests" / "decks" / "nvt_short.in"
DSF = str(REPO / "potentials" / "bks_dsf.lmp")


def _model(tmp_path, mode, after=0):
    path = tmp_path / f"{mode}_{after}.pt"
    torch.jit.script(BadOutput(mode, after)).save(str(path))
    return path


def _one_line_error(capsys, command):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"lammps-adv {command}: error: "), err
    return err[0]


def _rows(path):
    """Rows of a recording read with plain h5py; every observable must have as many."""
    with h5py.File(path, "r") as f:
        obs = f["observables"]
        lengths = {len(obs[n]["value"]) for n in obs} | {len(obs[n]["step"]) for n in obs}
        assert len(lengths) == 1, lengths
        rows = lengths.pop()
        values = {n: obs[n]["value"][()] for n in obs}
        assert all(np.isfinite(v).all() for n, v in values.items() if n != "energy_approx")
        if "position" in f["particles/all"]:
            k = len(f["particles/all/position/step"])
            assert len(f["particles/all/position/value"]) >= k
            pos = f["particles/all/position/value"][:k]
            assert np.isfinite(pos).all() and (np.abs(pos).sum(axis=(1, 2)) > 0).all()
    return rows


def _run_args(glass, out, model=None, steps=40, *extra):
    ref = f"torchscript:{model}" if model else "bks-dsf"
    return ["run", str(NVT), "--reference", ref, "--out", str(out), "--quiet",
            "-var", "data", str(glass), "-var", "pot", DSF, "-var", "nsteps", str(steps), *extra]


# ------------------------------------------------------------------ bad models, Python path
@pytest.mark.parametrize("mode, message", [
    ("nan", "energy is nan"), ("inf", "energy is inf"),
    ("nanforces", "forces are not finite"),
    ("nlocal", r"model output has shape \[192\] for \d+ positions"),
    ("shape", r"model output has shape \[\d+, 1\]"),
    ("dtype", "model output has dtype torch.float32"),
    ("raise", "failed on .*index"),
])
def test_bad_model_output_stops_the_run_keeping_every_row(glass_192, tmp_path, capsys, mode, message):
    model = _model(tmp_path, mode, after=6)        # fine for 6 evaluations, then broken
    out = tmp_path / f"{mode}.h5"
    assert cli(_run_args(glass_192, out, model, 40, "--flush-every", "1000")) == 2
    line = _one_line_error(capsys, "run")
    assert re.search(message, line) and f"torchscript:{model}" in line and "step 6" in line, line
    assert "6 rows recorded" in line
    assert _rows(out) == 6                          # nothing lost, nothing invented


@pytest.mark.parametrize("case, message", [
    ("missing", "TorchScript model not found"),
    ("notscript", "cannot load TorchScript model"),
    ("nocutoff", "lacks attribute 'cutoff'"),
    ("species", r"covers the elements Si, Ge; the system also has O"),
    ("float32", "is torch.float32, the contract needs float64"),
])
def test_bad_model_file_is_refused_before_the_run(glass_192, tmp_path, capsys, case, message):
    path = tmp_path / f"{case}.pt"
    if case == "notscript":
        torch.save({"cutoff": 3.0}, path)
    elif case == "nocutoff":
        class NoCutoff(torch.nn.Module):
            species: List[str]

            def __init__(self):
                super().__init__()
                self.species = ["Si", "O"]

            def forward(self, positions: torch.Tensor, species: torch.Tensor,
                        edge_index: torch.Tensor, n_local: int) -> torch.Tensor:
                return positions.sum(dim=1)
        torch.jit.script(NoCutoff()).save(str(path))
    elif case == "species":
        m = BadOutput("ok")
        m.species = ["Si", "Ge"]
        torch.jit.script(m).save(str(path))
    elif case == "float32":
        m = BadOutput("ok")
        m.register_buffer("scale", torch.ones(2, dtype=torch.float32))
        torch.jit.script(m).save(str(path))
    out = tmp_path / "out.h5"
    assert cli(_run_args(glass_192, out, path)) == 2
    assert re.search(message, _one_line_error(capsys, "run"))


def test_probe_and_relax_refuse_a_nan_reference(glass_192, tmp_path, capsys):
    from ase.io import write
    from lammps_adv.lammps.structures import read_lammps_data
    model = _model(tmp_path, "nan")
    configs = tmp_path / "glass.extxyz"
    glass = read_lammps_data(glass_192)     # twice: a per-species fit needs more than one
    write(configs, [glass, glass])
    assert cli(["probe", str(configs), "--approx", "bks-dsf", "--reference",
                f"torchscript:{model}", "--split", "all", "-o", str(tmp_path / "p.h5")]) == 2
    assert "energy is nan" in _one_line_error(capsys, "probe")
    assert not (tmp_path / "p.h5").exists() or h5py.is_hdf5(tmp_path / "p.h5")
    assert cli(["relax", str(configs), "--approx", "bks-dsf", "--reference",
                f"torchscript:{model}", "--split", "all", "--steps", "5",
                "-o", str(tmp_path / "relax")]) == 2
    line = _one_line_error(capsys, "relax")              # the alignment fit meets it first
    assert "energy is nan" in line and "glass.extxyz#0 (alignment fit)" in line
    assert cli(["relax", str(configs), "--approx", "bks-dsf", "--reference",
                f"torchscript:{model}", "--split", "all", "--steps", "5", "--align", "none",
                "-o", str(tmp_path / "relax")]) == 2
    line = _one_line_error(capsys, "relax")              # unaligned: the recorder meets it
    assert "energy is nan" in line and "0 rows recorded" in line


def test_dataset_generate_refuses_a_nan_label_naming_the_frame(tmp_path, capsys):
    model = _model(tmp_path, "nan", after=1)
    out = tmp_path / "d.h5"
    assert cli(["dataset", "generate", "-o", str(out), "--reference", f"torchscript:{model}",
                "--driver", "bks-dsf", "--glass-atoms", "0", "--quartz", "1x1x1",
                "--quartz-temps", "300", "--frames", "3", "--stride", "2", "--equil", "2",
                "--quiet"]) == 2
    line = _one_line_error(capsys, "dataset")
    assert "dataset frame quartz-T300#1" in line and "energy is nan" in line, line
    assert not out.exists()


# ------------------------------------------------------------------ LAMMPS-native potentials
def _coincident(glass, tmp_path):
    """The glass with atom 2 moved onto atom 1: a Coulomb pair at r = 0, NaN in LAMMPS."""
    from lammps_adv.lammps.structures import read_lammps_data, write_lammps_data
    atoms = read_lammps_data(glass)
    atoms.positions[1] = atoms.positions[0]
    return write_lammps_data(tmp_path / "coincident.data", atoms)


def test_energy_refuses_a_nan_from_a_lammps_potential(glass_192, tmp_path, capsys):
    bad = _coincident(glass_192, tmp_path)
    assert cli(["energy", str(bad), "--potential", "bks-dsf"]) == 2
    line = _one_line_error(capsys, "energy")
    assert "bks-dsf on" in line and str(bad) in line and "is nan" in line, line
    assert cli(["energy", str(glass_192), "--potential", "bks-dsf"]) == 0


def test_run_driven_by_a_nan_lammps_potential_stops_at_that_step(glass_192, tmp_path, capsys):
    bad = _coincident(glass_192, tmp_path)
    out = tmp_path / "nan.h5"
    assert cli(_run_args(bad, out, None, 5)) == 2
    line = _one_line_error(capsys, "run")
    assert "driving model" in line and "step 0" in line and "is nan" in line, line
    assert "0 rows recorded" in line


# ------------------------------------------------------------------ options
@pytest.mark.parametrize("extra, message", [
    (["--flush-every", "0"], "--flush-every must be positive"),
    (["--flush-seconds", "-1"], "--flush-seconds must be positive"),
    (["--every", "0"], "--every must be positive"),
    (["--species", "O", "Si"], "--species O Si contradicts the atom type labels"),
])
def test_bad_options_are_one_line_errors(glass_192, tmp_path, capsys, extra, message):
    out = tmp_path / "x.h5"
    assert cli(_run_args(glass_192, out, None, 5, *extra)) == 2
    assert message in _one_line_error(capsys, "run")


def test_existing_recording_needs_overwrite_or_append(glass_192, tmp_path, capsys):
    out = tmp_path / "r.h5"
    assert cli(_run_args(glass_192, out, None, 5)) == 0
    rows = _rows(out)
    capsys.readouterr()
    assert cli(_run_args(glass_192, out, None, 5)) == 2
    assert "exists: give --overwrite to replace it or --append" in _one_line_error(capsys, "run")
    assert _rows(out) == rows                       # untouched
    assert cli(_run_args(glass_192, out, None, 5, "--append")) == 0
    assert _rows(out) == 2 * rows
    assert cli(_run_args(glass_192, out, None, 5, "--overwrite")) == 0
    assert _rows(out) == rows


# ------------------------------------------------------------------ writer faults, as a user
def _start(args, tmp_path, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.Popen([str(BIN / "lammps-adv"), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for_rows(path, n, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if _rows(path) >= n:
                return
        except (OSError, KeyError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} never reached {n} rows (rc {proc.poll()})")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_sigterm_stop_cleanly_with_every_row(glass_192, tmp_path, sig, code):
    out = tmp_path / "sig.h5"
    proc = _start(_run_args(glass_192, out, None, 1000000, "--flush-seconds", "0.2",
                            "--frames-every", "5"), tmp_path)
    try:
        _wait_for_rows(out, 10, proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"interrupted by {signal.Signals(sig).name}" in lines[0], err
    rows = int(re.search(r"(\d+) rows recorded", lines[0]).group(1))
    assert _rows(out) == rows >= 10                  # none lost: every record was flushed
    assert os.listdir(tmp_path / "tmp") == []        # no temporary deck copy left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sig.h5", "tmp"]   # no lock file


def test_sigterm_to_mpirun_stops_both_ranks_cleanly(glass_192, tmp_path):
    """mpirun forwards SIGTERM to both ranks; they agree on the step to stop at, rank 0
    flushes every row and prints the one line."""
    out = tmp_path / "mpi.h5"
    env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(tmp_path))
    proc = subprocess.Popen([str(BIN / "mpirun"), "-np", "2", str(BIN / "lammps-adv"),
                             *_run_args(glass_192, out, None, 1000000, "--flush-seconds", "0.2")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_rows(out, 10, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0, err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("lammps-adv")]
    assert len(lines) == 1 and "interrupted by SIGTERM" in lines[0], err
    rows = int(re.search(r"(\d+) rows recorded", lines[0]).group(1))
    assert _rows(out) == rows >= 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mpi.h5"]


def test_sigkill_loses_at_most_one_flush_interval(glass_192, tmp_path):
    out = tmp_path / "kill.h5"
    proc = _start(_run_args(glass_192, out, None, 1000000, "--flush-seconds", "1",
                            "--flush-every", "1000000"), tmp_path)
    try:
        _wait_for_rows(out, 5, proc)
        mtime = out.stat().st_mtime_ns
        while out.stat().st_mtime_ns == mtime:        # a flush has just happened
            time.sleep(0.01)
        time.sleep(0.2)
        seen = _rows(out)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert _rows(out) >= seen > 5                    # plain h5py opens it, every flushed row


def test_second_writer_is_refused_and_the_first_untouched(glass_192, tmp_path):
    out = tmp_path / "shared.h5"
    # the first writer runs until stopped, so it surely holds the lock when the second starts
    first = _start(_run_args(glass_192, out, None, 1000000, "--flush-seconds", "0.2"), tmp_path)
    try:
        _wait_for_rows(out, 3, first)
        second = run_cmd([BIN / "lammps-adv", *_run_args(glass_192, out, None, 5, "--overwrite")],
                         check=False, cwd=tmp_path)
        assert first.poll() is None, "the first writer ended before the second was tried"
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "shared.h5 is being written by pid" in lines[0], lines
    assert str(first.pid) in lines[0]
    assert first.returncode == 130, err
    rows = int(re.search(r"(\d+) rows recorded", err).group(1))
    assert _rows(out) == rows >= 3                  # every row of the first run, none of the second


FULL_DISK = """
import resource, sys
from lammps_adv.parallel.mpi import mpi_comm
from lammps_adv.cli import main
mpi_comm()      # MPI's own shared-memory files first; then the "disk" holds FSIZE_MAX bytes
resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_MAX, FSIZE_MAX))
sys.exit(main(sys.argv[1:]))
"""


def test_full_disk_is_one_error_and_keeps_what_was_flushed(glass_192, tmp_path):
    out = tmp_path / "full.h5"
    limit = 3 << 20                                 # writes past 3 MiB fail (EFBIG)
    script = tmp_path / "small_disk.py"
    script.write_text(FULL_DISK.replace("FSIZE_MAX", str(limit)))
    args = _run_args(glass_192, out, None, 100000, "--frames-every", "1", "--flush-every", "10")
    proc = run_cmd([BIN / "python", script, *args], check=False, cwd=tmp_path, timeout=300)
    err = proc.stderr
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Segmentation" not in err, err
    assert re.search(r"(?i)(no space|too large|full)", lines[0]) and "full.h5" in lines[0]
    rows = int(re.search(r"(\d+) rows recorded", lines[0]).group(1))
    assert _rows(out) == rows > 0                   # flushed rows intact, no zero frames
    assert out.stat().st_size <= limit


import re  # noqa: E402  (used by the tests above)
