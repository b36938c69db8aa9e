"""Recording the adversarial measures of LAMMPS runs and minimizations to HDF5.

One job per module:
  recorder.py     the Recorder: the fix-external callback, stages, errors, closing
  deck.py         hooks that let an unmodified deck hand control back at run/minimize
  snapshot.py     gathering positions, forces, temperature of a step onto rank 0
  stages.py       which run/minimize command each force evaluation belongs to
  late_energy.py  the minimizer's energy, which arrives after the callback
  sink.py         rank 0: records -> measures -> rows of the HDF5 file, progress
  provenance.py   what /parameters says about how a file was made
  signals.py      SIGINT/SIGTERM noted, so a run stops cleanly at the next step
  run.py          ``lammps-adv run``: a deck recorded from start to end
"""
from lammps_adv.core.errors import RecorderError, RunInterrupted  # noqa: F401
from lammps_adv.recorder.deck import logical_commands, prepare_deck  # noqa: F401
from lammps_adv.recorder.provenance import file_hashes  # noqa: F401
from lammps_adv.recorder.recorder import Recorder  # noqa: F401
from lammps_adv.recorder.run import run_deck  # noqa: F401
