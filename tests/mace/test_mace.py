"""A third-party MLIP end to end (`make test-mace`, not in the default suite): a small MACE
model (mace-torch, on the project's torch) trained on a project dataset exported as extxyz,
then used through ASE as lammps-adv's model: the same numbers as MACE's own calculator,
probed against bks-dsf from Python and from the command line, and the reference of a
recorded LAMMPS run."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DSF = REPO / "potentials" / "bks_dsf.lmp"
# torch.jit.load deprecation, MACE's own torch.load notice: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
NVT = REPO / "tests" / "decks" / "nvt_short.in"


def sh(*args, cwd):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A user's folder: a bks-dsf dataset, exported, a MACE model trained on it."""
    d = tmp_path_factory.mktemp("mace")
    sh(BIN / "lammps-adv", "dataset", "generate", "-o", "d.h5", "--reference", "bks-dsf",
       "--glass-atoms", 48, "--glass-temps", "300,1500", "--quartz", "1x1x1",
       "--quartz-temps", 600, "--frames", 8, "--stride", 10, "--equil", 20, "--melt-ps",
       0.3, "--quench-ps", 0.3, "--split", "0.6,0.2,0.2", "--seed", 3, "-q", cwd=d)
    for split, name in (("train", "train.xyz"), ("validation", "valid.xyz")):
        sh(BIN / "lammps-adv", "dataset", "export", "d.h5", "-o", name, "--split", split,
           cwd=d)
    sh(BIN / "mace_run_train", "--name", "tiny", "--train_file", "train.xyz", "--valid_file",
       "valid.xyz", "--E0s", "average", "--model", "MACE", "--hidden_irreps", "8x0e",
       "--r_max", 4.0, "--num_interactions", 2, "--max_L", 0, "--correlation", 2,
       "--max_num_epochs", 15, "--batch_size", 4, "--valid_batch_size", 4, "--device", "cpu",
       "--default_dtype", "float64", "--energy_key", "energy", "--forces_key", "forces",
       "--stress_key", "stress", "--seed", 1, "--work_dir", "w", cwd=d)
    model = d / "w" / "tiny.model"
    assert model.is_file()
    return d, model


def spec(model):
    return (f"ase:mace.calculators:MACECalculator:model_paths='{model}':device='cpu'"
            ":default_dtype='float64'")


def test_mace_through_lammps_adv_equals_mace_itself(trained):
    from mace.calculators import MACECalculator
    from lammps_adv.calculators import get_calculator
    from lammps_adv.io.dataset import load
    d, model = trained
    ds = load(d / "d.h5")
    c = ds.config(int(ds.split("test")[0]))
    from ase import Atoms
    atoms = Atoms(c["names"], positions=c["positions"], cell=c["cell"], pbc=True)
    atoms.calc = MACECalculator(model_paths=str(model), device="cpu", default_dtype="float64")
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    for m in (MACECalculator(model_paths=str(model), device="cpu", default_dtype="float64"),
              spec(model)):
        calc = get_calculator(m)
        energy, forces = calc.evaluate(c["positions"], c["cell"], symbols=c["names"])
        assert energy == pytest.approx(e, rel=1e-10) and np.abs(forces - f).max() < 1e-10
        # its stress, through lammps-adv's ASE adapter
        _, _, s = calc.evaluate(c["positions"], c["cell"], symbols=c["names"], stress=True)
        np.testing.assert_allclose(s, atoms.get_stress(voigt=False), rtol=1e-10, atol=1e-12)


def test_mace_probed_against_bks_dsf(trained):
    from mace.calculators import MACECalculator
    from lammps_adv.experiments.probe import probe
    from lammps_adv.io.configs import load_configs
    from lammps_adv.io.h5md import read_probe
    d, model = trained
    configs = [(c.positions, c.cell, c.names, c.source)
               for c in load_configs(d / "d.h5", split="test")]
    got = probe(configs, MACECalculator(model_paths=str(model), device="cpu",
                                        default_dtype="float64"),
                "bks-dsf", out=None, epsilons=(0.0, 0.05), n_random=2, align="none",
                progress=False)
    assert got["parameters"]["approx"] == "ase:mace.calculators.mace:MACECalculator"
    cos = got["cos_adversarial"]
    assert len(cos) == 5 and np.isfinite(cos).all() and np.all(np.abs(cos) <= 1)
    # the command line, with the model's constructor arguments in the spec
    sh(BIN / "lammps-adv", "probe", "d.h5", "--split", "test", "--approx", spec(model),
       "--reference", "bks-dsf", "--epsilon", "0,0.05", "--random", 2, "--align", "none",
       "-o", "p.h5", "-q", cwd=d)
    p = read_probe(d / "p.h5")
    np.testing.assert_allclose(p["cos_adversarial"], got["cos_adversarial"], rtol=1e-9, atol=1e-12)


def test_mace_is_the_reference_of_a_recorded_lammps_run(trained):
    from lammps_adv.io.h5md import read_observables, read_parameters
    from lammps_adv.lammps.structures import amorphous
    d, model = trained
    amorphous(48, melt_ps=0.3, quench_ps=0.3, out=d / "g.data", seed=5)
    sh(BIN / "lammps-adv", "run", NVT, "--reference", spec(model), "--every", 5,
       "--out", "mace.h5md", "-q", "-var", "data", "g.data", "-var", "pot", DSF, cwd=d)
    obs = read_observables(d / "mace.h5md")
    assert len(obs["step"]) == 5 and np.isfinite(obs["cos_adversarial"]).all()
    assert read_parameters(d / "mace.h5md")["reference"].startswith(
        "ase:mace.calculators:MACECalculator")
