"""A recording as an MDAnalysis Universe, with what MDAnalysis cannot find by itself.

A recording is an H5MD file: ``mda.Universe(topology, "run.h5", format="H5MD")`` reads its
frames (positions, velocities, the driving forces, box, time), but H5MD carries no topology
MDAnalysis reads, so a LAMMPS data file as topology gives types "1"/"2", and MDAnalysis'
H5MD reader has no time step (it warns and assumes 1 ps). ``universe(path)`` builds the
Universe from the recording alone: element names as names, types and elements, masses,
the time step between frames, and the frames as the trajectory.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lammps_adv.core.errors import FileFormatError
from lammps_adv.core.units import MASSES
from lammps_adv.io.h5md import read_frames


def universe(path):
    """MDAnalysis Universe of the frames of a recording (``--frames-every``; ``run``
    stores one every 100 records by default). Units are MDAnalysis' own: A, ps, A/ps,
    forces in kJ/(mol A) (the file's ``force``; ``read_frames`` gives eV/A)."""
    try:
        import MDAnalysis as mda
    except ImportError:
        raise FileFormatError("universe() needs MDAnalysis: pip install MDAnalysis") from None
    path = Path(path)
    frames = read_frames(path)               # FileFormatError when it has no frames
    names = np.array(frames["species"], dtype=object)
    u = mda.Universe.empty(len(names), trajectory=False)
    for attr in ("names", "types", "elements"):
        u.add_TopologyAttr(attr, names)
    u.add_TopologyAttr("masses", np.array([MASSES.get(n, 0.0) for n in names]))
    times = np.asarray(frames["time"], dtype=float)
    dt = float(times[1] - times[0]) if len(times) > 1 and times[1] > times[0] else 1.0
    u.load_new(str(path), format="H5MD", dt=dt)
    return u
