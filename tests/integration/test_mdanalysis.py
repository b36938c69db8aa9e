"""A default `lammps-adv run` recording opens in MDAnalysis: frames without asking for them,
velocities, element names, the time step (lammps_adv.io.trajectory.universe)."""
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
    out = tmp_path / "run.h5"
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
    # plain MDAnalysis with the data file as topology reads the same frames
    plain = mda.Universe(str(glass_192), str(out), format="H5MD", topology_format="DATA",
                         atom_style="id type charge x y z", dt=0.1)
    assert len(plain.trajectory) == 3
    plain.trajectory[2]
    np.testing.assert_allclose(plain.atoms.positions, frames["position"][2], atol=1e-4)
