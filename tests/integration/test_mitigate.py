"""lammps-adv mitigate at toy scale: every strategy spends exactly its budget of reference
labels, every exported model runs in LAMMPS, a seed's run is bit-reproducible, the summary
holds the decomposition of cos(theta) and relaxed minima and feeds the report."""
import json

import numpy as np
import pytest

from lammps_adv.report.build import build_report
from lammps_adv.io import h5md
from lammps_adv.experiments.mitigate import MitigateSettings, mitigate
from lammps_adv.experiments.strategies import STRATEGIES
from lammps_adv.io.dataset import load
from lammps_adv.training.sampling import generate

SETTINGS = dict(budget=3, rounds=2, epochs=30, warm_epochs=10, patience=10, committee=2,
                model_kwargs={"cutoff": 5.0, "hidden": [8]}, probe_configs=2, relaxations=2,
                relax_steps=3)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("mitigate")
    common = dict(reference="bks-dsf", glass_atoms=24, n_glasses=1, quartz_cells=None, stride=5,
                  equil=10, melt_ps=0.3, quench_ps=0.3, progress=False)
    generate(d / "base.h5", glass_temps=(300, 1500), frames=6, seed=3, split=(0.6, 0.2, 0.2), **common)
    generate(d / "eval.h5", glass_temps=(300, 1500), frames=3, seed=5, split=(1, 0, 0), **common)
    generate(d / "pool.h5", glass_temps=(600,), frames=8, seed=7, split=(1, 0, 0), **common)
    return d


@pytest.fixture(scope="module")
def run(data):
    out = data / "two_seeds"
    summary = mitigate(data / "base.h5", data / "eval.h5", data / "pool.h5", out,
                       MitigateSettings(seeds=(0, 1), **SETTINGS), progress=False)
    return out, summary


def test_every_strategy_spends_exactly_its_budget(data, run):
    out, summary = run
    d = h5md.read_mitigation(summary)
    assert d["strategy"] == list(STRATEGIES)
    for i, name in enumerate(d["strategy"]):
        assert list(d["labels_spent"][i]) == ([0, 0] if name == "baseline" else [3, 3]), name
    assert list(d["labels_per_round"]) == [0, 2, 3]
    n_train = len(load(data / "base.h5").split("train"))
    for name in STRATEGIES[1:]:
        for seed in (0, 1):
            folder = out / f"seed{seed}" / name
            assert len(load(folder / "round1.h5").split("train")) == n_train + 2
            ds = load(folder / "round2.h5")
            assert len(ds.split("train")) == n_train + 3
            assert len(ds.split("test")) == len(load(data / "base.h5").split("test"))
            card = json.loads((folder / "round2.card.json").read_text())
            assert (card["strategy"], card["round"], card["seed"], card["labels_used"]) == (name, 2, seed, 3)
            assert card["settings"]["warm_start"].endswith("round1.ckpt")
    forces = json.loads((out / "seed0" / "forces" / "round2.card.json").read_text())
    assert forces["settings"]["force_weight"] == 1.0
    for m, v in d["measures"].items():
        assert np.isfinite(v).all(), m
    # models trained on the reference share its energy zero: raw energies, and said so
    for path in (summary, out / "seed0" / "forces" / "eval" / "probe.h5",
                 out / "seed0" / "forces" / "eval" / "relax" / "relax_0000.h5"):
        params = h5md.read_parameters(path, texts=False)
        assert (params["alignment"], params["alignment_source"]) == ("none", "none"), path


def test_per_run_decomposition_and_relaxed_minima(run):
    """|cos| and the energy-error sign are stored per run and agree with cos; the evaluation
    set holds thermal configurations and minima relaxed with the reference to fmax."""
    _, summary = run
    d = h5md.read_mitigation(summary)
    pr = d["per_run"]
    assert pr["cos"].shape == (len(STRATEGIES), 2, 8)          # 6 thermal + 2 minima
    np.testing.assert_array_equal(pr["abs_cos"], np.abs(pr["cos"]))
    assert set(np.unique(pr["energy_error_sign"])) <= {-1.0, 0.0, 1.0}
    np.testing.assert_allclose(pr["cos"], pr["energy_error_sign"] * pr["cos_force_error"])
    assert (pr["force_error_ratio"] > 0).all()
    assert d["eval_kind"] == ["thermal"] * 6 + ["minimum"] * 2
    minima = np.array(d["eval_kind"]) == "minimum"
    fmax = MitigateSettings().minima_fmax
    assert (d["eval_max_force"][minima] <= fmax).all()
    assert (d["eval_max_force"][~minima] > 10 * fmax).all()
    # relaxed copies of the first and last thermal configuration, each lower than its start
    e = d["eval_energy_per_atom"]
    assert e[6] < e[0] and e[7] < e[5]
    assert list(d["eval_n_atoms"]) == [24] * 8
    # the verdict measures are over the thermal configurations
    thermal_abs = pr["abs_cos"][:, :, ~minima].mean(axis=2)
    np.testing.assert_allclose(d["measures"]["abs_cos_mean"], thermal_abs)
    np.testing.assert_allclose(d["measures"]["sign_fraction"],
                               (pr["energy_error_sign"][:, :, ~minima] > 0).mean(axis=2))


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


def test_one_seed_is_bit_reproducible_and_reported(data, run):
    out, summary = run
    again = mitigate(data / "base.h5", data / "eval.h5", data / "pool.h5", data / "seed0_again",
                     MitigateSettings(seeds=(0,), **SETTINGS), progress=False)
    a, b = h5md.read_mitigation(summary), h5md.read_mitigation(again)
    for m in a["measures"]:
        np.testing.assert_array_equal(a["measures"][m][:, 0], b["measures"][m][:, 0], err_msg=m)
    np.testing.assert_array_equal(a["per_run"]["cos"][:, 0], b["per_run"]["cos"][:, 0])
    report = build_report([summary], data / "report").read_text()
    assert "## Remedies compared on equal budgets (bp approximating bks-dsf)" in report
    assert "Remedy 4 (training on forces)" in report
    assert "**mean |cos(theta)|**: not resolved: 2 seeds, fewer than the 5" in report


def test_labels_are_the_same_on_one_and_two_ranks(data, tmp_path):
    """Reference labelling spreads configurations over MPI ranks; the labels do not change."""
    import subprocess

    from conftest import BIN
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
            BIN / "python", script, data / "pool.h5", tmp_path / f"l{n}.npz"]
        subprocess.run([str(c) for c in cmd], check=True, capture_output=True)
    one, two = (np.load(tmp_path / f"l{n}.npz") for n in (1, 2))
    assert len(one["e"]) == 8
    np.testing.assert_array_equal(one["e"], two["e"])
    np.testing.assert_array_equal(one["f"], two["f"])
