"""lammps-adv mitigate at toy scale: every strategy spends exactly its budget of reference
labels with no duplicate label, outliers are spent but not trained on, every training
early-stops on the fixed validation file without a shift refit, the evaluation set holds
every kind, every exported model runs in LAMMPS, seeds dealt out over two MPI ranks give
the serial numbers, and the report's tables are reproduced byte for byte."""
import json
import subprocess

import numpy as np
import pytest

from lammps_adv.core.adversarial import max_atom_norm
from lammps_adv.experiments.mitigate import MitigateSettings, mitigate
from lammps_adv.experiments.strategies import FORCE_TRAINED, STRATEGIES, key_of
from lammps_adv.io import h5md
from lammps_adv.io.dataset import load
from lammps_adv.report.build import build_report
from lammps_adv.training.recipes import mixed_glasses
from lammps_adv.training.sampling import generate

SETTINGS = dict(budget=3, rounds=2, epochs=30, warm_epochs=10, patience=10, committee=2,
                model_kwargs={"cutoff": 5.0, "hidden": [8]}, probe_configs=2, relaxations=2,
                relax_steps=3, md_steps=20, md_temperature=600.0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("mitigate")
    common = dict(reference="bks-dsf", glass_atoms=24, n_glasses=1, quartz_cells=None, stride=5,
                  equil=10, melt_ps=0.3, quench_ps=0.3, progress=False)
    generate(d / "base.h5", glass_temps=(300, 1500), frames=6, seed=3, split=(0.6, 0.2, 0.2), **common)
    generate(d / "eval.h5", glass_temps=(300, 1500), frames=3, seed=5, split=(1, 0, 0), **common)
    generate(d / "pool.h5", glass_temps=(600,), frames=8, seed=7, split=(1, 0, 0), **common)
    # the fixed validation set: thermal frames and a displaced (rattled) copy
    mixed_glasses(d / "validation.h5", sizes=(24,), temps=(300,), frames=2, stride=5, equil=10,
                  melt_ps=0.3, quench_ps=(0.3,), rattle=(0.03,), split=(0, 1, 0), seed=9,
                  progress=False)
    pool = load(d / "pool.h5")
    # the outlier rule at work: a force limit at the median of the pool's largest forces
    limit = float(np.median([max_atom_norm(pool.config(i)["forces"]) for i in range(len(pool))]))
    return d, limit


@pytest.fixture(scope="module")
def run(data):
    d, limit = data
    out = d / "two_seeds"
    summary = mitigate(d / "base.h5", d / "eval.h5", d / "pool.h5", out,
                       MitigateSettings(seeds=(0, 1), outlier_force=limit, **SETTINGS),
                       progress=False, validation=d / "validation.h5")
    return out, summary


def test_budget_spent_without_duplicate_labels(data, run):
    d, limit = data
    out, summary = run
    s = h5md.read_mitigation(summary)
    assert s["strategy"] == list(STRATEGIES)
    for i, name in enumerate(s["strategy"]):
        assert list(s["labels_spent"][i]) == ([0, 0] if name == "baseline" else [3, 3]), name
    assert list(s["labels_per_round"]) == [0, 2, 3]
    assert not s["duplicate_labels"].any()
    # zero duplicates, checked again from the hashes: no configuration labelled twice in a
    # run, none already in the base, validation or evaluation file
    known = {key_of(ds.config(i)) for f in ("base", "validation", "eval")
             for ds in [load(d / f"{f}.h5")] for i in range(len(ds))}
    for i, name in enumerate(s["strategy"][1:], start=1):
        for j in range(2):
            keys = list(s["label_key"][i, j])
            assert len(set(keys)) == 3 and not set(keys) & known, (name, j)
    for strong, weak in FORCE_TRAINED.items():       # the same labels, another loss
        names = s["strategy"]
        np.testing.assert_array_equal(s["label_key"][names.index(strong)],
                                      s["label_key"][names.index(weak)])
    # the outlier rule: spent, recorded, not trained on
    base = load(d / "base.h5")
    n_train = len(base.split("train"))
    validation = load(d / "validation.h5")
    total_outliers = 0
    for i, name in enumerate(STRATEGIES[1:], start=1):
        for j, seed in enumerate((0, 1)):
            folder = out / f"seed{seed}" / name
            records = json.loads((folder / "labels.json").read_text())
            assert [r["config_key"] for r in records] == list(s["label_key"][i, j])
            assert [r["round"] for r in records] == [1, 1, 2]
            flagged = [r["max_force_eV_per_A"] > limit for r in records]
            assert [bool(r["outlier"]) for r in records] == flagged
            assert s["outlier_labels"][i, j] == sum(flagged) == s["label_outlier"][i, j].sum()
            total_outliers += sum(flagged)
            ds = load(folder / "round2.h5")
            assert len(ds.split("train")) == n_train + 3 - sum(flagged)
            # the fixed validation set, the same in every training
            val = ds.split("validation")
            np.testing.assert_array_equal(ds.energy[val], validation.energy)
            card = json.loads((folder / "round2.card.json").read_text())
            assert (card["strategy"], card["round"], card["seed"], card["labels_used"]) == (name, 2, seed, 3)
            assert card["labels_trained_on"] == 3 - sum(flagged)
            assert card["settings"]["warm_start"].endswith("round1.ckpt")
            assert card["settings"]["refit_shift"] is False
            assert card["metrics"]["energy_shift_refit_eV"] is None
            weight = MitigateSettings().force_weight if name in FORCE_TRAINED else 0.0
            assert card["settings"]["force_weight"] == weight, name
    assert 0 < total_outliers < 7 * 2 * 3
    base_card = json.loads((out / "seed0" / "base.card.json").read_text())
    assert base_card["training_data"]["splits"]["validation"] == len(validation)
    for m, v in s["measures"].items():
        assert np.isfinite(v).all(), m
    # models trained on the reference share its energy zero: raw energies, and said so
    for path in (summary, out / "seed0" / "more-md+forces" / "eval" / "probe.h5",
                 out / "seed0" / "more-md+forces" / "eval" / "relax" / "relax_0000.h5md"):
        params = h5md.read_parameters(path, texts=False)
        assert (params["alignment"], params["alignment_source"]) == ("none", "none"), path


def test_evaluation_kinds_and_per_run_decomposition(run):
    """Thermal configurations, relaxation starts, their minima relaxed with the reference to
    fmax, md end points of the driver model; |cos| and sign agree with cos; the headline
    measures are over the thermal configurations."""
    _, summary = run
    d = h5md.read_mitigation(summary)
    pr = d["per_run"]
    kinds = np.array(d["eval_kind"])
    # 6 evaluation frames: 2 relaxation starts (first and last), their 2 minima, 2 md ends
    assert list(kinds) == ["relax-start"] + ["thermal"] * 4 + ["relax-start", "minimum",
                                                              "minimum", "md-end", "md-end"]
    assert pr["cos"].shape == (len(STRATEGIES), 2, 10)
    np.testing.assert_array_equal(pr["abs_cos"], np.abs(pr["cos"]))
    assert set(np.unique(pr["energy_error_sign"])) <= {-1.0, 0.0, 1.0}
    np.testing.assert_allclose(pr["cos"], pr["energy_error_sign"] * pr["cos_force_error"])
    assert (pr["force_error_ratio"] > 0).all()
    minima = kinds == "minimum"
    fmax = MitigateSettings().minima_fmax
    assert (d["eval_max_force"][minima] <= fmax).all()
    assert (d["eval_max_force"][~minima] > 10 * fmax).all()
    e = d["eval_energy_per_atom"]
    assert e[6] < e[0] and e[7] < e[5]             # each minimum below its start
    assert e[8] != e[0] and e[9] != e[5]           # the md runs moved
    assert list(d["eval_n_atoms"]) == [24] * 10
    th = kinds == "thermal"
    np.testing.assert_allclose(d["measures"]["abs_cos_mean"], pr["abs_cos"][:, :, th].mean(axis=2))
    np.testing.assert_allclose(d["measures"]["sign_fraction"],
                               (pr["energy_error_sign"][:, :, th] > 0).mean(axis=2))
    de = pr["energy_error_per_atom"][:, :, th]
    np.testing.assert_allclose(d["measures"]["energy_rmse_meV_per_atom"],
                               1000 * np.sqrt((de ** 2).mean(axis=2)))
    np.testing.assert_allclose(d["measures"]["energy_rmse_offset_removed_meV_per_atom"],
                               1000 * de.std(axis=2))
    np.testing.assert_allclose(d["measures"]["force_rmse_eV_per_A"],
                               np.sqrt(pr["force_sq_error"][:, :, th].sum(axis=2) / (3 * 24 * 4)))


def test_exported_models_run_in_lammps(run):
    """pair_style torchscript gives the energy the Python path gives, for every strategy."""
    from ase import Atoms

    from lammps_adv.calculators import get_calculator
    from lammps_adv.lammps.system import LammpsSystem
    out, _ = run
    ds = load(out.parent / "eval.h5")
    c = ds.config(0)
    atoms = Atoms(c["names"], positions=c["positions"], cell=c["cell"], pbc=True)
    for name in STRATEGIES[1:]:
        pt = out / "seed0" / name / "round2.pt"
        with LammpsSystem(atoms, f"torchscript:{pt}") as system:
            e_lmp, _ = system.energy_forces()
        with get_calculator(f"torchscript:{pt}") as calc:
            e_py, _ = calc.evaluate(c["positions"], c["cell"], symbols=c["names"])
        assert e_lmp == pytest.approx(e_py, rel=1e-9, abs=1e-9), name


def test_seeds_over_two_ranks_give_the_serial_numbers(data, run):
    """The command under mpirun -np 2 (one seed per rank) writes the serial run's numbers."""
    from conftest import BIN
    d, limit = data
    _, summary = run
    cmd = [BIN / "mpirun", "-np", 2, BIN / "lammps-adv", "mitigate", d / "base.h5",
           "--evaluation", d / "eval.h5", "--pool", d / "pool.h5",
           "--validation", d / "validation.h5", "-o", d / "two_ranks", "--seeds", "0,1",
           "--budget", 3, "--rounds", 2, "--epochs", 30, "--warm-epochs", 10, "--patience", 10,
           "--committee", 2, "--cutoff", 5, "--hidden", 8, "--probe-configs", 2,
           "--relaxations", 2, "--relax-steps", 3, "--md-steps", 20, "--md-temperature", 600,
           "--outlier-force", repr(limit)]
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True)
    a, b = h5md.read_mitigation(summary), h5md.read_mitigation(d / "two_ranks" / "mitigate.h5")
    for m in a["measures"]:
        np.testing.assert_array_equal(a["measures"][m], b["measures"][m], err_msg=m)
    np.testing.assert_array_equal(a["per_run"]["cos"], b["per_run"]["cos"])
    np.testing.assert_array_equal(a["label_key"], b["label_key"])


def test_report_tables_are_reproduced_byte_for_byte(data, run):
    d, _ = data
    _, summary = run
    first = build_report([summary], d / "report1").read_text()
    assert "## Remedies compared on equal budgets (bp approximating bks-dsf)" in first
    assert "**more-md+forces** against **more-md**" in first
    assert "**mean |cos(theta)|**: not resolved: 2 seeds, fewer than the 5" in first
    assert "| md-end | 2 | adversarial+forces |" in first
    build_report([summary], d / "report2")
    tables = sorted(p.name for p in (d / "report1").glob("mitigation_*") if p.suffix in (".csv", ".md"))
    assert len(tables) == 8
    for name in tables:
        assert (d / "report2" / name).read_bytes() == (d / "report1" / name).read_bytes(), name


def test_labels_are_the_same_on_one_and_two_ranks(data, tmp_path):
    """Reference labelling spreads configurations over MPI ranks; the labels do not change."""
    from conftest import BIN
    d, _ = data
    script = tmp_path / "label.py"
    script.write_text(
        "import sys, numpy as np\n"
        "from lammps_adv.experiments.labelling import label\n"
        "from lammps_adv.io.configs import load_configs\n"
        "from lammps_adv.parallel.mpi import mpi_comm\n"
        "comm = mpi_comm()\n"
        "out = label(load_configs(sys.argv[1], split=None), 'bks-dsf', comm)\n"
        "if comm.Get_rank() == 0:\n"
        "    np.savez(sys.argv[2], e=[o['energy'] for o in out],\n"
        "             f=np.concatenate([o['forces'] for o in out]))\n")
    for n in (1, 2):
        cmd = ([BIN / "mpirun", "-np", n] if n > 1 else []) + [
            BIN / "python", script, d / "pool.h5", tmp_path / f"l{n}.npz"]
        subprocess.run([str(c) for c in cmd], check=True, capture_output=True)
    one, two = (np.load(tmp_path / f"l{n}.npz") for n in (1, 2))
    assert len(one["e"]) == 8
    np.testing.assert_array_equal(one["e"], two["e"])
    np.testing.assert_array_equal(one["f"], two["f"])


def test_an_ase_calculator_instance_as_the_reference(data, tmp_path):
    """The remedies protocol with an ASE calculator instance as the reference (here
    bks-dsf through lammps-adv's own ASE adapter): datasets labelled by it, its name in the
    files, and the relaxed evaluation minima made with ASE's FIRE (it cannot drive LAMMPS)
    to within the minima's force limit."""
    from lammps_adv.ase import ase_calculator
    from lammps_adv.calculators import spec_text
    from lammps_adv.experiments.labelling import relabel
    d, limit = data
    ref = ase_calculator("bks-dsf")
    for name in ("base", "eval", "pool", "validation"):
        relabel(d / f"{name}.h5", tmp_path / f"{name}.h5", ref, progress=False)
    string_labelled = load(d / "base.h5")
    instance_labelled = load(tmp_path / "base.h5")
    assert instance_labelled.attrs["reference"] == spec_text(ref) != "bks-dsf"
    np.testing.assert_allclose(instance_labelled.energy, string_labelled.energy, rtol=1e-10)
    settings = MitigateSettings(seeds=(0,), strategies=("more-md",), outlier_force=limit,
                                reference=ref, minima=1, **SETTINGS)
    summary = mitigate(tmp_path / "base.h5", tmp_path / "eval.h5", tmp_path / "pool.h5",
                       tmp_path / "instance", settings, progress=False,
                       validation=tmp_path / "validation.h5")
    params = h5md.read_parameters(summary)
    assert params["reference"] == spec_text(ref)
    assert json.loads(params["settings"])["reference"] == spec_text(ref)
    d = h5md.read_mitigation(summary)
    minima = np.array(d["eval_kind"]) == "minimum"
    assert minima.sum() == 1
    assert (d["eval_max_force"][minima] <= settings.minima_fmax).all()
    assert (d["eval_max_force"][~minima] > 10 * settings.minima_fmax).all()
