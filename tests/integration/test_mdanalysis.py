"""A default `lammps-adv run` recording (run.h5md) opens in MDAnalysis and pyh5md: frames
without asking for them, velocities, element names, the time step
(lammps_adv.io.trajectory.universe); plain MDAnalysis and pyh5md take the .h5md file for H5MD
without being told."""
import warnings

import numpy as np
import pytest

from conftest import REPO
from lammps_adv.cli import main as cli

NVT = REPO / "tests" / "decks" / "nvt_short.in"
DSF = str(REPO / "potentials" / "bks_dsf.lmp")


def test_default_recording_opens_in_mdanalysis(glass_192, tmp_path):
    import MDAnalysis as mda
    from lammps_adv.io.h5md import read_frames, read_observables
    from lammps_adv.io.trajectory import universe
    out = tmp_path / "run.h5md"
    assert cli(["run", str(NVT), "--reference", "bks-dsf", "--out", str(out), "--quiet",
                "-var", "data", str(glass_192), "-var", "pot", DSF, "-var", "nsteps",
                "200"]) == 0
    obs, frames = read_observables(out), read_frames(out)
    assert len(obs["step"]) == 201 and frames["step"].tolist() == [0, 100, 200]
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # no "no dt information" warning
        u = universe(out)
    assert len(u.trajectory) == 3 and u.trajectory.dt == pytest.approx(0.1)   # ps
    assert sorted(set(u.atoms.types)) == ["O", "Si"] and len(u.atoms) == 192
    for k, ts in enumerate(u.trajectory):
        np.testing.assert_allclose(u.atoms.positions, frames["position"][k], atol=1e-4)
        assert ts.time == pytest.approx(frames["time"][k])
        v = u.atoms.velocities                     # A/ps
        kinetic = 0.5 * np.sum(u.atoms.masses[:, None] * v**2) * 1.0364269e-4   # eV
        temperature = 2 * kinetic / (3 * (len(v) - 1) * 8.617333e-5)
        # the recorded temperature of that step (velocities at time t)
        assert temperature == pytest.approx(obs["temperature"][frames["record"][k]], rel=1e-3)
    # plain MDAnalysis, told nothing, with the data file as topology: it guesses both formats
    # from the extensions, the data file's atom style (full) and its types Si/O with masses
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = mda.Universe(str(glass_192), str(out))
    assert len(plain.trajectory) == 3 and plain.trajectory.dt == pytest.approx(0.1)
    assert list(plain.atoms.types) == list(u.atoms.types)
    np.testing.assert_allclose(plain.atoms.masses, u.atoms.masses)
    plain.trajectory[2]
    np.testing.assert_allclose(plain.atoms.positions, frames["position"][2], atol=1e-4)
    np.testing.assert_allclose(plain.atoms.velocities, u.trajectory[2].velocities, atol=1e-4)
    assert plain.trajectory.ts.time == pytest.approx(frames["time"][2])
    # pyh5md opens it as an H5MD file (author and creator present) with its elements
    import pyh5md
    with pyh5md.File(str(out), "r") as f:
        pos = pyh5md.element(f["particles/all"], "position")
        cos = pyh5md.element(f["observables"], "cos_adversarial")
        assert pos.value.shape == (3, 192, 3) and list(pos.step[:]) == [0, 100, 200]
        np.testing.assert_allclose(pos.value[1], frames["position"][1])
        np.testing.assert_array_equal(cos.value[:], obs["cos_adversarial"])
        assert f["h5md/creator"].attrs["name"] == "lammps-adv"
