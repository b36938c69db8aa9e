"""`lammps-adv driven` end to end on two 48-atom glasses: NVT MD driven by the shipped BP
network (under `mpirun -np 2`, two runs at a time) recorded against bks-dsf, the ends
relaxed by FIRE, then analysis/model_driven.py on the folder: files, provenance, row
counts, convergence, "not resolved" below five glasses, byte-identical tables on a rerun,
and a serial run that writes the same numbers as the parallel one."""
import csv

import numpy as np
import pytest

from conftest import BIN, REPO, run_cmd
from lammps_adv.core.adversarial import random_abs_cos
from lammps_adv.experiments.driven import driven, one_per_unit, velocity_seed
from lammps_adv.io.configs import load_configs
from lammps_adv.io.results import read_files, recording

BP = f"torchscript:{REPO / 'potentials' / 'bp_bks_dsf.pt'}"
STEPS, EVERY, FIRE_CAP, FMAX = 30, 10, 60, 0.05      # MD steps (1 fs), record interval, eV/A
TEMPS = (300.0, 1000.0)


@pytest.fixture(scope="module")
def glasses(tmp_path_factory):
    """Two 48-atom glasses (short melt-quench by bks-dsf), a thermal frame and a relaxed
    copy of each."""
    d = tmp_path_factory.mktemp("driven_glasses")
    run_cmd([BIN / "lammps-adv", "dataset", "mixed", "-o", d / "g48.h5", "--sizes", 48,
             "--glasses", 2, "--temps", 300, "--frames", 1, "--stride", 10, "--equil", 10,
             "--melt-ps", 0.5, "--quench-ps", 0.5, "--relaxed", 1, "--split", "1,0,0",
             "--seed", 5, "--quiet"])
    return d / "g48.h5"


@pytest.fixture(scope="module")
def run(glasses, tmp_path_factory):
    out = tmp_path_factory.mktemp("driven") / "runs"
    proc = run_cmd([BIN / "mpirun", "-np", 2, BIN / "lammps-adv", "driven", glasses,
                    "--approx", BP, "--reference", "bks-dsf", "-o", out,
                    "--temps", ",".join(f"{t:g}" for t in TEMPS), "--ps", STEPS / 1000,
                    "--every", EVERY, "--fmax", FMAX, "--steps", FIRE_CAP, "-q"])
    return out, proc


def test_one_relaxed_glass_per_unit(glasses):
    """The relaxed (0 K) configuration of each unit when there is one, else its first."""
    configs = load_configs(glasses, split=None)
    chosen = one_per_unit(configs)
    assert [c.unit for c in chosen] == ["g48.h5:n48-glass0", "g48.h5:n48-glass1"]
    assert [c.temperature for c in chosen] == [0.0, 0.0]
    assert sorted(c.temperature for c in configs) == [0.0, 0.0, 300.0, 300.0]
    thermal = [c for c in configs if c.temperature == 300.0]
    assert [c.source for c in one_per_unit(thermal[::-1])] == [c.source for c in thermal[::-1]]
    assert len(one_per_unit(configs, 1)) == 1
    with pytest.raises(ValueError, match="--glasses must be >= 1"):
        one_per_unit(configs, 0)


def test_files_provenance_and_rows(run, glasses):
    out, proc = run
    assert "wrote 4 MD recordings (2 glasses x 2 temperatures) and 4 relaxations" in proc.stdout
    md = read_files(sorted(out.glob("md_T*.h5md")), recording)
    assert [r.path.name for r in md] == ["md_T1000_00.h5md", "md_T1000_01.h5md",
                                         "md_T300_00.h5md", "md_T300_01.h5md"]
    starts = one_per_unit(load_configs(glasses, split=None))
    for r in md:
        p, d = r.params, r.data
        t, k = float(r.path.name[4:].split("_")[0]), int(r.path.stem[-2:])
        assert p["experiment"] == "driven" and p["driver"] == BP
        assert p["temperature_K"] == t and p["independent_unit"] == starts[k].unit
        assert p["source"] == starts[k].source and p["alignment"] == "none"
        assert p["velocity_seed"] == velocity_seed(4928, k, TEMPS.index(t))
        assert p["md_steps"] == STEPS and p["n_atoms"] == 48
        # step 0 and every EVERY-th step after it
        assert list(d["step"]) == list(range(0, STEPS + 1, EVERY))
        assert set(d["stage_kind"]) == {"run"}
        assert np.all(np.isfinite(d["energy_error"])) and np.all(np.abs(d["cos_adversarial"]) <= 1)
        assert np.allclose(d["time"], d["step"] * 0.001)
    relax = read_files(sorted((out / "relax").glob("*.h5md")), recording)
    assert len(relax) == 4
    for i, r in enumerate(relax):
        p = r.params
        t, k = TEMPS[i // 2], i % 2            # temperature, then glass
        assert p["experiment"] == "relax" and p["source"] == f"md_T{t:g}_{k:02d}.h5md#end"
        assert p["independent_unit"] == starts[k].unit and p["start_temperature_K"] == t
        assert p["alignment"] == "none" and p["min_style"] == "fire"
        # converged within fmax, or stopped by the cap and says so
        assert (p["converged"] and p["final_fmax_eV_per_A"] <= FMAX) or \
            (not p["converged"] and p["minimizer_steps"] == FIRE_CAP)
        assert p["minimizer_steps"] == r.data["step"][-1]


def test_serial_equals_parallel(run, glasses, tmp_path):
    """One group per rank runs as a serial run: the same numbers to rounding. The serial
    run here uses this process's torch threads and each rank one thread, so the
    kernel's sums run in a different order (bits may differ, digits do not)."""
    out, _ = run
    (glass,) = one_per_unit(load_configs(glasses, split=None), 1)
    paths = driven([glass], BP, "bks-dsf", tmp_path, temps=(300,), ps=STEPS / 1000,
                   every=EVERY, relax=False, progress=False)
    assert paths == {"md": [tmp_path / "md_T300_00.h5md"], "relax": []}
    (serial,), (parallel,) = (read_files([p], recording) for p in
                              (tmp_path / "md_T300_00.h5md", out / "md_T300_00.h5md"))
    assert np.array_equal(serial.data["step"], parallel.data["step"])
    for key in ("energy_approx", "energy_reference", "cos_adversarial"):
        np.testing.assert_allclose(serial.data[key], parallel.data[key], rtol=1e-9,
                                   atol=1e-12, err_msg=key)
    with pytest.raises(FileExistsError, match="give --overwrite"):
        driven([glass], BP, "bks-dsf", tmp_path, temps=(300,), ps=0.01, relax=False,
               progress=False)


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_analysis_not_resolved_and_reproducible(run, tmp_path):
    out, _ = run
    script = REPO / "analysis" / "model_driven.py"
    proc = run_cmd([BIN / "python", script, out, "-o", tmp_path / "a" / "md"], cwd=tmp_path)
    assert "4 MD runs and 4 relaxations" in proc.stdout
    assert "[not resolved]" in proc.stdout            # 2 glasses < 5
    rows = _csv(tmp_path / "a" / "md.csv")
    assert [(r["sampling"], r["temperature"]) for r in rows] == [
        ("MD", "300 K"), ("MD", "1000 K"), ("relaxation", "300 K"), ("relaxation", "1000 K"),
        ("relaxation", "all")]
    assert all(r["units"] == "2" and r["abs_cos_along_lo"] == "not resolved" for r in rows)
    # the numbers recomputed from the files: runs averaged after their rows
    md300 = read_files(sorted(out.glob("md_T300_*.h5md")), recording)
    along = np.mean([np.abs(r.data["cos_adversarial"]).mean() for r in md300])
    end_pos = np.mean([r.data["energy_error"][-1] > 0 for r in md300])
    assert float(rows[0]["abs_cos_along_mean"]) == pytest.approx(along, rel=1e-5)
    assert float(rows[0]["positive_end_mean"]) == pytest.approx(end_pos, abs=1e-6)
    assert float(rows[0]["random_abs_cos"]) == pytest.approx(random_abs_cos(48), rel=1e-5)
    assert rows[0]["rows"] == str(2 * (STEPS // EVERY + 1))
    assert (tmp_path / "a" / "md.png").stat().st_size > 10_000
    first = [(tmp_path / "a" / f"md.{ext}").read_bytes() for ext in ("csv", "md")]
    run_cmd([BIN / "python", script, out, "-o", tmp_path / "a" / "md"], cwd=tmp_path)
    assert [(tmp_path / "a" / f"md.{ext}").read_bytes() for ext in ("csv", "md")] == first


def test_bad_input_is_one_line(glasses, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cmd([BIN / "python", REPO / "analysis" / "model_driven.py", empty],
                   cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no .h5/.h5md files" in proc.stderr
    for args, needle in ((["--ps", 0], "positive run length"),
                         (["--temps", "300,-5"], "temperatures must be positive"),
                         (["--approx", "xtb:GFN1"], "cannot drive LAMMPS")):
        proc = run_cmd([BIN / "lammps-adv", "driven", glasses, "--approx", BP,
                        "--reference", "bks-dsf", "-o", tmp_path / "x", *args], check=False)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert needle in proc.stderr
    assert not (tmp_path / "x").exists()
