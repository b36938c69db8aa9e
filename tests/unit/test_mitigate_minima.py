"""How many relaxed minima mitigate adds to its evaluation set, the ASE route for a reference
LAMMPS cannot relax, the protocol's settings (budget split, distinct seeds, the
driver's own seed) and the outlier rule (no LAMMPS started: all are decided before)."""
import numpy as np
import pytest

from lammps_adv.core.configuration import Configuration
from lammps_adv.experiments.measures import minima_count, relaxed_minima, spread
from lammps_adv.experiments.mitigate import MitigateSettings, outlier


def test_minima_default_is_a_quarter_rounded_up():
    assert [minima_count(n, None) for n in (1, 4, 6, 12, 16)] == [1, 1, 2, 3, 4]
    assert minima_count(12, 0) == 0 and minima_count(12, 12) == 12
    with pytest.raises(ValueError, match="between 0 and the 12 evaluation"):
        minima_count(12, 13)
    with pytest.raises(ValueError, match="--minima must be >= 0"):
        MitigateSettings(minima=-1).check()


def test_a_reference_lammps_cannot_run_relaxes_with_ase_fire(monkeypatch):
    """xtb:GFN1 cannot drive LAMMPS: its minima come from ASE's FIRE (stubbed here: no
    reference is evaluated), with the force limit and step cap, as minima of the same unit."""
    from lammps_adv.experiments import measures
    from lammps_adv.parallel.mpi import mpi_comm
    calls = []

    def fire(atoms, reference, fmax, max_steps):
        calls.append((reference, fmax, max_steps))
        return atoms.get_positions() + 0.1, atoms.cell.array.copy()
    monkeypatch.setattr(measures, "_ase_fire", fire)
    c = Configuration(np.eye(3), np.eye(3) * 5.0, ["Si", "O", "O"], "x#0", "glass0", 300.0)
    (m,) = relaxed_minima([c], "xtb:GFN1", mpi_comm(), fmax=1e-3, max_steps=50)
    assert calls == [("xtb:GFN1", 1e-3, 50)]
    np.testing.assert_allclose(m.positions, np.eye(3) + 0.1)
    assert (m.source, m.unit, m.temperature) == ("x#0+relaxed", "glass0", 0.0)
    assert relaxed_minima([], "xtb:GFN1", comm=None) == []


def test_relaxation_starts_are_spread_and_the_budget_split_22_21_21():
    assert list(spread(12, 3)) == [0, 6, 11] and list(spread(12, 0)) == []
    s = MitigateSettings()
    assert (s.budget, s.rounds, len(s.seeds)) == (64, 3, 6)
    assert s.per_round() == [22, 21, 21] and sum(s.per_round()) == s.budget


def test_settings_refuse_what_the_protocol_forbids():
    with pytest.raises(ValueError, match="seeds must be distinct"):
        MitigateSettings(seeds=(0, 1, 1)).check()
    with pytest.raises(ValueError, match="driver seed 3 is one of the seeds"):
        MitigateSettings(seeds=(2, 3), driver_seed=3).check()
    MitigateSettings(seeds=(2, 3), driver_seed=3, md_ends=0).check()    # no driver needed
    with pytest.raises(ValueError, match="unknown strategies newton"):
        MitigateSettings(strategies=("newton",)).check()
    s = MitigateSettings(strategies=("forces", "baseline"))
    s.check()
    assert s.strategies == ("baseline", "more-md+forces")
    with pytest.raises(ValueError, match="need --force-weight > 0"):
        MitigateSettings(force_weight=0.0).check()


def test_outlier_rule():
    s = MitigateSettings(outlier_energy=0.5, outlier_force=30.0)
    forces = np.zeros((3, 3))
    label = {"positions": np.zeros((3, 3)), "energy": -3 * 12.8, "forces": forces}
    assert outlier(label, -12.8, s) == ""
    assert "from the base median" in outlier({**label, "energy": -3 * 12.2}, -12.8, s)
    forces[1] = [0.0, 40.0, 0.0]
    assert "largest force 40 eV/A" in outlier(label, -12.8, s)
