"""Independent units from `lammps-adv dataset generate` to the results: each melt-quench is
one unit (run at every temperature), the configuration reader names it with its file, and
probe and relaxation files record the unit and temperature of their configurations."""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lammps_adv.experiments.probe import probe
from lammps_adv.experiments.relax import relax
from lammps_adv.io import h5md
from lammps_adv.io.configs import load_configs
from lammps_adv.io.dataset import load
from lammps_adv.io.schema import PROBE_PARAMETERS, RELAX_PARAMETERS

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def two_glasses(tmp_path_factory):
    """Two 24-atom melt-quenches at 300 and 1500 K and a 9-atom quartz cell at 300 K, two
    frames per run, made by the command line."""
    out = tmp_path_factory.mktemp("units") / "glasses.h5"
    proc = subprocess.run(
        [str(BIN / "lammps-adv"), "dataset", "generate", "-o", str(out), "--reference",
         "bks-dsf", "--glass-atoms", "24", "--glasses", "2", "--glass-temps", "300,1500",
         "--quartz", "1x1x1", "--quartz-temps", "300", "--frames", "2", "--stride", "5",
         "--equil", "10", "--melt-ps", "0.3", "--quench-ps", "0.3", "--seed", "3",
         "--split", "1,0,0", "--quiet"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_generate_records_one_unit_per_melt_quench(two_glasses):
    ds = load(two_glasses)
    assert len(ds) == 2 * 2 * 2 + 2
    for i in range(len(ds)):       # every run of glass g, at every temperature, is unit glassg
        assert ds.source[i].startswith(ds.unit[i] + "-T"), (ds.source[i], ds.unit[i])
    assert sorted(set(ds.unit)) == ["glass0", "glass1", "quartz"]
    assert sorted({(u, t) for u, t in zip(ds.unit, ds.temperature.tolist())}) == [
        ("glass0", 300.0), ("glass0", 1500.0), ("glass1", 300.0), ("glass1", 1500.0),
        ("quartz", 300.0)]
    # two melt-quenches are two different glasses, not copies
    first = {u: ds.config(ds.unit.index(u))["positions"] for u in ("glass0", "glass1")}
    assert not np.allclose(first["glass0"], first["glass1"])
    assert ds.attrs["generator"]["frame_spacing_ps"] == pytest.approx(0.005)
    configs = load_configs(two_glasses, split=None)
    assert {c.unit for c in configs} == {"glasses.h5:glass0", "glasses.h5:glass1",
                                         "glasses.h5:quartz"}
    assert [c.temperature for c in configs] == ds.temperature.tolist()


def test_probe_and_relax_record_units_and_temperatures(two_glasses, tmp_path):
    configs = load_configs(two_glasses, split=None)
    picked = [configs[0], configs[3], configs[-1]]      # glass0 300 K, glass0 1500 K, quartz
    out = probe(picked, "bks-dsf", "bks", tmp_path / "p.h5", epsilons=(0.0,), n_random=0,
                progress=False, align="none")
    d = h5md.read_probe(out)
    assert d["independent_unit"].tolist() == [c.unit for c in picked]
    assert d["temperature"].tolist() == [c.temperature for c in picked]
    (path,) = relax(picked[1:2], "bks-dsf", "bks", tmp_path / "relax", steps=2,
                    progress=False, align="none")
    params = h5md.read_parameters(path, texts=False)
    # the files hold what the file-format owner declares
    recorded = set(h5md.read_parameters(path))           # with the texts (command line)
    assert set(RELAX_PARAMETERS) <= recorded, set(RELAX_PARAMETERS) - recorded
    recorded = set(h5md.read_parameters(out))
    assert set(PROBE_PARAMETERS) <= recorded, set(PROBE_PARAMETERS) - recorded
    assert params["independent_unit"] == picked[1].unit
    assert params["start_temperature_K"] == picked[1].temperature
    # a configuration without a unit is its own (its source)
    bare = [tuple(picked[0])[:4]]
    d = h5md.read_probe(probe(bare, "bks-dsf", "bks", tmp_path / "q.h5", epsilons=(0.0,),
                              n_random=0, progress=False, align="none"))
    assert d["independent_unit"].tolist() == [picked[0].source]
    assert math.isnan(d["temperature"][0])
