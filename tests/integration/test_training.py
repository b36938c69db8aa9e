"""Datasets from LAMMPS (HDF5 layout, labels equal LAMMPS), import from extxyz / OUTCAR,
training (loss goes down, checkpoint-resume continues identically), bad input."""
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from lammps_adv.lammps.engine import open_lammps
from lammps_adv.lammps.snippets import get as get_potential
from lammps_adv.lammps.structures import write_lammps_data
from lammps_adv.core.errors import DatasetError, TrainingError
from lammps_adv.core.units import BAR_PER_EV_A3
from lammps_adv.io import dataset as D
from lammps_adv.training import sampling
from lammps_adv.io.h5md import read_parameters, read_probe
from lammps_adv.io.model_card import card_paths
from lammps_adv.experiments.probe import probe
from lammps_adv.lammps.structures import closest_pairs_of_set
from lammps_adv.training.train import TrainSettings, train

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """12 configurations labelled by bks-dsf: a 24-atom glass at 300 and 2500 K, quartz."""
    path = tmp_path_factory.mktemp("ds") / "tiny.h5"
    sampling.generate(path, reference="bks-dsf", glass_atoms=24, n_glasses=1,
               glass_temps=(300, 2500), quartz_cells=(1, 1, 1), quartz_temps=(600,),
               frames=4, stride=5, equil=10, melt_ps=0.3, quench_ps=0.3, seed=3,
               split=(0.5, 0.25, 0.25), progress=False)
    return path


def test_generate_under_mpirun_writes_one_complete_dataset(tmp_path):
    """Two ranks share the melt-quench (domain decomposition): the glass file LAMMPS's rank 0
    writes is read by both, and one complete dataset is written."""
    out = tmp_path / "two.h5"
    proc = subprocess.run(
        [str(BIN / "mpirun"), "-np", "2", str(BIN / "lammps-adv"), "dataset", "generate",
         "-o", str(out), "--reference", "bks-dsf", "--glass-atoms", "48", "--glass-temps",
         "300,1500", "--quartz", "0", "--frames", "3", "--stride", "5", "--equil", "10",
         "--melt-ps", "0.3", "--quench-ps", "0.3", "--seed", "3", "--quiet"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    ds = D.load(out)
    assert len(ds) == 6 and all(len(ds.config(i)["positions"]) == 48 for i in range(6))
    assert np.isfinite(ds.config(5)["forces"]).all()


def lammps_labels(config):
    """Energy, forces and stress of one configuration by a fresh LAMMPS `run 0`."""
    from ase import Atoms
    from lammps_adv.lammps.structures import read_lammps_data
    at = Atoms(config["names"], positions=config["positions"], cell=config["cell"], pbc=True)
    tmp = Path(config["tmp"]) / "c.data"
    write_lammps_data(tmp, at)
    at = read_lammps_data(tmp)            # LAMMPS' rotated frame, same atom order
    lmp = open_lammps()
    try:
        lmp.commands_list(["units metal", "atom_style full", f"read_data {tmp}"]
                          + get_potential("bks-dsf").commands()
                          + ["thermo_style custom step pe pxx pyy pzz pxy pxz pyz", "run 0"])
        n = lmp.get_natoms()
        f = np.array(lmp.gather_atoms("f", 1, 3)[:3 * n]).reshape(n, 3)
        p = [lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pxy", "pxz", "pyz")]
        return lmp.get_thermo("pe"), f, p, at
    finally:
        lmp.close()


def test_generated_dataset_layout_and_labels(tiny, tmp_path):
    with h5py.File(tiny, "r") as f:
        assert f.attrs["format"] == "lammps-adv-dataset" and f.attrs["version"] == 1
        assert json.loads(f.attrs["species"]) == ["Si", "O"]
        assert f.attrs["reference"] == "bks-dsf"
        gen = json.loads(f.attrs["generator"])
        assert gen["glass_temps"] == [300.0, 2500.0] and gen["stride"] == 5
        for name in ("configs/natoms", "configs/offset", "configs/cell", "configs/energy",
                     "configs/stress", "configs/temperature", "configs/source", "configs/unit",
                     "atoms/positions", "atoms/species", "atoms/forces",
                     "split/train", "split/validation", "split/test"):
            assert name in f, name
        assert f["configs/cell"].shape == (12, 3, 3)
        assert f["atoms/positions"].shape == (2 * 4 * 24 + 4 * 9, 3)
    ds = D.load(tiny)
    assert len(ds) == 12 and sorted(ds.natoms.tolist()) == [9] * 4 + [24] * 8
    assert {len(v) for v in ds.splits.values()} == {6, 3}
    assert sorted(np.concatenate(list(ds.splits.values())).tolist()) == list(range(12))
    temps = sorted(set(ds.temperature.tolist()))
    assert temps == [300.0, 600.0, 2500.0]
    assert any(s.startswith("quartz-T600") for s in ds.source)
    # frames are decorrelated MD snapshots, not copies
    e = ds.energy[[i for i in range(12) if ds.source[i].startswith("glass0-T2500")]]
    assert len(set(np.round(e, 6))) == 4
    # labels equal an independent LAMMPS evaluation (forces rotate with LAMMPS' frame)
    for i in (0, 11):
        c = {**ds.config(i), "tmp": tmp_path}
        pe, f, p, at = lammps_labels(c)
        assert pe == pytest.approx(c["energy"], rel=1e-9)
        from lammps_adv.lammps.structures import lammps_cell
        _, rot = lammps_cell(c["cell"])
        np.testing.assert_allclose(c["forces"] @ rot, f, atol=1e-7)
        s_lmp = -np.array(p) / BAR_PER_EV_A3
        s = rot.T @ c["stress"] @ rot
        np.testing.assert_allclose([s[0, 0], s[1, 1], s[2, 2], s[0, 1], s[0, 2], s[1, 2]],
                                   s_lmp, atol=1e-8)


def test_extxyz_roundtrip_and_outcar_import(tiny, tmp_path):
    ds = D.load(tiny)
    xyz = D.export_extxyz(ds, tmp_path / "all.xyz")
    ds2 = D.import_ase([xyz], tmp_path / "imp.h5", reference="bks-dsf via extxyz")
    ds2 = D.load(tmp_path / "imp.h5")
    assert len(ds2) == 12 and ds2.attrs["reference"] == "bks-dsf via extxyz"
    np.testing.assert_allclose(ds2.energy, ds.energy, rtol=1e-12)    # extxyz keeps 8
    np.testing.assert_allclose(ds2.forces, ds.forces, atol=1e-7)      # decimals of arrays
    np.testing.assert_allclose(ds2.stress, ds.stress, atol=1e-10)
    np.testing.assert_array_equal(ds2.atom_species, ds.atom_species)
    # a VASP OUTCAR (minimal, written here in VASP's format) through ASE
    outcar = tmp_path / "OUTCAR"
    outcar.write_text(minimal_outcar())
    ds3 = D.import_ase([outcar], tmp_path / "dft.h5", split=(1, 0, 0))
    c = ds3.config(0)
    assert c["names"] == ["Si", "O", "O"] and c["energy"] == pytest.approx(-23.456789)
    np.testing.assert_allclose(c["forces"][1], [0.1, -0.2, 0.3])
    np.testing.assert_allclose(c["cell"], np.diag([5.0, 5.5, 6.0]))


def minimal_outcar():
    rows = [([0.0, 0.0, 0.0], [0.0, 0.1, -0.2]), ([1.6, 0.0, 0.0], [0.1, -0.2, 0.3]),
            ([-1.6, 0.0, 0.0], [-0.1, 0.1, -0.1])]
    lines = [" vasp.6.3.0 18Jan22 (build Jan 18 2022) complex", "",
             " POTCAR:    PAW_PBE Si 05Jan2001", " POTCAR:    PAW_PBE O 08Apr2002",
             " POTCAR:    PAW_PBE Si 05Jan2001", " POTCAR:    PAW_PBE O 08Apr2002",
             "   ions per type =               1   2", "",
             " ----------------------------------------- Iteration    1(   1)  "
             "---------------------------------------", "",
             "      direct lattice vectors                 reciprocal lattice vectors",
             "     5.000000000  0.000000000  0.000000000     0.200000000  0.000000000  0.000000000",
             "     0.000000000  5.500000000  0.000000000     0.000000000  0.181818182  0.000000000",
             "     0.000000000  0.000000000  6.000000000     0.000000000  0.000000000  0.166666667",
             "", " POSITION                                       TOTAL-FORCE (eV/Angst)",
             " " + "-" * 83]
    for p, f in rows:
        lines.append("     " + "".join(f"{x:12.5f} " for x in p) + "   "
                     + "".join(f"{x:13.6f} " for x in f))
    lines += [" " + "-" * 83, "    total drift:                                0.000000      0.000000      0.000000",
              "", "", "  FREE ENERGIE OF THE ION-ELECTRON SYSTEM (eV)",
              "  ---------------------------------------------------",
              "  free  energy   TOTEN  =       -23.45678900 eV", "",
              "  energy  without entropy=      -23.45678900  energy(sigma->0) =      -23.45678900",
              ""]
    return "\n".join(lines) + "\n"


def small(kind, **kw):
    base = {"bp": {"cutoff": 4.0, "hidden": [8, 8]},
            "gnn": {"cutoff": 3.5, "width": 8, "hidden": [8], "n_rbf": 8}}[kind]
    return TrainSettings(model=kind, model_kwargs={**base, **kw.pop("model_kwargs", {})},
                         batch_size=2, seed=7, **{"lr": 5e-3, **kw})


@pytest.mark.parametrize("kind,fw,epochs", [("bp", 0.0, 8), ("gnn", 1.0, 40)])
def test_training_reduces_loss_and_writes_card(tiny, tmp_path, kind, fw, epochs):
    out = tmp_path / f"{kind}.pt"
    card = train(tiny, out, small(kind, force_weight=fw, epochs=epochs, patience=100),
                 progress=False, log=None)
    hist = card["history"]
    assert hist[-1]["train_loss"] < 0.7 * hist[0]["train_loss"]
    assert min(h["val_loss"] for h in hist) < hist[0]["val_loss"]
    js, md = card_paths(out)
    saved = json.loads(js.read_text())
    from lammps_adv.io.files import file_sha256 as sha256
    from lammps_adv.models.contract import load
    assert saved["sha256"] == sha256(out) and saved["model"]["kind"] == kind
    t = saved["metrics"]["test"]
    assert t["n_configs"] == 3 and t["energy_rmse_meV_per_atom"] > 0
    assert t["force_rmse_meV_per_A"] > 0          # also reported when trained on energies
    assert saved["training_data"]["reference"] == "bks-dsf"
    assert saved["settings"]["force_weight"] == fw and saved["settings"]["seed"] == 7
    assert saved["metrics"]["export_max_abs_diff_eV"] < 1e-9
    assert "energy RMSE" in md.read_text()
    m = load(out)
    assert list(m.species) == ["Si", "O"]
    # the closest pair of each species pair over the training split: the probe's flags
    ds = D.load(tiny)
    train_split = [ds.config(int(i)) for i in ds.split("train")]
    expect = closest_pairs_of_set((c["positions"], c["cell"], c["names"]) for c in train_split)
    assert set(saved["training_data"]["closest_pair_A"]) == {"O-O", "O-Si", "Si-Si"}
    assert saved["training_data"]["closest_pair_A"] == pytest.approx(expect, abs=1e-4)
    assert "closest pair in the training split (A): O-O" in md.read_text()
    if kind == "bp":        # a probe of this model takes its thresholds from the card
        probed = probe([(c["positions"], c["cell"], c["names"], "t") for c in train_split[:2]],
                       f"torchscript:{out}", "bks-dsf", tmp_path / "p.h5", epsilons=(0.0,),
                       n_random=0, align="none", progress=False)
        d = read_probe(probed)
        np.testing.assert_allclose(d["closest_pair_threshold"],
                                   [0.9 * saved["training_data"]["closest_pair_A"][p]
                                    for p in d["species_pairs"]])
        assert js.name in read_parameters(probed)["closest_pair_threshold_source"]


def test_checkpoint_resume_continues_identically(tiny, tmp_path):
    s = small("gnn", force_weight=0.1, epochs=4, patience=100)
    a = train(tiny, tmp_path / "a.pt", s, progress=False, log=None, write_card=False)
    s2 = small("gnn", force_weight=0.1, epochs=2, patience=100)
    train(tiny, tmp_path / "b.pt", s2, progress=False, log=None, write_card=False)
    b = train(tiny, tmp_path / "b.pt", s, resume=True, progress=False, log=None,
              write_card=False)
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    ca = torch.load(tmp_path / "a.ckpt", weights_only=False)
    cb = torch.load(tmp_path / "b.ckpt", weights_only=False)
    for k, v in ca["model"].items():
        assert torch.equal(v, cb["model"][k]), k
    assert a["metrics"]["test"] == b["metrics"]["test"]
    # a fresh run with the same seed reproduces it too
    c = train(tiny, tmp_path / "c.pt", s, progress=False, log=None, write_card=False)
    assert c["metrics"]["test"] == a["metrics"]["test"]


def test_bad_input_one_clear_error(tiny, tmp_path):
    ds = D.load(tiny)
    # dataset without forces, force loss asked
    noforce = D.Dataset(species=ds.species, natoms=ds.natoms, cell=ds.cell, energy=ds.energy,
                        positions=ds.positions, atom_species=ds.atom_species,
                        splits=ds.splits, attrs=ds.attrs)
    noforce.save(tmp_path / "noforce.h5")
    with pytest.raises(DatasetError, match="has no forces"):
        train(tmp_path / "noforce.h5", tmp_path / "m.pt", small("bp", force_weight=1.0),
              progress=False, log=None)
    # empty split
    empty = D.load(tiny)
    empty.splits = D.random_split(len(empty), (1, 0, 1))
    empty.save(tmp_path / "empty.h5")
    with pytest.raises(DatasetError, match="'validation' split .* is empty"):
        train(tmp_path / "empty.h5", tmp_path / "m.pt", small("bp"), progress=False, log=None)
    # unknown species in imported data
    xyz = tmp_path / "al.xyz"
    xyz.write_text("2\nLattice=\"5 0 0 0 5 0 0 0 5\" Properties=species:S:1:pos:R:3 "
                   "energy=-1.0 pbc=\"T T T\"\nSi 0 0 0\nAl 1 1 1\n")
    with pytest.raises(DatasetError, match="unknown species Al"):
        D.import_ase([xyz], tmp_path / "al.h5")
    # the same through the command line: exit status 2 and one line
    for args in (["train", str(tmp_path / "noforce.h5"), "-o", str(tmp_path / "m.pt"),
                  "--force-weight", "1"],
                 ["train", str(tmp_path / "empty.h5"), "-o", str(tmp_path / "m.pt")],
                 ["dataset", "import", str(xyz), "-o", str(tmp_path / "al.h5")],
                 ["train", str(tmp_path / "missing.h5"), "-o", str(tmp_path / "m.pt")]):
        r = subprocess.run([str(BIN / "lammps-adv"), *args], capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "error:" in lines[0], r.stderr
    with pytest.raises(DatasetError, match="too few"):
        D.random_split(2, (0.8, 0.1, 0.1))


def test_dataset_cli_generate_and_info(tmp_path):
    out = tmp_path / "q.h5"
    r = subprocess.run([str(BIN / "lammps-adv"), "dataset", "generate", "-o", str(out),
                        "--glass-atoms", "0", "--quartz", "1x1x1", "--quartz-temps", "300,900",
                        "--frames", "2", "--stride", "3", "--equil", "3", "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(BIN / "lammps-adv"), "dataset", "info", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "4 configurations" in r.stdout, r.stdout + r.stderr


def test_generate_labels_through_the_calculator_of_another_reference(tmp_path):
    """MD driven by bks-dsf, labelled by bks: every label is the bks calculator's, and no
    stress is stored (the driver's virial is not the reference's)."""
    from lammps_adv.calculators import get_calculator
    ds = sampling.generate(tmp_path / "x.h5", reference="bks", driver="bks-dsf", glass_atoms=0,
                    quartz_cells=(1, 1, 1), quartz_temps=(900,), frames=2, stride=3, equil=3,
                    split=(0.5, 0.5, 0.0), progress=False)
    assert not ds.has_stress and ds.attrs["generator"]["driver"] == "bks-dsf"
    with get_calculator("bks") as bks, get_calculator("bks-dsf") as dsf:
        for i in range(len(ds)):
            c = ds.config(i)
            e, f = bks.evaluate(c["positions"], c["cell"], symbols=c["names"])
            assert e == pytest.approx(c["energy"], rel=1e-12)
            np.testing.assert_allclose(f, c["forces"], atol=1e-10)
            e_dsf, _ = dsf.evaluate(c["positions"], c["cell"], symbols=c["names"])
            assert abs(e_dsf - e) > 1.0        # the labels are not the driver's


def test_mixed_glasses_and_subset(tmp_path):
    """Two sizes, two quench rates, relaxed copies (forces far below the thermal frames'),
    tagged sources; a seeded subset keeps the other splits."""
    from lammps_adv.training.recipes import mixed_glasses, subset
    ds = mixed_glasses(tmp_path / "m.h5", sizes=(24, 30), quench_ps=(0.3, 0.2), temps=(300,),
                       frames=2, stride=5, equil=10, melt_ps=0.3, relaxed=1,
                       split=(0.5, 0.25, 0.25), seed=5, progress=False)
    assert len(ds) == 2 * 2 * 2 + 2 * 2           # thermal frames + one relaxed per run
    assert sorted(set(ds.natoms.tolist())) == [24, 30]
    tags = {s.split("-")[0] for s in ds.source}
    assert tags == {"n24q0.3", "n24q0.2", "n30q0.3", "n30q0.2"}
    relaxed = [i for i, s in enumerate(ds.source) if "relaxed" in s]
    assert len(relaxed) == 4 and all(ds.temperature[i] == 0 for i in relaxed)
    # one independent unit per melt-quench; a relaxed copy belongs to its frame's glass
    assert sorted(set(ds.unit)) == sorted(f"{t}-glass0" for t in tags)
    assert all(ds.unit[i] == ds.source[i].split("-T")[0] for i in range(len(ds)))
    thermal = min(np.abs(ds.config(i)["forces"]).max() for i in range(len(ds)) if i not in relaxed)
    for i in relaxed:
        assert np.abs(ds.config(i)["forces"]).max() < min(0.1, thermal / 10)
    assert D.load(tmp_path / "m.h5").attrs["generator"]["quench_ps"] == [0.3, 0.2]
    half = subset(ds, 0.5, ["train"], seed=0)
    assert len(half.split("train")) == 3 and len(half.split("test")) == len(ds.split("test"))
    assert len(half) == 3 + len(ds.split("validation")) + len(ds.split("test"))


def test_relative_force_loss_and_warm_start(tiny, tmp_path):
    """The relative force loss divides each configuration's squared force errors by its
    mean squared reference force + 1 (eV/A)^2; a force training warm-starts from an energy
    training's checkpoint (same architecture), and refuses a checkpoint of another kind."""
    from lammps_adv.models.export import build_model
    from lammps_adv.training.train import FORCE_FLOOR, loss_terms, prepare
    ds = D.load(tiny)
    model = build_model("bp", species=list(ds.species), cutoff=4.0, hidden=[8, 8])
    items = prepare(model, ds, ds.split("train")[:3])
    _, _, f_abs = loss_terms(model, items, 1.0, create_graph=False)
    _, _, f_rel = loss_terms(model, items, 1.0, create_graph=False, force_loss="relative")
    from lammps_adv.training.train import predict
    _, f = predict(model, items, forces=True)
    sq = [((f[a:a + it.n] - torch.from_numpy(it.forces)) ** 2).detach().numpy()
          for a, it in zip(np.cumsum([0] + [it.n for it in items]), items)]
    expect = np.concatenate([s / (np.mean(it.forces ** 2) + FORCE_FLOOR ** 2)
                             for s, it in zip(sq, items)]).mean()
    assert float(f_rel) == pytest.approx(expect, rel=1e-12)
    assert float(f_abs) == pytest.approx(np.concatenate(sq).mean(), rel=1e-12)
    assert float(f_rel) < float(f_abs)          # every weight is below 1 (eV/A)^-2

    train(tiny, tmp_path / "e.pt", small("bp", epochs=2, patience=100), progress=False,
          log=None)
    out = tmp_path / "f.pt"
    r = subprocess.run([str(BIN / "lammps-adv"), "train", str(tiny), "-o", str(out), "--model",
                        "bp", "--force-weight", "1", "--force-loss", "relative", "--warm-start",
                        str(tmp_path / "e.ckpt"), "--epochs", "1", "--batch-size", "2", "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    card = json.loads(card_paths(out)[0].read_text())
    assert card["settings"]["force_loss"] == "relative"
    assert card["settings"]["warm_start"] == str(tmp_path / "e.ckpt")
    assert card["model"]["hidden"] == [8, 8] and card["model"]["cutoff"] == 4.0
    assert card["metrics"]["test"]["force_relative_rmse"] > 0
    # what it has seen: its first training's closest pairs too (its baseline's wall)
    wall = card["model"]["repulsion"]["r_outer_A"]
    assert all(d <= wall[p] + 1e-12 for p, d in card["training_data"]["closest_pair_A"].items())
    r = subprocess.run([str(BIN / "lammps-adv"), "train", str(tiny), "-o", str(out), "--model",
                        "gnn", "--warm-start", str(tmp_path / "e.ckpt"), "--overwrite", "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "holds a bp model" in r.stderr, r.stderr


def test_dataset_visits_adds_the_frames_of_recorded_runs_in_their_starts_split(tiny, tmp_path):
    """Frames a relaxation stored (driven by bks, recorded against bks-dsf) join the dataset
    labelled by bks-dsf's energy and forces at those positions, in the split of the
    configuration the relaxation started from; a recording against another reference is
    refused."""
    from lammps_adv.calculators import get_calculator
    from lammps_adv.experiments.relax import relax
    from lammps_adv.io.configs import load_configs
    from lammps_adv.io.h5md import read_frames
    from lammps_adv.training.recipes import with_visits
    ds = D.load(tiny)
    starts = load_configs(tiny, split="test")[:1] + load_configs(tiny, split="train")[:1]
    runs = relax(starts, "bks", "bks-dsf", tmp_path / "runs", steps=6, frames_every=2,
                 align="none", progress=False)
    out = tmp_path / "visits.h5"
    proc = subprocess.run([str(BIN / "lammps-adv"), "dataset", "visits", str(tiny),
                           *map(str, runs), "-o", str(out), "--label", "visit2", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    grown = D.load(out)
    steps = [read_frames(p)["step"] for p in runs]
    assert all(s[0] == 0 for s in steps)      # the starts themselves: not labelled twice
    stored = [len(s) - 1 for s in steps]
    assert min(stored) >= 2 and len(grown) == len(ds) + sum(stored)
    assert not grown.has_stress and ds.has_stress
    new = np.arange(len(ds), len(grown))
    first = new[:stored[0]]
    assert set(first) <= set(grown.split("test").tolist())          # the test start's split
    assert set(new[stored[0]:]) <= set(grown.split("train").tolist())
    for name in ("train", "validation", "test"):    # the original configurations keep theirs
        assert set(ds.split(name).tolist()) <= set(grown.split(name).tolist())
    calc = get_calculator("bks-dsf")
    try:
        for i, split in ((first[0], "test"), (new[-1], "train")):
            c = grown.config(int(i))
            e, f = calc.evaluate(c["positions"], c["cell"], symbols=c["names"])
            assert abs(c["energy"] - e) < 1e-8 and np.abs(c["forces"] - f).max() < 1e-8
            assert np.isnan(c["temperature"]) and "-visit2#" in c["source"]
            assert c["unit"] == ds.unit[int(ds.split(split)[0])]     # its start's glass
    finally:
        calc.close()
    other = relax(starts[:1], "bks-dsf", "bks", tmp_path / "other", steps=2, frames_every=1,
                  align="none", progress=False)
    with pytest.raises(DatasetError, match="recorded against 'bks'"):
        with_visits(ds, other)


def test_weight_decay_shrinks_weight_matrices_only(tiny, tmp_path):
    """--weight-decay: AdamW decays the weight matrices, never the biases (a zero gradient
    leaves a bias where it is and shrinks a weight by lr x decay); the card names it."""
    from lammps_adv.training.train import make_optimizer
    w = torch.nn.Parameter(torch.ones(2, 2, dtype=torch.float64))
    b = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = make_optimizer([w, b], TrainSettings(lr=0.1, weight_decay=0.5))
    w.grad, b.grad = torch.zeros_like(w), torch.zeros_like(b)
    opt.step()
    assert torch.allclose(w, torch.full((2, 2), 0.95, dtype=torch.float64))
    assert torch.equal(b, torch.ones(2, dtype=torch.float64))
    assert isinstance(make_optimizer([w, b], TrainSettings()), torch.optim.Adam)
    with pytest.raises(TrainingError, match="weight decay"):
        TrainSettings(weight_decay=-1).check()
    out = tmp_path / "wd.pt"
    train(tiny, out, small("bp", epochs=2, patience=100, weight_decay=1e-2), progress=False,
          log=None)
    card = json.loads(card_paths(out)[0].read_text())
    assert card["settings"]["weight_decay"] == 1e-2 and card["settings"]["optimizer"] == "AdamW"


def test_transfer_from_a_model_file_to_another_reference(tiny, tmp_path):
    """A training warm-starts from an exported model file (.pt) with its exact weights; with
    --transfer it first refits the per-species energy shift to the new data, so a reference
    whose energy zero lies 5 eV/atom away costs the first epoch nothing; --transfer without
    --warm-start is refused."""
    from lammps_adv.models.contract import load
    from lammps_adv.training.train import load_warm_start
    train(tiny, tmp_path / "e.pt", small("bp", epochs=2, patience=100), progress=False,
          log=None)
    warm = load_warm_start(tmp_path / "e.pt")
    exported = load(tmp_path / "e.pt").state_dict()
    assert all(torch.equal(v, exported[k]) for k, v in warm["best_state"].items())
    shifted = tmp_path / "shifted.h5"
    shifted.write_bytes(Path(tiny).read_bytes())
    with h5py.File(shifted, "r+") as f:
        f["configs/energy"][...] = f["configs/energy"][...] + 5.0 * f["configs/natoms"][...]
    first = {}
    for transfer in (False, True):
        card = train(shifted, tmp_path / f"t{transfer}.pt",
                     small("bp", epochs=1, lr=1e-12, patience=100, transfer=transfer),
                     warm_start=tmp_path / "e.pt", progress=False, log=None)
        first[transfer] = card["history"][0]["train_loss"]
        assert card["settings"]["transfer"] is transfer
    assert first[False] > 20.0                 # (5 eV/atom)^2: the offset
    assert first[True] < 1e-2
    r = subprocess.run([str(BIN / "lammps-adv"), "train", str(tiny), "-o",
                        str(tmp_path / "x.pt"), "--transfer", "-q"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "--transfer needs --warm-start" in r.stderr, r.stderr
