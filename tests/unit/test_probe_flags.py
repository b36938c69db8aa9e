"""Flagged displaced configurations of the probe (a species pair pushed together, an eV-scale
error): closest pairs per species pair under PBC, the flag rule, and the epsilon table that
counts them, leaves them out of its means and lists them apart."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from lammps_adv.core.summaries import epsilon_rows, flagged_rows
from lammps_adv.experiments.probe import FLAG_ERROR_EV_PER_ATOM, flagged
from lammps_adv.lammps.structures import closest_pairs, closest_pairs_of_set, species_pairs
from lammps_adv.report.epsilon import epsilon_table


def test_closest_pairs_per_species_pair_through_the_periodic_boundary():
    cell = np.eye(3) * 6.0
    pos = np.array([[0.0, 0, 0], [5.5, 0, 0], [1.6, 0, 0], [1.6, 0, 3.0]])
    names = ["Si", "Si", "O", "O"]
    got = closest_pairs(pos, cell, names)
    assert list(got) == ["O-O", "O-Si", "Si-Si"] == species_pairs(names)
    assert got["Si-Si"] == pytest.approx(0.5)          # 5.5 -> -0.5 across the boundary
    assert got["O-Si"] == pytest.approx(1.6) and got["O-O"] == pytest.approx(3.0)
    # a pair with no two atoms within the cutoff is inf, and left out of a set's summary
    far = closest_pairs(pos[[0, 2]], np.eye(3) * 12.0, ["Si", "O"], cutoff=1.0)
    assert far == {"O-O": math.inf, "O-Si": math.inf, "Si-Si": math.inf}
    both = closest_pairs_of_set([(pos, cell, names), (pos[[0, 2]], np.eye(3) * 12.0, ["Si", "O"])])
    assert both == pytest.approx({"O-O": 3.0, "O-Si": 1.6, "Si-Si": 0.5})


def test_flag_rule_closest_pair_or_error_per_atom():
    threshold = np.array([2.0, 1.4, 2.7])                      # O-O, O-Si, Si-Si
    closest = np.array([[2.5, 1.6, 3.0], [2.5, 1.3, 3.0], [2.5, 1.6, 3.0], [2.5, 1.6, 3.0]])
    error = np.array([0.5, 0.0, 1.01 * FLAG_ERROR_EV_PER_ATOM * 10, math.nan])
    assert flagged(closest, threshold, error, 10.0).tolist() == [False, True, True, True]


def _synthetic(units=None):
    """6 configurations of 10 atoms, epsilon 0 and 0.4 A^2, 2 random directions each.
    Configuration 2 along A at 0.4 pushed a pair together (flagged, an absurd error);
    configuration 4's random draw 1 at 0.4 is flagged too."""
    c_n, natoms = 6, 10
    base = np.linspace(0.01, 0.06, c_n)                            # eV, at R0
    adv = np.stack([base, base + np.arange(1, c_n + 1) * 0.01], axis=1)
    adv[2, 1] = 50.0
    rnd = np.repeat(adv[:, None, :], 2, axis=1).copy()
    rnd[:, :, 1] = base[:, None] + np.array([0.001, 0.003])
    rnd[4, 1, 1] = -80.0
    flag_a = np.zeros((c_n, 2), bool)
    flag_a[2, 1] = True
    flag_r = np.zeros((c_n, 2, 2), bool)
    flag_r[4, 1, 1] = True
    closest_a = np.full((c_n, 2, 2), 2.5)
    closest_a[2, 1] = [0.9, 2.5]
    data = {"epsilon": np.array([0.0, 0.4]), "natoms": np.full(c_n, natoms),
            "source": np.array([f"c{k}" for k in range(c_n)]),
            "error_adversarial": adv, "error_random": rnd,
            "flagged_adversarial": flag_a, "flagged_random": flag_r,
            "force_error_norm": np.full(c_n, 2.0), "species_pairs": np.array(["O-Si", "Si-Si"]),
            "closest_pair_threshold": np.array([1.3, 2.0]),
            "closest_pair_adversarial": closest_a,
            "closest_pair_random": np.full((c_n, 2, 2, 2), 2.5)}
    if units is not None:
        data["independent_unit"] = np.array(units)
    return SimpleNamespace(data=data, params={"distortion": "total", "experiment": "probe",
                                              "flag_error_eV_per_atom": 1.0})


def test_flagged_configurations_are_counted_and_left_out_of_the_means():
    probe = _synthetic(units=["g0", "g0", "g1", "g1", "g2", "g2"])
    rows = epsilon_rows(probe)
    d = probe.data
    keep = np.arange(6) != 2
    meV = 1000.0 / 10
    r = rows[1]
    assert r["flagged_adversarial"] == 1 and r["flagged_random"] == 1
    assert r["n_configurations"] == 6 and r["n_random_draws"] == 12
    assert r["adversarial_mean"] == pytest.approx(np.abs(d["error_adversarial"][keep, 1]).mean() * meV)
    per_config = np.abs(d["error_random"][:, :, 1]).mean(axis=1)
    per_config[4] = abs(d["error_random"][4, 0, 1])                # its flagged draw dropped
    assert r["random_mean"] == pytest.approx(per_config.mean() * meV)
    inc = (np.abs(d["error_adversarial"][:, 1]) - np.abs(d["error_adversarial"][:, 0])) * meV
    assert r["adversarial_increase"] == pytest.approx(inc[keep].mean())
    # first-order prediction sqrt(0.4) * |F_app - F_acc| / N in meV/atom
    assert r["first_order_ratio"] == pytest.approx(np.mean(inc[keep] / (math.sqrt(0.4) * 2.0 * meV)))
    assert r["epsilon_total_A2"] == (0.4, 0.4)
    assert r["rms_displacement_A"][0] == pytest.approx(math.sqrt(0.4 / 10))
    assert r["adversarial_units"] == 3 and r["random_units"] == 3      # g1 keeps configuration 3
    assert rows[0]["flagged_adversarial"] == 0 and rows[0]["adversarial_units"] == 3
    table = epsilon_table(rows, study=False)
    assert table[1]["flagged (adv. / random)"] == "1 of 6 / 1 of 12"
    assert "not resolved" in table[1]["adversarial"]                     # 3 < 5 glasses
    assert table[1]["rms displacement per atom (A)"] == f"{math.sqrt(0.04):.3g}"
    shown = flagged_rows(probe)
    assert [(f["source"], f["direction"]) for f in shown] == [("c2", "adversarial"),
                                                              ("c4", "random 1")]
    assert shown[0]["species_pair"] == "O-Si" and shown[0]["closest_pair_A"] == 0.9
    assert shown[0]["reason"] == "closest pair and error"
    assert shown[1]["reason"] == "error" and shown[1]["error_meV_per_atom"] == pytest.approx(8000)


def test_intervals_resolved_with_enough_units_and_plain_without_unit_labels():
    rows = epsilon_rows(_synthetic())                           # no labels: configurations
    assert rows[1]["adversarial_units"] == 5
    cell = epsilon_table(rows, study=False)[1]["adversarial"]
    assert "not resolved" not in cell and "[" in cell
    # a file without any flags (written before them) keeps every configuration
    old = _synthetic()
    for key in ("flagged_adversarial", "flagged_random"):
        del old.data[key]
    assert epsilon_rows(old)[1]["flagged_adversarial"] == 0
    assert epsilon_rows(old)[1]["adversarial_units"] == 6


def test_thresholds_from_the_model_card_else_from_the_undisplaced_configurations(tmp_path):
    import json

    from lammps_adv.core.configuration import Configuration
    from lammps_adv.experiments.probe import closest_pair_threshold
    cell = np.eye(3) * 6.0
    configs = [Configuration(np.array([[0.0, 0, 0], [1.6, 0, 0], [1.6, 0, 2.6]]), cell,
                             ["Si", "O", "O"], "a"),
               Configuration(np.array([[0.0, 0, 0], [1.5, 0, 0], [1.5, 0, 2.7]]), cell,
                             ["Si", "O", "O"], "b")]
    pairs = ["O-O", "O-Si", "Si-Si"]
    # no card (a catalogue potential): 0.9 x the closest over the undisplaced configurations;
    # Si-Si (only its own image, 6 A away) never within 5 A: no distance flag
    got, source = closest_pair_threshold("bks-dsf", configs, pairs)
    np.testing.assert_allclose(got, [0.9 * 2.6, 0.9 * 1.5, 0.0])
    assert "2 undisplaced probe configurations" in source and "no model card" in source
    (tmp_path / "m.card.json").write_text(json.dumps(
        {"training_data": {"closest_pair_A": {"O-Si": 1.4, "O-O": 2.2}}}))
    got, source = closest_pair_threshold(f"torchscript:{tmp_path / 'm.pt'}", configs, pairs)
    np.testing.assert_allclose(got, [0.9 * 2.2, 0.9 * 1.4, 0.0])
    assert "m.card.json" in source and "for O-O, O-Si" in source
    assert "for Si-Si (not in its model card)" in source
