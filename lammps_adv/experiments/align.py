"""Energy alignments fitted on data: shifts fitted on configurations evaluated with two
calculators (spread over MPI groups), or read from a lammps-adv output (``--align-from``).
The alignment itself and its least-squares fit are ``lammps_adv.core.alignment``."""
from __future__ import annotations

from pathlib import Path

import h5py

from lammps_adv.core.alignment import UNRECORDED, Alignment, fit, from_attrs
from lammps_adv.core.errors import AlignmentError, FileFormatError
from lammps_adv.experiments.labelling import label
from lammps_adv.io import h5md
from lammps_adv.io.configs import load_configs
from lammps_adv.io.files import file_sha256
from lammps_adv.parallel.mpi import mpi_comm


def from_file(path, approx=None, reference=None, comm=None) -> Alignment:
    """``--align-from FILE``: the alignment a lammps-adv output (probe, relaxation,
    recording) recorded in /parameters, unchanged (its alignment_source too), or shifts
    fitted on the configurations of a dataset or structure file, evaluated with the
    calculator specs ``approx`` and ``reference`` (source: the file's name and sha256).
    For an independent alignment the file's configurations are ones no probe, relaxation
    or remedy uses."""
    path = Path(path)
    if not path.is_file():
        raise AlignmentError(f"--align-from: file not found: {path}")
    source = f"{path.name} (sha256 {file_sha256(path)[:12]})"
    if h5py.is_hdf5(path):
        try:
            params = h5md.read_parameters(path, texts=False)
        except FileFormatError:          # not an output of ours: a dataset, say
            params = {}
        if "alignment" in params:
            alignment = from_attrs(params)
            if alignment.source == UNRECORDED:        # older file: name where it was read
                alignment = Alignment(alignment.mode, alignment.shifts, alignment.note, source)
            return alignment
    if approx is None:
        raise AlignmentError(f"--align-from {path}: to fit shifts on its configurations, name "
                             "the driving model as a calculator spec with --approx (e.g. "
                             "bks-dsf or torchscript:MODEL.pt)")
    return fit_parallel(load_configs(path, split=None), approx, reference, comm or mpi_comm(),
                        source=source)


def fit_parallel(configs, approx: str, reference: str, comm, ranks_per_task: int = 1,
                 source: str | None = None) -> Alignment:
    """Shifts fitted on configurations [(positions, cell, names, source)] evaluated with the
    calculator specs ``approx`` and ``reference``, spread over MPI groups (the result on
    every rank and the same for any number of ranks). source: alignment_source (default:
    the experiment's own configurations)."""
    app, acc = [label(configs, spec, comm, ranks_per_task, what="alignment fit")
                for spec in (approx, reference)]
    return fit([c["names"] for c in acc], [a["energy"] for a in app],
               [c["energy"] for c in acc], source=source)
