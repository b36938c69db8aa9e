"""Every shipped network is repulsive where a relaxation or a probe can take it: pushing any
atom pair (Si-O, O-O, Si-Si) of a glass together from 0.9 x its training data's closest
approach down to 0.6 A raises the energy at every step and by at least 1 eV in all. The
same network without its repulsive baseline fails (the collapse the baseline is there for).
A short relaxation driven by each bks-dsf network stays near the reference, and ends where
the network is no more than 2x as stiff as bks-dsf.
The 324-atom relaxations and the NVE drift: analysis/model_soundness.py, docs/models.md."""
import pytest

from lammps_adv.core.configuration import Configuration
from lammps_adv.io.model_card import card_closest_pairs, read_model_card
from lammps_adv.io.resources import POTENTIALS

SHIPPED = sorted(p.name for p in POTENTIALS.glob("*.pt"))


@pytest.fixture(scope="module")
def glass(glass_192):
    from lammps_adv.lammps.structures import read
    atoms = read(glass_192)
    return Configuration(atoms.get_positions(), atoms.cell.array,
                         atoms.get_chemical_symbols(), "glass192")


def approach_rows(model_path, closest, glass):
    from lammps_adv.calculators import get_calculator
    from lammps_adv.experiments.soundness import approach_all_pairs
    calc = get_calculator(f"torchscript:{model_path}")
    try:
        return approach_all_pairs(calc, glass, closest, pairs_per_species=1, points=20)
    finally:
        calc.close()


def test_every_shipped_network_has_a_baseline_at_its_training_minimum():
    assert len(SHIPPED) >= 4
    for name in SHIPPED:
        card = read_model_card(POTENTIALS / name)
        rep = card["model"].get("repulsion")
        assert rep and rep["form"] == "zbl", name
        closest = card_closest_pairs(card)
        assert set(closest) == {"O-O", "O-Si", "Si-Si"}, name
        assert rep["r_outer_A"] == pytest.approx(closest), name


@pytest.mark.parametrize("name", SHIPPED)
def test_pushing_any_pair_together_raises_the_energy(name, glass):
    closest = card_closest_pairs(read_model_card(POTENTIALS / name))
    rows = approach_rows(POTENTIALS / name, closest, glass)
    assert {r["pair"] for r in rows} == {"O-O", "O-Si", "Si-Si"}
    bad = [(r["pair"], round(r["largest_drop_eV"], 4), round(r["rise_eV"], 3))
           for r in rows if not r["sound"]]
    assert not bad, f"{name}: not repulsive (pair, largest drop eV, rise eV): {bad}"


def test_the_same_network_without_its_baseline_fails(tmp_path, glass):
    # the force-trained BP: the energy-trained one's bare network, trained with a weight
    # decay, no longer fails on this glass (its wall still gives the rise of the approach)
    from lammps_adv.models.export import reexport
    closest = card_closest_pairs(read_model_card(POTENTIALS / "bp_bks_dsf_forces.pt"))
    bare = reexport(POTENTIALS / "bp_bks_dsf_forces.pt", tmp_path / "bare.pt", repulsion=None)
    rows = approach_rows(bare, closest, glass)
    assert any(not r["sound"] for r in rows), rows


BKS_DSF_NETWORKS = [n for n in SHIPPED if "bks_dsf" in n]
RELAX_STEPS = 150       # FIRE steps: an energy-only network's error drifts most in the first 100
MAX_STIFFNESS_RATIO = 2.0   # x bks-dsf's stiffest mode at the same configuration


@pytest.fixture(scope="module")
def thermal_glass(tmp_path_factory):
    """One 300 K frame of a 192-atom bks-dsf glass made for this test (seed used nowhere
    else): where the study's relaxations start."""
    from lammps_adv.io.configs import load_configs
    from lammps_adv.training.sampling import generate
    path = tmp_path_factory.mktemp("thermal") / "t300.h5"
    generate(path, reference="bks-dsf", glass_atoms=192, glass_temps=(300,), quartz_cells=None,
             frames=1, stride=100, equil=300, melt_ps=2.0, quench_ps=3.0, seed=6061,
             split=(1.0, 0.0, 0.0), progress=False)
    return load_configs(path, split="train")[0]


def test_the_bks_dsf_networks_are_covered():
    assert sorted(BKS_DSF_NETWORKS) == ["bp_bks_dsf.pt", "bp_bks_dsf_forces.pt", "gnn_bks_dsf.pt"]


@pytest.mark.parametrize("name", BKS_DSF_NETWORKS)
def test_a_relaxation_driven_by_the_network_stays_near_the_reference(name, thermal_glass):
    from lammps_adv.experiments.soundness import (RELAX_MAX_ERROR_CHANGE, RELAX_MIN_PAIR,
                                                  relax_check)
    closest = card_closest_pairs(read_model_card(POTENTIALS / name))
    r = relax_check(f"torchscript:{POTENTIALS / name}", "bks-dsf", thermal_glass, closest,
                    steps=RELAX_STEPS, baseline="bks-dsf")
    change = r["error_change_eV_per_atom"]
    assert abs(change) <= RELAX_MAX_ERROR_CHANGE, \
        f"{name}: (E_app - E_ref)/N changed by {1000 * change:+.1f} meV/atom in {r['steps']} steps"
    assert min(r["closest_over_training_min"].values()) >= RELAX_MIN_PAIR, r
    # no spurious stiff mode where the relaxation goes: one 12x bks-dsf's (the energy BP
    # before its weight decay) forced FIRE to small steps, and 324-atom relaxations crept
    stiff, ref = r["stiffest_mode_eV_per_A2"], r["baseline_stiffest_mode_eV_per_A2"]
    assert stiff <= MAX_STIFFNESS_RATIO * ref, \
        f"{name}: stiffest mode {stiff:.0f} eV/A^2 at the end, bks-dsf's {ref:.0f}"


def test_soundness_script_reports_every_check_and_fails_an_unconverged_relaxation(tmp_path):
    """analysis/model_soundness.py end to end on a small held-out set: the pair approach,
    a relaxation capped before it can converge (so the script exits 1 and says why in its
    JSON) and the NVE drift against the native baseline named by --nve-baseline."""
    import json
    from conftest import BIN, REPO, run_cmd
    from lammps_adv.training.recipes import mixed_glasses
    held = tmp_path / "held.h5"
    mixed_glasses(held, sizes=(96,), quench_ps=(1.0,), temps=(300,), frames=1, stride=50,
                  equil=50, melt_ps=1.0, relaxed=1, split=(0, 0, 1), seed=77, progress=False)
    out = tmp_path / "s.json"
    proc = run_cmd([BIN / "python", REPO / "analysis" / "model_soundness.py",
                    POTENTIALS / "bp_bks_dsf_forces.pt", "--heldout", held, "--relaxations", 1,
                    "--steps", 5, "--nve-ps", 0.02, "--nve-baseline", "bks", "--json", out],
                   check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["nve_baseline"] == "bks" and report["reference"] == "bks-dsf"
    model = report["models"][str(POTENTIALS / "bp_bks_dsf_forces.pt")]
    assert {r["pair"] for r in model["approach"]} == {"O-O", "O-Si", "Si-Si"}
    (relax,) = model["relaxations"]
    assert relax["steps"] <= 5 and not relax["converged"] and not relax["sound"]
    # the diagnostics beside the verdict: the baseline's own relaxation and both curvatures
    assert 0 < relax["baseline_steps"] <= 5
    assert relax["stiffest_mode_eV_per_A2"] > 0 and relax["baseline_stiffest_mode_eV_per_A2"] > 0
    assert "baseline" in proc.stdout and "NVE drift" in proc.stdout


def test_stiffest_mode_is_the_largest_eigenvalue_of_the_hessian(glass_192):
    """The power iteration of stiffest_mode against the dense Hessian of bks-dsf (central
    differences of the forces) of the 192-atom glass."""
    import numpy as np
    from lammps_adv.experiments.soundness import stiffest_mode
    from lammps_adv.lammps.system import LammpsSystem
    with LammpsSystem(glass_192, "bks-dsf") as system:
        x = system.positions()
        lam = stiffest_mode(system, iterations=100)
        assert np.array_equal(system.positions(), x)
        h, cols = 1e-3, []
        for k in range(x.size):
            dx = np.zeros(x.size)
            dx[k] = h
            system.set_positions(x + dx.reshape(x.shape))
            _, f_plus = system.energy_forces()
            system.set_positions(x - dx.reshape(x.shape))
            _, f_minus = system.energy_forces()
            cols.append(((f_minus - f_plus) / (2 * h)).ravel())
    hessian = np.array(cols)
    top = np.linalg.eigvalsh(0.5 * (hessian + hessian.T))[-1]
    assert 50 < top < 500      # eV/A^2: Si-O bonds
    assert lam == pytest.approx(top, rel=0.02)
