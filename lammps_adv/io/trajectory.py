"""A recording as an MDAnalysis Universe, with what MDAnalysis cannot find by itself.

A recording is an H5MD file: ``mda.Universe(topology, "run.h5md")`` reads its
frames (positions, velocities, the driving forces, box, time), but H5MD carries no topology
MDAnalysis reads, so a LAMMPS data file as topology gives types "1"/"2", and MDAnalysis'
H5MD reader has no time step (it warns and assumes 1 ps). ``universe(path)`` builds the
Universe from the recording alone: element names as names, types and elements, masses,
the time step between frames, and the frames as the trajectory. It also works on a file
that is still being written: the file is opened as the project's readers open it (SWMR read
while a writer has it open) and handed to MDAnalysis open, so it holds the frames flushed by
then.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lammps_adv.core.errors import FileFormatError
from lammps_adv.core.units import MASSES
from lammps_adv.io.h5md import open_h5, read_frames, while_written


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
    u.trajectory = _reader(path, len(names), dt)      # what load_new would set
    return u


def _reader(path, n_atoms: int, dt: float):
    """MDAnalysis' H5MD reader on the file opened the project's way (SWMR read while a writer
    holds it; MDAnalysis' own plain open fails while a write is under way), opened again the
    same way on every rewind (MDAnalysis closes the file then), and a frame read again when it
    meets a chunk the writer is rewriting (``h5md.while_written``)."""
    from MDAnalysis.coordinates.H5MD import H5MDReader

    class LiveH5MDReader(H5MDReader):
        def open_trajectory(self):
            if not getattr(getattr(self.filename, "id", None), "valid", False):
                self.filename = open_h5(path)
            super().open_trajectory()

        def _read_frame(self, frame):
            return while_written(path, lambda: super(LiveH5MDReader, self)._read_frame(frame))

    return LiveH5MDReader(open_h5(path), n_atoms=n_atoms, dt=dt)
