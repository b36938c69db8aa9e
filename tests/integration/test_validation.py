"""What the CLI and the library refuse, and what they must still do: `lammps-adv potentials`
lists the catalogue; `lammps-adv glass` / `structures.amorphous` refuse parameters they cannot
honour (one error line, no file) instead of writing a short or meaningless glass."""
import math

import pytest

from conftest import BIN, run_cmd
from lammps_adv.lammps import structures
from lammps_adv.core.errors import StructureError
from lammps_adv.lammps.structures import amorphous, density, read_lammps_data


def cli(*args, cwd):
    return run_cmd([BIN / "lammps-adv", *args], cwd=cwd, check=False)


def one_error_line(proc, command):
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"lammps-adv {command}: error: ") and "Traceback" not in proc.stderr
    return lines[0]


# ---------------------------------------------------------------- lammps-adv potentials
def test_potentials_lists_every_entry(tmp_path):
    """It used to exit 2 trying to build the placeholder torchscript:FILE.pt."""
    proc = cli("potentials", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert {"bks", "bks:ewald", "bks:pppm", "bks-dsf", "lammps:FILE",
            "torchscript:FILE.pt"} <= set(rows)
    assert "Ewald" in rows["bks"] and "PPPM" in rows["bks:pppm"] and "DSF" in rows["bks-dsf"]
    assert "TorchScript" in rows["torchscript:FILE.pt"] and "snippet" in rows["lammps:FILE"]
    assert list(tmp_path.iterdir()) == []          # nothing built, nothing written


# ---------------------------------------------------------------- lammps-adv glass
def test_glass_refuses_impossible_density(tmp_path):
    """-n 96 --density 6 used to exit 0 with an 85-atom file."""
    proc = cli("glass", "-n", 96, "--density", 6, "-o", "g.data", cwd=tmp_path)
    line = one_error_line(proc, "glass")
    assert "density" in line and "6.0" in line and "4.5" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,words", [
    (["-n", 0], ["multiple of 3", "got 0"]),
    (["-n", -3], ["multiple of 3", "got -3"]),
    (["--t-melt", 0], ["melt temperature", "got 0.0"]),
    (["--melt-ps", -1], ["melt time", "got -1.0"]),
])
def test_glass_refuses_bad_parameters(tmp_path, args, words):
    line = one_error_line(cli("glass", *args, "-o", "sub/g.data", cwd=tmp_path), "glass")
    for w in words:
        assert w in line, line
    assert list(tmp_path.iterdir()) == []          # not even the output folder


def test_small_glass_still_works(tmp_path):
    proc = cli("glass", "-n", 24, "--melt-ps", 0.2, "--quench-ps", 0.2, "-o", "g.data",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "wrote g.data: 24 atoms, 2.200 g/cm^3" in proc.stdout
    g = read_lammps_data(tmp_path / "g.data")
    assert len(g) == 24 and g.get_chemical_symbols().count("Si") == 8
    assert density(g) == pytest.approx(2.20, rel=1e-3)


# ---------------------------------------------------------------- structures.amorphous
@pytest.mark.parametrize("kwargs,match", [
    ({"n_atoms": 100}, "multiple of 3"),
    ({"n_atoms": 0}, "multiple of 3"),
    ({"n_atoms": 96.0}, "multiple of 3"),
    ({"rho": 6.0}, "glass density must be between 1 and 4.5 g/cm"),
    ({"rho": 0.5}, "glass density"),
    ({"rho": math.nan}, "glass density"),
    ({"rho": "2.2"}, "glass density"),
    ({"t_melt": 300.0}, "melt temperature must be above 300 and at most 20000 K"),
    ({"t_melt": -5.0}, "melt temperature"),
    ({"t_melt": 1e6}, "melt temperature"),
    ({"t_melt": math.inf}, "melt temperature"),
    ({"melt_ps": 0.0}, "melt time must be between 0.001 and 100000 ps"),
    ({"melt_ps": 1e9}, "melt time"),
    ({"quench_ps": -1.0}, "quench time"),
    ({"quench_ps": math.nan}, "quench time"),
    ({"seed": 0}, "seed must be an integer"),
    ({"seed": 2**31}, "seed"),
])
def test_amorphous_refuses_before_lammps(tmp_path, kwargs, match):
    out = tmp_path / "sub" / "g.data"
    args = {"n_atoms": 24, "out": out, **kwargs}
    with pytest.raises(StructureError, match=match) as err:
        amorphous(**args)
    assert "\n" not in str(err.value)
    assert not out.parent.exists()


def test_amorphous_refuses_short_insertion(tmp_path, monkeypatch):
    """Whatever the parameters, fewer atoms from LAMMPS than asked is an error naming both
    numbers, raised when insertion falls short (before the melt), and no file is written.
    The density check is widened here to reach LAMMPS at an impossible density."""
    monkeypatch.setattr(structures, "GLASS_DENSITY", (1.0, 10.0))
    out = tmp_path / "g.data"
    with pytest.raises(StructureError, match=r"LAMMPS placed only \d+ of 96 atoms") as err:
        amorphous(96, rho=6.0, out=out, melt_ps=0.01, quench_ps=0.01)
    placed = int(str(err.value).split("only ")[1].split()[0])
    assert 0 < placed < 96 and "\n" not in str(err.value)
    assert not out.exists()


def test_amorphous_densest_allowed(tmp_path):
    """4.5 g/cm^3, the upper end of the range: every atom placed."""
    g = amorphous(192, rho=4.5, out=tmp_path / "g.data", seed=3, t_melt=3000.0,
                  melt_ps=0.01, quench_ps=0.01)
    assert len(g) == 192 and density(g) == pytest.approx(4.5, rel=1e-3)
