"""Independent units (the melt-quenched glass a configuration descends from) through the
data path: the cluster bootstrap widens intervals over correlated frames; datasets, the
configuration reader and probe files carry the unit; the report's cos(theta) section says
"not resolved" below MIN_UNITS units and gives intervals from MIN_UNITS on."""
import math
import re

import h5py
import numpy as np
import pytest

from lammps_adv.core.statistics import MIN_UNITS, bootstrap_ci, cluster_bootstrap_ci
from lammps_adv.core.summaries import lean_items, lean_summary
from lammps_adv.io import h5md
from lammps_adv.io.configs import load_configs
from lammps_adv.io.dataset import from_frames, load, unit_from_source
from lammps_adv.io.results import Result
from lammps_adv.report.cos import cos_section


def test_cluster_bootstrap_widens_the_interval_of_correlated_items():
    """8 clusters x 25 nearly identical items: 200 items hold the information of 8, so the
    interval of the mean must be about sqrt(25) = 5 times wider than the naive one."""
    rng = np.random.default_rng(3)
    size = 25
    x = np.repeat(rng.normal(size=8), size) + 1e-3 * rng.normal(size=8 * size)
    units = np.repeat([f"glass{g}" for g in range(8)], size)
    lo_n, hi_n = bootstrap_ci(np.mean, x)
    lo_c, hi_c = cluster_bootstrap_ci(np.mean, x, units=units)
    assert hi_c - lo_c >= math.sqrt(size) / 2 * (hi_n - lo_n)
    assert lo_c <= x.mean() <= hi_c
    # reproducible to the bit (fixed seed), and the plain bootstrap without units
    assert cluster_bootstrap_ci(np.mean, x, units=units) == (lo_c, hi_c)
    assert cluster_bootstrap_ci(np.mean, x) == (lo_n, hi_n)


def _frame(k, source, unit=None, temperature=300.0):
    rng = np.random.default_rng(k)
    fr = {"positions": rng.random((3, 3)) * 4, "cell": np.eye(3) * 5,
          "names": ["Si", "O", "O"], "energy": -10.0 - k, "forces": rng.normal(size=(3, 3)),
          "source": source, "temperature": temperature}
    if unit is not None:
        fr["unit"] = unit
    return fr


def test_dataset_records_units_and_derives_them_for_older_files(tmp_path):
    frames = [_frame(0, "glass0-T300#0", "glass0"), _frame(1, "glass1-T1000#0", "glass1", 1000.0),
              _frame(2, "quartz-T300#0", "quartz"), _frame(3, "n96-glass0-T300-relaxed#0"),
              _frame(4, "OUTCAR#2", temperature=math.nan)]
    ds = from_frames(frames, ["Si", "O"], {"reference": "test"}, split=(1, 0, 0))
    path = ds.save(tmp_path / "d.h5")
    assert load(path).unit == ["glass0", "glass1", "quartz", "n96-glass0", "OUTCAR"]
    assert load(path).config(1)["unit"] == "glass1"
    assert "independent units: 5" in load(path).summary()
    with h5py.File(path, "r") as f:
        assert [u.decode() for u in f["configs/unit"][()]][:3] == ["glass0", "glass1", "quartz"]
    # the configuration reader names the unit with its file and carries the temperature
    configs = load_configs(path, split=None)
    assert [c.unit for c in configs[:3]] == ["d.h5:glass0", "d.h5:glass1", "d.h5:quartz"]
    assert configs[1].temperature == 1000.0 and math.isnan(configs[4].temperature)
    # a file written before /configs/unit: the unit is the source's text before -T or #
    with h5py.File(path, "a") as f:
        del f["configs/unit"]
    assert load(path).unit == ["glass0", "glass1", "quartz", "n96-glass0", "OUTCAR"]
    assert unit_from_source("glass3-T2000#7") == "glass3" and unit_from_source("") == ""


def test_structure_file_frames_are_their_own_units(tmp_path):
    from ase import Atoms
    from ase.io import write
    xyz = tmp_path / "s.xyz"
    images = [Atoms("SiO2", positions=np.random.default_rng(k).random((3, 3)) * 4,
                    cell=np.eye(3) * 5, pbc=True) for k in range(3)]
    images[2].info["independent_unit"] = "glassA"
    write(xyz, images, format="extxyz")
    configs = load_configs(xyz)
    assert [c.unit for c in configs] == ["s.xyz#0", "s.xyz#1", "s.xyz:glassA"]
    assert all(math.isnan(c.temperature) for c in configs)


def test_probe_file_records_independent_unit_and_temperature(tmp_path):
    path = h5md.write_probe(
        tmp_path / "p.h5", {"experiment": "probe"}, epsilon=[0.0], natoms=[24, 24],
        source=["d.h5#0", "d.h5#1"],
        arrays={"cos_adversarial": np.array([0.1, -0.2]),
                "independent_unit": np.array(["d.h5:glass0", "d.h5:glass\u00e91"]),
                "temperature": np.array([300.0, np.nan])})
    d = h5md.read_probe(path)
    assert d["independent_unit"].tolist() == ["d.h5:glass0", "d.h5:glass\u00e91"]
    assert d["temperature"][0] == 300.0 and np.isnan(d["temperature"][1])
    with h5py.File(path, "r") as f:
        assert f["probe/temperature"].attrs["unit"] == "K"


# ------------------------------------------------------------------ the report's cos section
def _probe(name, n_units, per_unit=4, temps=(300.0,), seed=0, units=True):
    """A probe result: n_units glasses x per_unit frames per temperature, frames of one glass
    nearly alike; |cos| well above the random value for 24 atoms (0.094)."""
    rng = np.random.default_rng(seed)
    unit = np.array([f"eval.h5:glass{u}" for _ in temps for u in range(n_units)
                     for _ in range(per_unit)])
    temperature = np.array([t for t in temps for _ in range(n_units * per_unit)])
    base = np.repeat(rng.uniform(0.3, 0.5, n_units * len(temps)), per_unit)
    error = np.repeat(rng.normal(size=n_units * len(temps)), per_unit)
    data = {"cos_adversarial": np.sign(error) * (base + 0.01 * rng.normal(size=len(base))),
            "energy_error": error, "natoms": np.full(len(base), 24), "epsilon": np.zeros(1)}
    if units:
        data.update(independent_unit=unit, temperature=temperature)
    params = {"experiment": "probe", "approx": "bks-dsf", "reference": "bks",
              "sampling": "MD driven by the reference", "alignment": "none"}
    return Result(name, params, data)


def _res(*probes, run=(), relax=()):
    return {"probe": list(probes), "run": list(run), "relax": list(relax), "mitigate": []}


def _rows(text):
    table = [ln for ln in text.splitlines() if ln.startswith("| bks-dsf vs bks")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in table]


def test_cos_section_is_not_resolved_below_min_units(tmp_path):
    from pathlib import Path
    lines = cos_section(_res(_probe(Path("a.h5"), MIN_UNITS - 1)), tmp_path)
    text = "\n".join(lines)
    (row,) = _rows(text)
    assert row[2] == "300" and row[3] == str(4 * (MIN_UNITS - 1)) and row[4] == str(MIN_UNITS - 1)
    assert row[5].endswith("[not resolved]") and row[9] == "not resolved"
    assert row[10].endswith("[not resolved]") and row[11].startswith("not resolved")
    header = next(ln for ln in text.splitlines() if ln.startswith("| model pair"))
    assert "median" not in header and (tmp_path / "cos_hist.png").stat().st_size > 1000


def test_cos_section_gives_cluster_intervals_from_min_units(tmp_path):
    from pathlib import Path
    res = _res(_probe(Path("a.h5"), MIN_UNITS, temps=(300.0, 1000.0)))
    text = "\n".join(cos_section(res, tmp_path))
    rows = _rows(text)
    assert [r[2] for r in rows] == ["300", "1000"]            # one group per temperature
    for r in rows:
        assert r[4] == str(MIN_UNITS)
        assert re.fullmatch(r"[\d.]+ \[[\d.]+, [\d.]+\]", r[5]), r[5]
        assert r[9] == "leans: \\|cos\\| above random"
        assert r[11].endswith("(alignment none)")
    # the tables are reproducible byte for byte
    first = (tmp_path / "cos_stats.md").read_bytes()
    cos_section(res, tmp_path)
    assert (tmp_path / "cos_stats.md").read_bytes() == first


def test_lean_items_units_of_runs_relaxations_and_unitless_probes():
    from pathlib import Path
    old = _probe(Path("old.h5"), 3, units=False)
    items = lean_items(old, "old.h5")
    assert len(set(items["unit"])) == len(items["cos"]) and np.isnan(items["temperature"]).all()
    run = Result(Path("md.h5"), {"experiment": None, "n_atoms": 24},
                 {"cos_adversarial": np.full(50, 0.4), "energy_error": np.ones(50)})
    assert set(lean_items(run, "md.h5")["unit"]) == {"md.h5"}
    relax = Result(Path("relax_0000.h5"), {"experiment": "relax", "n_atoms": 24,
                                           "independent_unit": "eval.h5:glass2",
                                           "start_temperature_K": 1000.0},
                   {"cos_adversarial": np.array([0.3, 0.5]), "energy_error": np.array([-1.0, 1.0]),
                    "energy_error_sign": np.array([-1.0, 1.0])})
    start = lean_items(relax, "relax_0000.h5", first_row=True)
    assert start["unit"].tolist() == ["eval.h5:glass2"] and start["temperature"][0] == 1000.0
    assert start["c_force"][0] == pytest.approx(-0.3)
    # one recorded run is one unit however many rows it has
    s = lean_summary(**lean_items(run, "md.h5"))
    assert s["units"] == 1 and s["magnitude"] == "not resolved" and s["n"] == 50
