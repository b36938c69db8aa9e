"""Watching a run: while `lammps-adv run --every 1 --flush-every 1` records, a reader that
opens the file in a tight loop with HDF5's SWMR-read recipe never fails and sees a
non-decreasing row count; so do the project's readers and MDAnalysis through
``io.trajectory.universe``. Plain opens fail while a write is under way: they are counted
and printed, as docs/recorder.md says."""
import signal
import subprocess
import time

import h5py
import numpy as np

from conftest import BIN, REPO

NVT = REPO / "tests" / "decks" / "nvt_short.in"
DSF = REPO / "potentials" / "bks_dsf.lmp"
WATCH_S = 8.0


def test_a_recording_opens_every_time_while_it_is_written(glass_192, tmp_path):
    from lammps_adv.io.h5md import read_observables
    from lammps_adv.io.trajectory import universe
    out = tmp_path / "live.h5md"
    proc = subprocess.Popen(
        [str(a) for a in (BIN / "lammps-adv", "run", NVT, "--reference", "bks-dsf", "--every",
                          1, "--flush-every", 1, "--frames-every", 20, "--out", out, "-q",
                          "-var", "data", glass_192, "-var", "pot", DSF, "-var", "nsteps",
                          20000)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    follow = subprocess.Popen(
        [str(BIN / "python"), str(REPO / "analysis" / "follow_run.py"), str(out), "--interval",
         "0.5", "--window", "50", "--plot", str(tmp_path / "live.png")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not out.exists():
            assert proc.poll() is None and time.monotonic() - t0 < 120, proc.stderr.read()
            time.sleep(0.005)
        n = dict.fromkeys(("swmr", "swmr_failed", "swmr_read_failed", "plain",
                           "plain_failed", "ours", "mdanalysis"), 0)
        rows, errors = [], []
        end = time.monotonic() + WATCH_S
        k = 0
        while time.monotonic() < end:
            assert proc.poll() is None, proc.stderr.read()
            k += 1
            try:                                  # the standard recipe
                f = h5py.File(out, "r", libver="latest", swmr=True)
            except OSError as exc:
                n["swmr_failed"] += 1
                errors.append(str(exc))
            else:
                with f:
                    n["swmr"] += 1
                    step = f["observables/cos_adversarial/step"]
                    rows.append(len(step))
                    try:                          # the chunk being rewritten: a torn read
                        f["observables/cos_adversarial/value"][:len(step)]
                    except OSError:
                        n["swmr_read_failed"] += 1
            try:                                  # plain h5py: fails inside a flush
                with h5py.File(out, "r") as f:
                    n["plain"] += 1
            except OSError:
                n["plain_failed"] += 1
            if k % 10 == 0:                       # the project's reader
                obs = read_observables(out)
                assert np.isfinite(obs["cos_adversarial"]).all()
                n["ours"] += 1
            if k % 100 == 0 and rows[-1] >= 40:   # MDAnalysis on the frames so far
                u = universe(out)
                assert len(u.trajectory) >= 2 and u.trajectory[-1].positions.shape == (192, 3)
                u.trajectory.close()
                n["mdanalysis"] += 1
    finally:
        proc.send_signal(signal.SIGINT)           # ends the run as a user would
        proc.communicate(timeout=120)
        followed, follow_err = follow.communicate(timeout=120)
    print(f"opens in {WATCH_S:g} s: {n}; rows {rows[0]} -> {rows[-1]}")
    assert n["swmr_failed"] == 0, errors[:3]
    assert n["swmr"] > 300 and n["ours"] > 30 and n["mdanalysis"] >= 2
    assert rows == sorted(rows) and rows[-1] - rows[0] > 50     # it grew under the reader
    assert proc.returncode == 130                # SIGINT: stops cleanly (docs/reliability.md)
    final = read_observables(out)
    assert len(final["step"]) >= rows[-1]
    # analysis/follow_run.py printed the growing run and stopped when the writer had gone
    assert follow.returncode == 0, follow_err
    lines = followed.strip().splitlines()
    counts = [int(ln.split(" rows")[0]) for ln in lines[:-1]]
    assert len(counts) >= 5 and counts == sorted(counts) and "mean |cos| last 50" in lines[1]
    assert lines[-1].endswith(f"no writer holds it; {len(final['step'])} rows in all")
    assert counts[-1] == len(final["step"]) and (tmp_path / "live.png").stat().st_size > 0
