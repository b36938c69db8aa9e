"""Rattled training configurations (training.recipes.rattled): the RMS displacement asked
for, and no species pair pushed below RATTLE_MIN_PAIR x the frame's own closest distance."""
import numpy as np

from lammps_adv.lammps.structures import closest_pairs, quartz
from lammps_adv.training.recipes import RATTLE_MIN_PAIR, rattled


def test_rattle_has_the_asked_amplitude_and_keeps_pairs_out_of_the_core():
    atoms = quartz(2, 2, 2)
    frame = {"positions": atoms.get_positions(), "cell": atoms.cell.array,
             "names": atoms.get_chemical_symbols()}
    before = closest_pairs(frame["positions"], frame["cell"], frame["names"])
    rng = np.random.default_rng(0)
    for amplitude in (0.05, 0.1, 0.2):
        moved = rattled(frame, amplitude, rng)
        assert moved is not None
        rms = np.sqrt(np.mean(np.sum((moved["positions"] - frame["positions"]) ** 2, axis=1)))
        assert 0.8 * amplitude < rms < 1.2 * amplitude
        after = closest_pairs(moved["positions"], frame["cell"], frame["names"])
        assert all(after[p] >= RATTLE_MIN_PAIR * before[p] for p in before)
    # an amplitude that cannot stay out of the core gives no copy (not a keV label)
    assert rattled(frame, 3.0, rng) is None
