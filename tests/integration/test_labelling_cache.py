"""Reference labelling at scale: disk cache, resume after a kill, MPI ranks, recorded settings.

GFN1-xTB on 9-atom alpha-quartz cells (rattled): about 0.15 s a label on one thread.
"""
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import BIN, REPO, run_cmd
from lammps_adv.calculators import get_calculator
from lammps_adv.core.configuration import config_key
from lammps_adv.core.errors import CalculatorError
from lammps_adv.io.label_cache import ENV, LabelCache, settings_id
from lammps_adv.experiments.labelling import label
from lammps_adv.parallel.mpi import mpi_comm
from lammps_adv.io.dataset import load


def _configs(n, seed=0):
    from lammps_adv.lammps.structures import quartz
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = quartz()
        out.append((a.positions + rng.normal(0, 0.05, a.positions.shape), a.cell.array.copy(),
                    a.get_chemical_symbols(), f"rattled#{k}"))
    return out


def _write_extxyz(path, configs):
    from ase import Atoms
    from ase.io import write
    write(str(path), [Atoms(n, positions=p, cell=c, pbc=True) for p, c, n, *_ in configs])
    return path


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv(ENV, str(d))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return d


def test_cache_round_trip_mismatch_and_damage(tmp_path):
    cache = LabelCache(tmp_path, {"method": "X", "accuracy": 1.0})
    (pos, cell, names, _), (pos2, *_) = _configs(2)
    key = config_key(names, pos, cell)
    assert cache.get(key, names, pos, cell) is None and cache.misses == 1
    f = np.arange(27.0).reshape(9, 3) / 7
    path = cache.put(key, names, pos, cell, -12.5, f)
    e, f2 = cache.get(key, names, pos, cell)
    assert e == -12.5 and np.array_equal(f2, f) and cache.hits == 1
    # the key of another configuration (a collision or a copied file) is not trusted
    assert cache.get(key, names, pos2, cell) is None
    # another setting is another folder; the settings are stated next to the labels
    other = LabelCache(tmp_path, {"method": "X", "accuracy": 0.5})
    assert other.folder != cache.folder and other.get(key, names, pos, cell) is None
    assert json.loads((cache.folder / "settings.json").read_text())["accuracy"] == 1.0
    assert cache.folder.name == settings_id({"accuracy": 1.0, "method": "X"})
    # a damaged file is a miss (recomputed and rewritten), never an error
    path.write_bytes(path.read_bytes()[:40])
    assert cache.get(key, names, pos, cell) is None
    assert not list(cache.folder.glob("*/.*.tmp"))        # no temporary left behind


def test_xtb_labels_rerun_computes_nothing_and_states_settings(cache_dir):
    configs = _configs(4)
    comm = mpi_comm()
    first, second = {}, {}
    a = label(configs, "xtb:GFN1", comm, stats=first)
    b = label(configs, "xtb:GFN1", comm, stats=second)
    assert (first["computed"], first["cached"]) == (4, 0)
    assert (second["computed"], second["cached"]) == (0, 4)
    for x, y in zip(a, b):
        assert x["energy"] == y["energy"] and np.array_equal(x["forces"], y["forces"])
    s = first["reference_settings"]
    assert s["method"] == "GFN1-xTB" and s["accuracy"] == 1.0
    assert s["electronic_temperature_K"] == 300.0 and "Gamma point" in s["k_points"]
    assert "3D periodic" in s["periodicity"] and s["code"].startswith("tblite ")
    for word in ("GFN1-xTB", "accuracy 1", "300 K", "Gamma point"):
        assert word in first["reference_description"]
    # other settings are other labels: nothing is read from the default settings' cache
    third = {}
    c = label(configs[:1], "xtb:GFN1:etemp=5000", comm, stats=third)
    assert (third["computed"], third["cached"]) == (1, 0)
    assert c[0]["energy"] != a[0]["energy"]
    # the cache is the calculator's: a probe or recording hits it too
    calc = get_calculator("xtb:GFN1")
    e, f = calc.evaluate(configs[2][0], configs[2][1], symbols=configs[2][2])
    assert (calc.n_backend, calc.n_cache_hits) == (0, 1) and e == a[2]["energy"]


def test_label_is_a_function_of_the_configuration_alone(monkeypatch):
    """Order does not matter (no wavefunction carried over): the basis of the cache and of
    1 vs N ranks giving the same labels. On one OpenMP thread, as the demo labels
    (tblite's threaded sums differ in the last bits from one thread schedule to another);
    the setting counts only if no earlier test of this process loaded tblite's runtime
    with more threads, which none does."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv(ENV, "off")
    configs = _configs(3, seed=5)
    fwd = get_calculator("xtb:GFN1")
    rev = get_calculator("xtb:GFN1")
    ef = [fwd.evaluate(p, c, symbols=n) for p, c, n, *_ in configs]
    er = [rev.evaluate(p, c, symbols=n) for p, c, n, *_ in configs[::-1]][::-1]
    assert fwd.cache is None and fwd.n_backend == 3
    for (e1, f1), (e2, f2) in zip(ef, er):
        assert e1 == e2 and np.array_equal(f1, f2)


def test_two_ranks_give_the_serial_labels_and_a_rerun_computes_none(tmp_path):
    src = _write_extxyz(tmp_path / "configs.extxyz", _configs(6, seed=1))
    base = [BIN / "lammps-adv", "label", src, "--reference", "xtb:GFN1", "--quiet"]
    serial = run_cmd(base + ["-o", tmp_path / "serial.h5", "--label-cache", tmp_path / "c1"])
    mpi = [BIN / "mpirun", "-np", "2"] + base
    two = run_cmd(mpi + ["-o", tmp_path / "two.h5", "--label-cache", tmp_path / "c2"])
    assert "6 computed, 0 from the label cache" in serial.stdout
    assert "6 computed, 0 from the label cache" in two.stdout and "2 MPI group(s)" in two.stdout
    a, b = load(tmp_path / "serial.h5"), load(tmp_path / "two.h5")
    assert np.array_equal(a.energy, b.energy) and np.array_equal(a.forces, b.forces)
    assert np.array_equal(a.positions, b.positions)
    again = run_cmd(mpi + ["-o", tmp_path / "again.h5", "--label-cache", tmp_path / "c2"])
    assert "0 computed, 6 from the label cache" in again.stdout
    assert np.array_equal(load(tmp_path / "again.h5").forces, a.forces)
    gen = a.attrs["generator"]
    assert a.attrs["reference"] == "xtb:GFN1" and gen["reference_settings"]["method"] == "GFN1-xTB"
    assert len(list((tmp_path / "c2").glob("*/*/*.npz"))) == 6


def test_killed_labelling_resumes_from_the_cache(tmp_path):
    n = 14
    src = _write_extxyz(tmp_path / "configs.extxyz", _configs(n, seed=2))
    cache = tmp_path / "cache"
    cmd = [str(BIN / "lammps-adv"), "label", str(src), "--reference", "xtb:GFN1", "--quiet",
           "-o", str(tmp_path / "out.h5"), "--label-cache", str(cache)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while len(list(cache.glob("*/*/*.npz"))) < 2 and proc.poll() is None and time.time() - t0 < 120:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = len(list(cache.glob("*/*/*.npz")))
    assert 2 <= kept < n, "the labelling finished before it could be killed"
    assert not (tmp_path / "out.h5").exists()
    done = run_cmd(cmd)
    assert f"{n - kept} computed, {kept} from the label cache" in done.stdout
    assert len(load(tmp_path / "out.h5")) == n


def test_probe_on_stored_labels_and_its_recorded_reference(cache_dir, tmp_path):
    """A probe against stored xtb labels (labels:FILE) needs no live QM code, records what
    labelled them, and says clearly that displaced configurations are not stored."""
    from lammps_adv.io import h5md
    from lammps_adv.experiments.labelling import relabel
    from lammps_adv.experiments.probe import probe
    from lammps_adv.io.configs import load_configs
    src = _write_extxyz(tmp_path / "configs.extxyz", _configs(4, seed=3))
    ds, _ = relabel(src, tmp_path / "xtb.h5", "xtb:GFN1", progress=False)
    assert ds.unit == [f"configs.extxyz#{k}" for k in range(4)]   # each frame its own unit
    configs = load_configs(tmp_path / "xtb.h5", split=None)
    out = probe(configs, "bks-dsf", f"labels:{tmp_path / 'xtb.h5'}", tmp_path / "p.h5",
                epsilons=(0.0,), n_random=0, progress=False)
    params = h5md.read_parameters(out, texts=False)
    assert "labelled by xtb:GFN1" in params["reference_description"]
    assert "Gamma point" in params["reference_description"]
    # unaligned: one configuration aligned per species has an energy error of round-off,
    # and A = 0 would leave nothing to displace
    with pytest.raises(CalculatorError, match="--epsilon 0 --random 0"):
        probe(configs[:1], "bks-dsf", f"labels:{tmp_path / 'xtb.h5'}", tmp_path / "q.h5",
              epsilons=(0.0, 0.1), n_random=0, progress=False, align="none")


def test_bad_xtb_spec_and_cache_options_are_one_line_errors(tmp_path):
    for spec, words in (("xtb:GFN1:accuracy=fast", "not a float"),
                        ("xtb:GFN1:kpts=2", "expected one of accuracy=VALUE"),
                        ("xtb:GFN1:etemp=-5", "etemp >= 0 K"), ("xtb:GFN9", "xtb:GFN1 or xtb:GFN2")):
        with pytest.raises(CalculatorError, match=words):
            get_calculator(spec)
    src = _write_extxyz(tmp_path / "c.extxyz", _configs(1))
    proc = run_cmd([BIN / "lammps-adv", "label", src, "-o", tmp_path / "x.h5", "--reference",
                    "xtb:GFN1:accuracy=fast"], check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "not a float" in proc.stderr


def test_report_qm_section_says_whether_force_training_lowered_cos(tmp_path):
    """The QM section: a row per pair judged against GFN-xTB, |cos| and sign with cluster
    intervals over the independent units, and the verdict on force training from the
    interval of the difference of mean |cos| (yes / no / no resolved difference / not
    resolved with fewer than 5 units)."""
    from lammps_adv.io.results import Result
    from lammps_adv.report.qm import is_qm, qm_section
    rng = np.random.default_rng(0)
    models = {}
    for name, fw in (("e", 0.0), ("ef", 1.0)):
        (tmp_path / f"{name}.card.json").write_text(json.dumps({"settings": {"force_weight": fw}}))
        models[name] = f"torchscript:{tmp_path / name}.pt"
    ref = {"reference": "xtb:GFN1", "reference_description": "GFN1-xTB (tblite): Gamma point only",
           "experiment": "probe"}

    noise = rng.normal(0, 0.1, 40)      # the same configurations probed with every model

    def probe(approx, mean, glasses):
        n = 5 * glasses
        return Result(tmp_path / "p.h5", {**ref, "approx": approx},
                      {"cos_adversarial": np.clip(mean + noise[:n], -1, 1),
                       "energy_error_sign": rng.choice([-1.0, 1.0], n),
                       "natoms": np.full(n, 24),
                       "independent_unit": np.repeat([f"g{k}" for k in range(glasses)], 5),
                       "temperature": np.full(n, 300.0)})

    def section(e_mean, ef_mean, glasses=8):
        res = {"probe": [probe("bks", 0.3, glasses), probe(models["e"], e_mean, glasses),
                         probe(models["ef"], ef_mean, glasses)]}
        return "\n".join(qm_section(res, tmp_path))
    text = section(0.6, 0.1)
    assert "Judged against a quantum-mechanical reference" in text
    assert "bks vs xtb:GFN1" in text and "torchscript:ef.pt vs xtb:GFN1" in text
    assert "Gamma point only" in text and "[" in text          # settings and intervals
    assert "yes: training on forces lowered mean |cos(theta)|" in text
    assert "over 8 independent units" in text
    assert "no: mean |cos(theta)| is higher with force training" in section(0.1, 0.6)
    assert "no resolved difference" in section(0.3, 0.3)
    assert "not resolved: 2 independent units" in section(0.6, 0.1, glasses=2)
    assert qm_section({"probe": [Result(tmp_path / "x.h5", {"reference": "bks"}, {})]}, tmp_path) == []
    assert is_qm({"reference": "labels:x.h5", "reference_description": "stored labels of x.h5, "
                  "labelled by xtb:GFN1 (...)"})
    assert not is_qm({"reference": "labels:x.h5", "reference_description": "labelled by bks-dsf"})
