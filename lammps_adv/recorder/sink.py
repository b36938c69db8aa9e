"""Rank 0's side of a recording: complete records become rows (and frames) of the file.

Computes the measures of each record (lammps_adv.core.adversarial) and its first-order
change (``first_order_change`` below), buffers rows in the H5MD writer, flushes after
``flush_every`` rows or ``flush_seconds`` seconds, and prints progress (at most one line a
second, and one at the start of each stage).
"""
from __future__ import annotations

import math
import time

from lammps_adv.core import adversarial
from lammps_adv.core.configuration import periodic_displacement
from lammps_adv.core.errors import RecorderError
from lammps_adv.io.h5md import H5MDWriter
from lammps_adv.io.schema import RECORDING_OBSERVABLES as OBSERVABLES


class RecordSink:
    def __init__(self, path, attrs: dict, texts: dict, mode: str, every: int, frames_every: int,
                 flush_every: int, flush_seconds: float, progress: bool):
        self.writer = H5MDWriter(path, OBSERVABLES, attrs, texts, mode=mode)
        self.every, self.frames_every, self.progress = every, frames_every, progress
        self.flush_every, self.flush_seconds = flush_every, flush_seconds
        self.timings = {"measures": 0.0, "write": 0.0}
        self.n_records = 0
        self._last_flush = time.monotonic()
        self._last_print = 0.0
        self._last = None
        self._previous = self._step_start = None

    def add(self, rec: dict, kind: str, symbols, parameters) -> None:
        """One complete record; ``parameters()`` gives /parameters attributes at the first."""
        t0 = time.perf_counter()
        m = adversarial.measures(rec["e_app"], rec["e_acc"], rec["f_app"], rec["f_acc"])
        m.update(temperature=rec["temperature"], evaluation=rec["ev"], stage=rec["stage"],
                 first_order_change=self.first_order_change(rec),
                 # MD time between stored frames (ps): MDAnalysis' H5MD reader takes its
                 # dt from an observable of that name, and has none otherwise
                 dt=max(self.frames_every, 1) * self.every * rec["dt"])
        t1 = time.perf_counter()
        self.timings["measures"] += t1 - t0
        w = self.writer
        if not w.started:
            w.set_parameters(parameters())
            w.start(symbols, frames=self.frames_every > 0)
        row = w.add_row(rec["step"], rec["time"], m)
        if self.frames_every and row % self.frames_every == 0:
            w.add_frame(rec["step"], rec["time"], row, rec["pos"], rec["f_app"], rec["f_acc"],
                        rec["cell"], velocities=rec.get("vel"))
        now = time.monotonic()
        if w.pending >= self.flush_every or now - self._last_flush >= self.flush_seconds:
            self.flush()
        self.timings["write"] += time.perf_counter() - t1
        self.n_records += 1
        self._last = (rec["stage"], kind, rec["step"], rec["ev"], m, row)
        if self.progress and (now - self._last_print >= 1.0 or rec["ev"] == 0):
            self._last_print = now
            self.print_progress()

    def first_order_change(self, rec: dict) -> float:
        """(F_app - F_acc) of the configuration this step started from . the displacement
        since (eV): the first-order prediction of the change of E_acc - E_app from there to
        this record. The step's start is the last record of the previous step in the same
        stage (in a line search every trial of a step is measured from it; in MD every
        record from the one before). 0 during a stage's first step (nothing has moved yet);
        NaN only when the atom count changed. A few passes over 3N numbers (~30 us at 3000 atoms): nothing beside a
        reference evaluation."""
        prev = self._previous
        if prev is None or prev["stage"] != rec["stage"]:
            self._step_start = None
        elif prev["step"] != rec["step"]:
            self._step_start = prev
        self._previous = {k: rec[k] for k in ("stage", "step", "pos", "f_app", "f_acc")}
        start = self._step_start
        if start is None:
            return 0.0
        if start["pos"].shape != rec["pos"].shape:
            return math.nan
        dr = periodic_displacement(start["pos"], rec["pos"], rec["cell"])
        return adversarial.first_order_change(start["f_app"], start["f_acc"], dr)

    def flush(self) -> None:
        if self.writer.started:
            self.writer.flush()
        self._last_flush = time.monotonic()

    def print_progress(self) -> None:
        if self.progress and self._last is not None:
            stage, kind, step, ev, m, row = self._last
            print(f"[lammps-adv] stage {stage} {kind:<8s} step {step:>9d} eval {ev:>7d}  "
                  f"cos {m['cos_adversarial']:+.4f}  dE {m['energy_error']:+.6e} eV  "
                  f"F_rmse {m['force_rmse']:.4e}  rows {row + 1}", flush=True)

    def close(self) -> int:
        """Flush and close; returns the rows the file holds (also after a failed write)."""
        try:
            self.writer.close()
        finally:
            rows = self.writer.rows_flushed
        return rows


def check_options(every, frames_every, flush_every, flush_seconds, append, overwrite) -> str:
    """Refuse impossible recording options; returns the writer's mode."""
    for name, value, ok in (("every", every, int(every) >= 1),
                            ("frames-every", frames_every, int(frames_every) >= 0),
                            ("flush-every", flush_every, int(flush_every) >= 1),
                            ("flush-seconds", flush_seconds, float(flush_seconds) > 0)):
        if not ok:
            need = ">= 0" if name == "frames-every" else "positive"
            raise RecorderError(f"--{name} must be {need}, got {value}")
    if append and overwrite:
        raise RecorderError("--append and --overwrite contradict each other: choose one")
    return "append" if append else "overwrite" if overwrite else "new"
