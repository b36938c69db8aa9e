"""Command line: bad input gives one clear error line and a non-zero exit."""

from conftest import BIN, run_cmd


def cli(*args):
    return run_cmd([BIN / "lammps-adv", *args], check=False)


def assert_one_line_error(proc, *words):
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert "error" in lines[0]
    for w in words:
        assert w in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


def test_energy_ok(glass_192):
    proc = cli("energy", glass_192, "--potential", "bks-dsf")
    assert proc.returncode == 0
    assert "eV/atom, 192 atoms" in proc.stdout


def test_unknown_potential(glass_192):
    assert_one_line_error(cli("energy", glass_192, "--potential", "bks-typo"), "unknown potential", "bks-typo")


def test_missing_data_file(tmp_path):
    assert_one_line_error(cli("energy", tmp_path / "nope.data"), "not found", "nope.data")


def test_wrong_atom_types(glass_192, tmp_path):
    swapped = tmp_path / "swapped.data"
    text = glass_192.read_text().replace("\n1 Si\n2 O\n", "\n1 O\n2 Si\n")
    swapped.write_text(text)
    assert_one_line_error(cli("energy", swapped), "type 1 = Si")
    three = tmp_path / "three.data"
    text = glass_192.read_text().replace("2 atom types", "3 atom types").replace(
        "\n1 Si\n2 O\n", "\n1 Si\n2 O\n3 C\n").replace("2 15.9994\n", "2 15.9994\n3 12.011\n")
    three.write_text(text)
    assert_one_line_error(cli("energy", three), "3 atom types")


def test_glass_bad_atom_count():
    assert_one_line_error(cli("glass", "-n", "100"), "multiple of 3")


def test_help_mentions_units():
    proc = cli("--help")
    assert proc.returncode == 0 and "eV" in proc.stdout
