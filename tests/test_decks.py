"""The input decks run with `lmp -in` and under `mpirun -np 2`, from the repository root."""
import re

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
