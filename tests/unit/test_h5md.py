"""lammps_adv.io.h5md, the owner of every file format: units, external readers (MDAnalysis,
plain h5py), the writer's lock and crash safety (SIGKILL, full disk), damaged files in
readers and the report, dataset validation (non-finite values)."""
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from conftest import BIN, REPO
from lammps_adv.io import files, h5md, schema
from lammps_adv.core.errors import DatasetError, FileFormatError
from lammps_adv.io.schema import RECORDING_OBSERVABLES as OBSERVABLES

N_ATOMS = 7
SPECIES = ["Si", "O", "O", "Si", "O", "O", "Si"]


def _values(i):
    return {name: 0.5 + i + k / 100 for k, name in enumerate(OBSERVABLES)}


def _cell(rng):
    return np.array([[9.0, 0, 0], [0.7, 10.0, 0], [-0.4, 0.3, 11.0]]) + np.diag(rng.random(3))


def write_recording(path, rows=12, frames_every=2, flush_every=5, seed=0, **kw):
    """A recording made through the writer API; returns what was written, by frame."""
    rng = np.random.default_rng(seed)
    w = h5md.H5MDWriter(path, OBSERVABLES, {"reference": "bks", "experiment": "run",
                                            "approx": "bks-dsf"}, {"deck": "run 10"}, **kw)
    w.set_parameters({"n_atoms": N_ATOMS})
    w.start(SPECIES, frames=frames_every > 0)
    w.add_stage("run", "run 10", 0)
    frames = []
    for i in range(rows):
        row = w.add_row(i, 0.001 * i, _values(i))
        if frames_every and i % frames_every == 0:
            fr = (i, 0.001 * i, row, rng.random((N_ATOMS, 3)) * 9, rng.normal(size=(N_ATOMS, 3)),
                  rng.normal(size=(N_ATOMS, 3)), _cell(rng))
            w.add_frame(*fr)
            frames.append(fr)
        if w.pending >= flush_every:
            w.flush()
    w.close()
    return frames


def _script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


# ------------------------------------------------------------------ units, external readers
def test_units_and_external_readers_mdanalysis_and_plain_h5py(tmp_path):
    from MDAnalysis.coordinates.H5MD import H5MDReader
    from MDAnalysis.lib.mdamath import triclinic_vectors
    out = tmp_path / "rec.h5"
    frames = write_recording(out)
    assert not files.lock_path(out).exists()                     # removed on close
    with h5py.File(out, "r") as f:                               # plain h5py opens it
        obs, part = f["observables"], f["particles/all"]
        assert obs["energy_error/time"].attrs["unit"] == "ps"
        assert "unit" not in obs["energy_error/step"].attrs
        for name, unit in (("energy_approx", "eV"), ("energy_error_per_atom", "eV"),
                           ("force_rmse", "eV Angstrom-1"), ("fnorm_reference", "eV Angstrom-1"),
                           ("temperature", "K")):
            assert obs[name]["value"].attrs["unit"] == unit, name
        for name in ("cos_adversarial", "force_cos", "evaluation", "stage"):
            assert "unit" not in obs[name]["value"].attrs, name
        for name, unit in (("position", "Angstrom"), ("box/edges", "Angstrom"),
                           ("force_approx", "eV Angstrom-1"),
                           ("force_reference", "eV Angstrom-1"),
                           ("force", "kJ mol-1 Angstrom-1")):
            assert part[name]["value"].attrs["unit"] == unit, name
            assert part[name]["time"].attrs["unit"] == "ps"
            assert part[name]["step"] == part["position/step"]   # one shared dataset
        assert part["box"].attrs["dimension"] == 3
    ours = h5md.read_frames(out)
    assert ours["species"] == SPECIES and len(ours["step"]) == len(frames) == 6
    # MDAnalysis' H5MD reader with its defaults (convert_units=True) reads every frame
    reader = H5MDReader(str(out))
    assert reader.n_frames == len(frames) and reader.n_atoms == N_ATOMS
    assert reader.units == {"time": "ps", "length": "Angstrom", "velocity": "Angstrom/ps",
                            "force": "kJ/(mol*Angstrom)"}
    for k, ts in enumerate(reader):
        step, t, row, pos, f_app, f_ref, cell = frames[k]
        np.testing.assert_allclose(ts.positions, pos, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(ts.positions, ours["position"][k], rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(ts.forces / schema.KJ_PER_MOL_PER_EV, f_app, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ts.forces / schema.KJ_PER_MOL_PER_EV, ours["force_approx"][k],
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(triclinic_vectors(ts.dimensions), cell, atol=1e-4)
        assert ts.time == pytest.approx(t) and ts.data["step"] == step
        assert ours["record"][k] == row
        np.testing.assert_array_equal(ours["force_reference"][k], f_ref)
    reader.close()
    obs = h5md.read_observables(out)
    assert obs["step"].tolist() == list(range(12))
    assert obs["energy_error"].tolist() == [_values(i)["energy_error"] for i in range(12)]
    par = h5md.read_parameters(out)
    assert par["reference"] == "bks" and par["n_atoms"] == N_ATOMS and par["deck"] == "run 10"
    assert h5md.read_stages(out)["kind"] == ["run"]
    assert h5md.H5MDError is FileFormatError


def test_probe_and_dataset_files_through_h5md(tmp_path):
    out = h5md.write_probe(tmp_path / "p.h5", {"experiment": "probe", "approx": "a"},
                           epsilon=[0.0, 0.1], natoms=[3, 4], source=["x#0", "x#1"],
                           arrays={"cos_adversarial": [0.1, -0.2],
                                   "error_adversarial": np.ones((2, 2)),
                                   "error_random": np.zeros((2, 3, 2)),
                                   "flagged_adversarial": np.array([[False, True]] * 2),
                                   "species_pairs": np.array(["O-O", "O-Si"]),
                                   "closest_pair_threshold": [2.2, 1.4]})
    d = h5md.read_probe(out)
    assert d["source"].tolist() == ["x#0", "x#1"] and d["error_random"].shape == (2, 3, 2)
    assert d["flagged_adversarial"].dtype == bool and d["error_adversarial"].dtype == np.float64
    assert h5md.read_parameters(out)["experiment"] == "probe"
    with h5py.File(out, "r") as f:
        assert f["probe/epsilon"].attrs["unit"] == "Angstrom2"
        assert f["probe/error_adversarial"].attrs["unit"] == "eV"
        assert f["probe/error_random"].attrs["unit"] == "eV"
        assert f["probe/closest_pair_threshold"].attrs["unit"] == "Angstrom"
    assert d["species_pairs"].tolist() == ["O-O", "O-Si"]
    with pytest.raises(FileFormatError, match="is a directory"):
        files.check_writable(tmp_path)
    (tmp_path / "plain").write_text("x")
    with pytest.raises(FileFormatError, match="plain is a file, not a folder"):
        files.check_writable(tmp_path / "plain" / "sub" / "out.h5")
    with pytest.raises(FileFormatError, match="not a probe file"):
        h5md.read_probe(_small_recording(tmp_path / "r.h5"))
    # dataset files: layout, attributes and units belong to h5md too
    from lammps_adv.io import dataset as D
    ds = D.from_frames([_frame(), _frame(seed=1)], ["Si", "O"], {"reference": "test"},
                       split=(1, 0, 0))
    ds.save(tmp_path / "ds.h5")
    arrays, attrs = h5md.read_dataset(tmp_path / "ds.h5")
    assert attrs["species"] == ["Si", "O"] and attrs["reference"] == "test"
    np.testing.assert_array_equal(arrays["atoms/forces"], ds.forces)
    with h5py.File(tmp_path / "ds.h5", "r") as f:
        assert f.attrs["format"] == "lammps-adv-dataset"
        assert f["configs/energy"].attrs["unit"] == "eV"
        assert f["atoms/forces"].attrs["unit"] == "eV Angstrom-1"
    with pytest.raises(DatasetError, match="not a lammps-adv dataset"):
        D.load(out)


def _small_recording(path):
    write_recording(path, rows=3, frames_every=0)
    return path


# ------------------------------------------------------------------ lock, modes, SIGKILL
WRITER = """
    import sys, time
    import numpy as np
    from lammps_adv.io import h5md
    from lammps_adv.io.schema import RECORDING_OBSERVABLES as OBSERVABLES
    w = h5md.H5MDWriter(sys.argv[1], OBSERVABLES, {"experiment": "run"}, mode=sys.argv[2])
    w.start(["Si", "O", "O"], frames=True)
    row0 = w.n_rows
    for i in range(row0, row0 + 30):
        r = w.add_row(i, 0.001 * i, {n: float(i) for n in OBSERVABLES})
        if i % 3 == 0:
            w.add_frame(i, 0.001 * i, r, np.full((3, 3), i + 1.0), np.ones((3, 3)),
                        np.ones((3, 3)), np.eye(3) * 8)
        if i % 10 == 9:
            w.flush()
    print("flushed", w.n_rows, w.n_frames, flush=True)
    time.sleep(float(sys.argv[3]))     # holds the lock, file closed between flushes
    w.close()
"""


def test_lock_modes_and_sigkill_between_flushes(tmp_path):
    out = tmp_path / "run.h5"
    script = _script(tmp_path, "writer.py", WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(out), "new", "600"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        assert line[0] == "flushed", proc.stderr.read() if proc.poll() is not None else line
        rows, frames = int(line[1]), int(line[2])
        before = hashlib.sha256(out.read_bytes()).hexdigest()
        # a second writer, in any mode, is refused at once, naming the holder
        for mode in ("new", "overwrite", "append"):
            with pytest.raises(FileFormatError) as err:
                h5md.H5MDWriter(out, OBSERVABLES, mode=mode)
            msg = str(err.value)
            assert "\n" not in msg and msg.startswith(f"{out} is being written by pid {proc.pid} "
                                                      f"on host {socket.gethostname()} since ")
            assert msg.endswith(f" ({script} {out} new 600)")
        assert hashlib.sha256(out.read_bytes()).hexdigest() == before   # untouched
        info = json.loads(files.lock_path(out).read_text())
        assert info["pid"] == proc.pid and files.lock_holder(out)["pid"] == proc.pid
        # readers are not blocked by the writer's lock
        assert len(h5md.read_observables(out)["step"]) == rows
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    # killed between flushes: a plain closed HDF5 file with every flushed row
    with h5py.File(out, "r") as f:
        assert len(f["observables/stage/step"]) == rows == 30
        assert len(f["particles/all/position/step"]) == frames == 10
    obs, fr = h5md.read_observables(out), h5md.read_frames(out)
    assert obs["step"].tolist() == list(range(30))
    assert fr["position"][:, 0, 0].tolist() == [i + 1.0 for i in range(0, 30, 3)]
    # the stale lock file (no flock held) is taken over; "new" refuses the existing file
    assert files.lock_path(out).exists() and files.lock_holder(out) is None
    with pytest.raises(FileFormatError, match=r"already exists: pass --overwrite to replace it "
                                              r"or --append to continue it$"):
        h5md.H5MDWriter(out, OBSERVABLES)
    r = subprocess.run([sys.executable, str(script), str(out), "append", "0"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.split() == ["flushed", "60", "20"]
    assert h5md.read_observables(out)["step"].tolist() == list(range(60))
    assert "append_1" in h5md.read_parameters(out)
    assert not files.lock_path(out).exists()
    # the old keyword: append=True continues, mode="overwrite" replaces
    w = h5md.H5MDWriter(out, OBSERVABLES, append=True)
    assert w.append and w.n_rows == 60 and w.n_stages == 0
    w.close()
    w = h5md.H5MDWriter(out, OBSERVABLES, mode="overwrite")
    assert w.n_rows == 0
    w.close()
    assert len(h5md.read_observables(out)["step"]) == 0


def test_file_of_an_old_writer_left_open_in_swmr_mode(tmp_path):
    """The previous writer kept the file open in SWMR mode: after a crash it is marked
    'open for write'; readers still read it, recover() clears the mark."""
    out = tmp_path / "old.h5"
    script = _script(tmp_path, "old.py", """
        import os, sys
        import h5py, numpy as np
        from lammps_adv.io.h5md import write_header
        f = h5py.File(sys.argv[1], "w", libver="latest")
        write_header(f)
        f.create_group("parameters").attrs["experiment"] = "run"
        g = f.create_group("observables/energy_error")
        g.create_dataset("step", data=np.arange(5), maxshape=(None,), chunks=(8,))
        g.create_dataset("time", data=np.arange(5) * 1e-3, maxshape=(None,), chunks=(8,))
        g.create_dataset("value", data=np.ones(5), maxshape=(None,), chunks=(8,))
        f.swmr_mode = True
        f.flush()
        os._exit(0)                     # never closed: the crash
    """)
    subprocess.run([sys.executable, str(script), str(out)], check=True, timeout=60)
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(out, "r")
    assert h5md.read_observables(out)["step"].tolist() == list(range(5))
    assert files.recover(out) is True
    with h5py.File(out, "r") as f:
        assert len(f["observables/energy_error/value"]) == 5


# ------------------------------------------------------------------ full disk
FULL = """
    import sys
    import numpy as np
    from lammps_adv.io import h5md
    from lammps_adv.core.errors import FileFormatError
    from lammps_adv.io.schema import RECORDING_OBSERVABLES as OBSERVABLES
    n = 200
    w = h5md.H5MDWriter(sys.argv[1], OBSERVABLES, {"experiment": "run"})
    w.start(["Si"] * n, frames=True)
    rng = np.random.default_rng(0)
    try:
        for i in range(10 ** 6):
            r = w.add_row(i, 0.001 * i, {k: rng.random() for k in OBSERVABLES})
            if i % 5 == 0:
                w.add_frame(i, 0.001 * i, r, rng.random((n, 3)) + 1, rng.random((n, 3)) + 1,
                            rng.random((n, 3)) + 1, np.eye(3) * 10)
            if i % 40 == 39:
                w.flush()
                print("flushed", w.n_rows, w.n_frames, flush=True)
    except FileFormatError as exc:
        again = None
        try:
            w.flush()                   # broken: the same error, the file is not touched
        except FileFormatError as exc2:
            again = exc2
        w.close()                       # releases the lock, raises nothing
        assert str(again) == str(exc)
        print(exc, file=sys.stderr)
        sys.exit(1)
"""


def test_full_disk_one_error_and_every_flushed_row_intact(tmp_path):
    out = tmp_path / "full.h5"
    script = _script(tmp_path, "full.py", FULL)
    limit = 4 << 20

    def limit_file_size():          # Python ignores SIGXFSZ: writes past it fail (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = subprocess.run([sys.executable, str(script), str(out)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300, preexec_fn=limit_file_size)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    flushed = [ln.split() for ln in r.stdout.splitlines()]
    rows, frames = int(flushed[-1][1]), int(flushed[-1][2])
    assert rows >= 200
    assert lines[0] == (f"cannot write {out}: File too large (errno 27); the {rows} rows and "
                        f"{frames} frames flushed before are intact")
    assert not files.lock_path(out).exists()
    assert out.stat().st_size <= limit
    with h5py.File(out, "r") as f:                     # plain h5py opens it
        obs = f["observables"]
        lengths = {len(obs[name]["value"]) for name in obs} | {len(obs["stage/step"])}
        assert lengths == {rows}                       # all observables the same length
        for name in obs:
            assert np.all(np.isfinite(obs[name]["value"][()])), name
        assert obs["stage/step"][()].tolist() == list(range(rows))
        part = f["particles/all"]
        assert len(part["position/step"]) == frames
        for name in ("position", "force", "force_approx", "force_reference", "box/edges"):
            v = part[name]["value"][()]
            assert len(v) == frames and np.all(np.isfinite(v)), name
            assert not np.any(np.all(v == 0, axis=tuple(range(1, v.ndim)))), name
        assert part["record/value"][()].tolist() == list(range(0, rows, 5))


# ------------------------------------------------------------------ damaged files
def test_report_skips_truncated_and_garbage_files_quickly(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    good = results / "good.h5"
    write_recording(good, rows=300, frames_every=0, flush_every=100)
    data = good.read_bytes()
    (results / "truncated.h5").write_bytes(data[: len(data) // 2])
    garbage = bytearray(data)
    mid = len(data) // 2
    garbage[mid:mid + 4096] = np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    (results / "garbage.h5").write_bytes(bytes(garbage))
    for name in ("truncated.h5", "garbage.h5"):
        t0 = time.monotonic()
        with pytest.raises(FileFormatError, match=name):
            h5md.read_observables(results / name)
        assert time.monotonic() - t0 < 10
    t0 = time.monotonic()
    r = subprocess.run([str(BIN / "lammps-adv"), "report", str(results), "-o",
                        str(tmp_path / "report")], cwd=REPO, capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 60
    lines = sorted(ln for ln in r.stderr.splitlines() if ln.strip())
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith(f"lammps-adv: warning: skipping {results / 'garbage.h5'}: ")
    assert lines[1].startswith(f"lammps-adv: warning: skipping {results / 'truncated.h5'}: ")
    report = (tmp_path / "report" / "report.md").read_text()
    assert "good.h5" in report and "truncated.h5" not in report and "garbage.h5" not in report
    assert "fraction E_acc - E_app' > 0" in report and "independent units" in report


# ------------------------------------------------------------------ datasets: non-finite values
def _frame(seed=0, energy=-10.0, forces=None, positions=None):
    rng = np.random.default_rng(seed)
    return {"positions": rng.random((3, 3)) * 4 if positions is None else positions,
            "cell": np.eye(3) * 5, "names": ["Si", "O", "O"], "energy": energy,
            "forces": rng.normal(size=(3, 3)) if forces is None else forces,
            "source": f"test#{seed}"}


def _extxyz(path, frames):
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write
    images = []
    for fr in frames:
        at = Atoms(fr["names"], positions=fr["positions"], cell=fr["cell"], pbc=True)
        at.calc = SinglePointCalculator(at, energy=fr["energy"], forces=fr["forces"])
        images.append(at)
    write(str(path), images, format="extxyz")
    return path


@pytest.mark.parametrize("bad,message", [
    ({"energy": np.nan}, "energy is NaN"),
    ({"forces": np.array([[0, 0, 0], [0, np.inf, 0], [0, 0, 0]])}, "forces contain inf"),
    ({"positions": np.array([[0, 0, 0], [1, 1, np.nan], [2, 2, 2]])}, "positions contain NaN"),
])
def test_dataset_import_refuses_non_finite_values(tmp_path, capsys, bad, message):
    from lammps_adv.cli import main
    from lammps_adv.io import dataset as D
    xyz = _extxyz(tmp_path / "x.extxyz", [_frame(k, **(bad if k == 3 else {})) for k in range(5)])
    with pytest.raises(DatasetError, match=f"^frame 3 of {xyz}: {message}$"):
        D.import_ase([xyz], tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()
    capsys.readouterr()
    assert main(["dataset", "import", str(xyz), "-o", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"lammps-adv dataset: error: frame 3 of {xyz}: {message}"]


def test_training_refuses_a_dataset_with_non_finite_labels(tmp_path, capsys):
    from lammps_adv.cli import main
    from lammps_adv.io import dataset as D
    from lammps_adv.training.train import TrainSettings, train
    frames = [_frame(k) for k in range(8)]
    frames[5]["forces"] = np.array([[0.0, 0, 0], [0, 0, np.nan], [0, 0, 0]])
    ds = D.from_frames(frames, ["Si", "O"], {"reference": "test"}, split=(0.5, 0.25, 0.25))
    path = ds.save(tmp_path / "nan.h5")            # written as it is: the file holds a NaN
    expected = f"dataset {path}: configuration 5 (test#5) has non-finite forces (NaN)"
    with pytest.raises(DatasetError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        train(path, tmp_path / "m.pt", TrainSettings(epochs=1), progress=False, log=None)
    assert not (tmp_path / "m.pt").exists()
    capsys.readouterr()
    assert main(["train", str(path), "-o", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"lammps-adv train: error: {expected}"), err


def test_torn_tail_of_a_kill_during_a_flush_is_hidden_and_overwritten(tmp_path):
    """A kill inside a flush can leave datasets longer than their written data: the rows
    read as step -1 / NaN (fill values), readers stop before them, --append rewrites them."""
    out = tmp_path / "torn.h5"
    write_recording(out, rows=6, frames_every=2)
    with h5py.File(out, "r+") as f:                 # what a SWMR flush killed half-way leaves
        for name in OBSERVABLES:
            f["observables"][name]["value"].resize((9,))
        f["observables/stage/step"].resize((9,))
        f["observables/stage/time"].resize((9,))
        for name in ("position", "force", "force_approx", "force_reference", "box/edges", "record"):
            d = f["particles/all"][name]["value"]
            d.resize((5,) + d.shape[1:])
        f["particles/all/position/step"].resize((5,))
        assert f["observables/stage/step"][6:].tolist() == [-1, -1, -1]
        assert np.isnan(f["observables/energy_error/value"][6:]).all()
        assert np.isnan(f["particles/all/position/value"][3:]).all()
    assert h5md.read_observables(out)["step"].tolist() == list(range(6))
    assert len(h5md.read_frames(out)["step"]) == 3
    w = h5md.H5MDWriter(out, OBSERVABLES, mode="append")
    assert w.n_rows == 6 and w.n_frames == 3
    w.start(SPECIES, frames=True)
    w.add_row(6, 0.006, _values(6))
    w.add_frame(6, 0.006, 6, np.ones((N_ATOMS, 3)), np.ones((N_ATOMS, 3)), np.ones((N_ATOMS, 3)),
                np.eye(3))
    w.close()
    obs, fr = h5md.read_observables(out), h5md.read_frames(out)
    assert obs["step"].tolist() == list(range(7)) and np.isfinite(obs["energy_error"]).all()
    assert fr["step"].tolist() == [0, 2, 4, 6] and fr["record"].tolist() == [0, 2, 4, 6]
    with h5py.File(out, "r") as f:
        assert len(f["observables/energy_error/value"]) == 7


def test_append_adds_observables_a_file_of_an_older_version_lacks(tmp_path):
    """A recording written before the ``dt`` observable existed is continued: ``dt`` is
    created with NaN for its earlier rows, sharing step and time; every old value is kept."""
    out = tmp_path / "old.h5md"
    old = [n for n in OBSERVABLES if n != "dt"]
    w = h5md.H5MDWriter(out, old, {"experiment": "run"})
    w.start(SPECIES, frames=False)
    for i in range(3):
        w.add_row(i, 0.001 * i, _values(i))
    w.close()
    w = h5md.H5MDWriter(out, OBSERVABLES, mode="append")
    for i in range(3, 5):
        w.add_row(i, 0.001 * i, _values(i))
    w.close()
    obs = h5md.read_observables(out)
    assert obs["step"].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(obs["dt"][:3], np.nan)
    assert obs["dt"][3:].tolist() == [_values(i)["dt"] for i in (3, 4)]
    assert obs["temperature"].tolist() == [_values(i)["temperature"] for i in range(5)]
    with h5py.File(out, "r") as f:
        assert f["observables/dt/value"].attrs["unit"] == "ps"
        assert f["observables/dt/step"].id == f["observables/temperature/step"].id
