"""Every shipped network is repulsive where a relaxation or a probe can take it: pushing any
atom pair (Si-O, O-O, Si-Si) of a glass together from 0.9 x its training data's closest
approach down to 0.6 A raises the energy at every step and by at least 1 eV in all. The
same network without its repulsive baseline fails (the collapse the baseline is there for).
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
    from lammps_adv.models.export import reexport
    closest = card_closest_pairs(read_model_card(POTENTIALS / "bp_bks_dsf.pt"))
    bare = reexport(POTENTIALS / "bp_bks_dsf.pt", tmp_path / "bare.pt", repulsion=None)
    rows = approach_rows(bare, closest, glass)
    assert any(not r["sound"] for r in rows), rows
