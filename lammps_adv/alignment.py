"""Energy alignment: the energy zero of two models compared configuration by configuration.

Two models of the same system may differ by a constant per atom of each species (different
charges, reference atoms, DFT pseudopotentials). Compared raw, that offset *is* the error,
and the sign of cos(theta) becomes the sign of the offset. Alignment adds per-species
shifts to the approximate energy:

    E_app,aligned = E_app + sum_s n_s shift_s        (eV; n_s atoms of species s)

Forces do not change. ``fit`` chooses the shifts by least squares over configurations
(minimising sum_c (E_acc,c - E_app,aligned,c)^2). When the compositions do not determine
every shift (all configurations SiO2: only 1 Si + 2 O shifts is known) the fit takes the
minimum-norm solution and says so in ``note``; the aligned energies are the same for any
solution, only the split between species is arbitrary.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from lammps_adv.errors import AlignmentError

MODES = ("none", "per-species")


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise AlignmentError(f"--align must be one of {', '.join(MODES)}, not {mode!r}")


@dataclass(frozen=True)
class Alignment:
    mode: str = "none"                                  # none | per-species
    shifts: dict = field(default_factory=dict)          # species -> eV
    note: str = ""                                      # how the shifts were obtained

    def offset(self, symbols) -> float:
        """sum_s n_s shift_s (eV) for a configuration with these atom symbols."""
        if not self.shifts:
            return 0.0
        counts = Counter(symbols)
        missing = sorted(set(counts) - set(self.shifts))
        if missing:
            raise AlignmentError(f"no alignment shift for {', '.join(missing)} (shifts known "
                                 f"for {', '.join(sorted(self.shifts)) or 'none'})")
        return float(sum(n * self.shifts[s] for s, n in counts.items()))

    def attrs(self) -> dict:
        """What /parameters records: alignment (mode), alignment_shifts_eV (JSON)."""
        return {"alignment": self.mode,
                "alignment_shifts_eV": json.dumps(self.shifts, sort_keys=True),
                "alignment_note": self.note}

    def describe(self) -> str:
        if self.mode == "none":
            return "none (raw energies)"
        shifts = ", ".join(f"{s} {v:+.6f} eV" for s, v in sorted(self.shifts.items()))
        return f"{self.mode}: {shifts}" + (f" ({self.note})" if self.note else "")


NONE = Alignment()


def fit(symbol_lists, e_app, e_acc) -> Alignment:
    """Per-species shifts by least squares: E_acc - E_app ~ sum_s n_s shift_s."""
    e_app, e_acc = np.asarray(e_app, float), np.asarray(e_acc, float)
    if len(symbol_lists) == 0 or len(symbol_lists) != len(e_app) or e_app.shape != e_acc.shape:
        raise AlignmentError("alignment needs one energy pair per configuration, and at "
                             "least one configuration")
    species = sorted({s for symbols in symbol_lists for s in symbols})
    counts = np.array([[Counter(symbols)[s] for s in species] for symbols in symbol_lists],
                      dtype=float)
    shifts, _, rank, _ = np.linalg.lstsq(counts, e_acc - e_app, rcond=None)
    note = f"least squares on {len(e_app)} configurations"
    if rank < len(species):
        note += (f"; compositions determine only {rank} combination(s) of the "
                 f"{len(species)} shifts: minimum-norm solution")
    return Alignment("per-species", {s: float(v) for s, v in zip(species, shifts)}, note)


def parse_shifts(text: str) -> Alignment:
    """``Si=-1.2,O=0.4`` (eV per atom) -> Alignment given by the user."""
    shifts = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            shifts[name.strip()] = float(value)
        except ValueError:
            raise AlignmentError(f"--align-shifts: expected SPECIES=EV[,SPECIES=EV...], got "
                                 f"{text!r}") from None
    if not all(np.isfinite(list(shifts.values()))):
        raise AlignmentError(f"--align-shifts: shifts must be finite, got {text!r}")
    return Alignment("per-species", shifts, "given by the user")


def from_attrs(attrs) -> Alignment:
    """The alignment a lammps-adv output recorded in /parameters (NONE if it has none)."""
    mode = attrs.get("alignment", "none")
    if isinstance(mode, bytes):
        mode = mode.decode()
    shifts = json.loads(attrs.get("alignment_shifts_eV", "{}") or "{}")
    return Alignment(str(mode), {str(k): float(v) for k, v in shifts.items()},
                     str(attrs.get("alignment_note", "")))


def from_file(path, approx=None, reference=None, comm=None) -> Alignment:
    """``--align-from FILE``: the alignment a lammps-adv output (probe, relaxation,
    recording) recorded in /parameters, or shifts fitted on the configurations of a dataset
    or structure file, evaluated with the calculator specs ``approx`` and ``reference``."""
    from pathlib import Path

    import h5py

    from lammps_adv import h5md
    from lammps_adv.errors import FileFormatError
    path = Path(path)
    if not path.is_file():
        raise AlignmentError(f"--align-from: file not found: {path}")
    if h5py.is_hdf5(path):
        try:
            params = h5md.read_parameters(path, texts=False)
        except FileFormatError:          # not an output of ours: a dataset, say
            params = {}
        if "alignment" in params:
            return from_attrs(params)
    if approx is None:
        raise AlignmentError(f"--align-from {path}: to fit shifts on its configurations, name "
                             "the driving model as a calculator spec with --approx (e.g. "
                             "bks-dsf or torchscript:MODEL.pt)")
    from lammps_adv.experiments.probe import load_configs
    from lammps_adv.mpi import mpi_comm
    alignment = fit_parallel(load_configs(path, split=None), approx, reference,
                             comm or mpi_comm())
    return Alignment(alignment.mode, alignment.shifts, f"{alignment.note} of {path.name}")


def fit_parallel(configs, approx: str, reference: str, comm, ranks_per_task: int = 1) -> Alignment:
    """Shifts fitted on configurations [(positions, cell, names, source)] evaluated with the
    calculator specs ``approx`` and ``reference``, spread over MPI groups (the result on
    every rank and the same for any number of ranks)."""
    from lammps_adv.experiments.labelling import label
    app, acc = [label(configs, spec, comm, ranks_per_task, what="alignment fit")
                for spec in (approx, reference)]
    return fit([c["names"] for c in acc], [a["energy"] for a in app],
               [c["energy"] for c in acc])
