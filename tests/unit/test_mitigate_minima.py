"""How many relaxed minima mitigate adds to its evaluation set, and the one-line refusal for
a reference LAMMPS cannot relax (no LAMMPS started: both are decided before)."""
import numpy as np
import pytest

from lammps_adv.core.configuration import Configuration
from lammps_adv.core.errors import PotentialError
from lammps_adv.experiments.measures import minima_count, relaxed_minima
from lammps_adv.experiments.mitigate import MitigateSettings


def test_minima_default_is_a_quarter_rounded_up():
    assert [minima_count(n, None) for n in (1, 4, 6, 12, 16)] == [1, 1, 2, 3, 4]
    assert minima_count(12, 0) == 0 and minima_count(12, 12) == 12
    with pytest.raises(ValueError, match="between 0 and the 12 evaluation"):
        minima_count(12, 13)
    with pytest.raises(ValueError, match="--minima must be >= 0"):
        MitigateSettings(minima=-1).check()


def test_a_reference_lammps_cannot_run_needs_minima_0():
    c = Configuration(np.zeros((3, 3)), np.eye(3) * 5.0, ["Si", "O", "O"], "x#0")
    with pytest.raises(PotentialError, match="use --minima 0"):
        relaxed_minima([c], "xtb:GFN1", comm=None)
    assert relaxed_minima([], "xtb:GFN1", comm=None) == []
