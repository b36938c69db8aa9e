"""The recorder: adversarial measures of a LAMMPS run or minimization, step by step, to HDF5.

The recording fix (fix.py) calls ``_callback`` at every force evaluation: the setup of
every ``run`` and ``minimize``, every MD step, every evaluation of a minimization (line
searches included). At that moment (post_force) LAMMPS' force array holds the complete
force of the driving model plus forces of fixes defined *before* the recorder's fix, so the
fix is installed right after the box exists, before a deck's own fixes. The driving
model's energy: in MD the fix's private ``compute pe``; in a minimization the minimizer's
own energy, read after the callback (late_energy.py).

Errors inside the callback (a model failing, lost atoms, a full disk, SIGINT/SIGTERM)
cannot be raised through LAMMPS' C code: the recorder forces a LAMMPS timeout, the run
stops at its next step, and when LAMMPS hands back control the recorder flushes, closes
the file and raises the error (every row recorded so far is kept).
"""
from __future__ import annotations

import sys
import time as _time
from pathlib import Path

from lammps_adv.calculators import get_calculator
from lammps_adv.core.alignment import NONE
from lammps_adv.core.errors import FileFormatError, RecorderError, RunInterrupted, one_line
from lammps_adv.core.finite import nonfinite
from lammps_adv.lammps.engine import lammps_version
from lammps_adv.parallel.mpi import comm_of, on_root
from lammps_adv.recorder.deck import (BOX_COMMANDS, REINSTALL, RUN_COMMANDS, run_command,
                                      run_with_hooks)
from lammps_adv.recorder.fix import RecordingFix
from lammps_adv.recorder.late_energy import LateEnergy
from lammps_adv.recorder.provenance import recording_parameters, run_parameters
from lammps_adv.recorder.signals import StopSignals
from lammps_adv.recorder.sink import RecordSink, check_options
from lammps_adv.recorder.snapshot import Gatherer
from lammps_adv.recorder.stages import StageTracker


class Recorder:
    """Records the adversarial measures of a LAMMPS instance's runs and minimizations.

    lmp: a ``lammps.lammps`` instance (metal units); reference: a calculator spec
    (``lammps_adv.calculators``) or a ``Calculator``; out: HDF5 file; every: MD record
    interval in steps (every evaluation of a minimization is recorded, and the first of
    every run); frames_every: store positions, both force sets and the box every K records
    (0: never); flush_every / flush_seconds: write buffered rows after that many rows or
    seconds; append / overwrite: continue or replace an existing file (else an existing
    file is refused); species: element of each atom type when the types carry no labels;
    approx: a name for the driving model; provenance: {deck, command_line, variables, ...}
    for ``/parameters``; progress: a progress line on rank 0 (at most one a second);
    alignment: per-species shifts added to the driving model's energy before every measure
    (``lammps_adv.core.alignment``; energy_approx is stored aligned, the shifts in /parameters).

    Drive LAMMPS with ``command``, ``commands`` or ``file`` (a whole deck); use it as a
    context manager or call ``close()``.
    """

    def __init__(self, lmp, reference, out="run.h5md", every: int = 1, frames_every: int = 0,
                 flush_every: int = 100, flush_seconds: float = 5.0, append: bool = False,
                 overwrite: bool = False, species=None, approx: str | None = None,
                 provenance: dict | None = None, progress: bool = False,
                 alignment=None, fix_id: str = "adv_rec", comm=None):
        mode = self._mode = check_options(every, frames_every, flush_every, flush_seconds,
                                          append, overwrite)
        self.lmp, self.comm = lmp, comm_of(lmp, comm)
        self.rank = self.comm.Get_rank()
        self.every, self.frames_every = int(every), int(frames_every)
        self.flush_every, self.flush_seconds = int(flush_every), float(flush_seconds)
        self.approx, self.progress = approx, progress
        self.alignment, self._offset = alignment or NONE, (None, 0.0)
        self.out, self.provenance = Path(out), dict(provenance or {})
        self.calculator = get_calculator(reference, comm=self.comm)
        self.gatherer, self.late = Gatherer(lmp, self.comm), LateEnergy(lmp)
        self.fix = RecordingFix(lmp, self.comm, fix_id, self.every, species, self.calculator,
                                self.gatherer)
        self.signals = StopSignals()
        self.sink, self._error, self._closed = None, None, False
        self._warned = set()
        self._timings = dict.fromkeys(("gather", "reference", "callback"), 0.0)
        self.rows_written = 0
        # the output is opened (and locked) at once: a bad path fails before any run
        try:
            n_stages = on_root(self.comm, self._open_sink, mode)
        except FileFormatError as exc:
            raise RecorderError(str(exc)) from None
        self.stages = StageTracker(self.every, n_stages)
        if self.fix.box_exists():
            self.attach()

    def _open_sink(self, mode):
        attrs, texts = recording_parameters(
            self.calculator, self.provenance, every=self.every, frames_every=self.frames_every,
            lammps_version=lammps_version(self.lmp), mpi_ranks=self.comm.Get_size(),
            **self.alignment.attrs())
        self.sink = RecordSink(self.out, attrs, texts, mode, self.every, self.frames_every,
                               self.flush_every, self.flush_seconds, self.progress)
        return self.sink.writer.n_stages

    @property
    def n_records(self) -> int:
        return self.sink.n_records if self.sink is not None else 0

    @property
    def timings(self) -> dict:
        """Seconds spent: gather, reference, measures, write; callback = all inside it."""
        return {**self._timings, **(self.sink.timings if self.sink is not None else {})}

    def _warn(self, key, msg):
        if key not in self._warned and self.rank == 0:
            print(f"lammps-adv: warning: {msg}", file=sys.stderr, flush=True)
        self._warned.add(key)

    # ------------------------------------------------------------------ the fix
    def attach(self) -> None:
        """Install the recording fix (the box must exist; idempotent)."""
        self.fix.attach(self._callback)

    def detach(self) -> None:
        """Remove the recording fixes (e.g. before ``replicate``)."""
        self.fix.detach()
        self.late.disarm()

    # ------------------------------------------------------------------ callback
    def _callback(self, caller, step, nlocal, tag, x, fext):
        if nlocal:
            fext[:] = 0.0
        if self._error is not None:
            return
        t0 = _time.perf_counter()
        try:
            self.signals.stop_if_received(self.comm, f"at step {step}")
            self._on_force(int(step), int(nlocal), tag, x)
        except Exception as exc:  # noqa: BLE001 - raised on every rank, see _on_force
            self._error = exc if isinstance(exc, RecorderError) else RecorderError(one_line(exc))
            self.lmp.lib.lammps_force_timeout(self.lmp.lmp)   # stops at the next step
        self._timings["callback"] += _time.perf_counter() - t0

    def _on_force(self, step, nlocal, tag, x):
        lmp = self.lmp
        kind = "minimize" if lmp.lib.lammps_is_running(lmp.lmp) == 2 else "run"
        self._release_energy()
        if self.fix.symbols is None:         # a box made and run inside an include file
            raise RecorderError("the elements of the atoms were not known when the run "
                                "started (box created outside the deck's top level): give "
                                "--species")
        ev, started = self.stages.observe(kind, step)
        if started is not None and self.rank == 0:
            self.sink.writer.add_stage(kind, started, step)
        if not self.stages.wanted(kind, ev, step):
            return
        t0 = _time.perf_counter()
        e_app = e_known = None
        if kind == "run":
            e_app = float("nan")
            if self.fix.energy_tallied(step):
                e_app = e_known = self.fix.energy()
            else:
                self._warn("eflag", f"energy not tallied at step {step}: energy_approx is NaN there")
        elif ev == 0:
            self.late.arm(self.fix.energy())
        snap = self.gatherer.snapshot(step, nlocal, tag, x, half_kick=kind == "run" and ev > 0)
        if self.rank == 0:
            snap.update(step=step, ev=ev, stage=self.stages.index, e_app=e_app)
        started = self.rank == 0 and self.sink.writer.started
        on_root(self.comm, self._check_snapshot, snap, e_known, step, kind, started)
        t1 = _time.perf_counter()
        self._timings["gather"] += t1 - t0
        e_acc, f_acc = self.calculator.evaluate(
            snap and snap["pos"], snap and snap["cell"], symbols=self.fix.symbols,
            label=f"the configuration of step {step} ({kind}, stage {self.stages.index})")
        self._timings["reference"] += _time.perf_counter() - t1
        if e_app is None:
            self.late.hold(snap or True)      # completed by the minimizer's energy
            if snap:
                snap.update(e_acc=e_acc, f_acc=f_acc)
        else:
            on_root(self.comm, lambda: self._finish({**snap, "e_acc": e_acc, "f_acc": f_acc}))

    def _check_snapshot(self, snap, e_app, step, kind, started):
        """Rank 0 (one collective with the others): the atoms are those of the run so far,
        and the driving model's energy (None: not tallied at this step) and forces are
        numbers."""
        self.fix.symbols_for(snap["types"], step, snap["natoms"], started)
        problem = nonfinite(e_app, snap["f_app"])
        if problem:
            model = self.approx or "the deck's pair style"
            raise RecorderError(f"the driving model ({model}) on the configuration of step "
                                f"{step} ({kind}, stage {self.stages.index}): {problem}")

    def _release_energy(self):
        """Complete a held minimization record with the minimizer's energy (collective)."""
        if self.late.pending is None:
            return
        rec, energy, mismatch = self.late.release()
        if mismatch:
            self._warn("minfix", f"the minimizer's energy differs from pair+bonded+kspace "
                       f"({mismatch[0]} vs {mismatch[1]} eV): fixes with fix_modify energy yes "
                       "are included in energy_approx of minimizations")
        on_root(self.comm, lambda: rec and self._finish({**rec, "e_app": energy}))

    def _finish(self, rec):
        fix = self.fix
        if self._offset[0] is not fix.symbols:       # once per set of atoms
            self._offset = (fix.symbols, self.alignment.offset(fix.symbols))
        rec = {**rec, "e_app": rec["e_app"] + self._offset[1]}
        self.sink.add(rec, self.stages.kind, fix.symbols, lambda: run_parameters(
            self.lmp, self.calculator, self.provenance, self.approx, fix.species_source,
            len(fix.symbols)))

    # ------------------------------------------------------------------ driving LAMMPS
    def _hook(self, word, cmd, before):
        if word in RUN_COMMANDS:
            self._release_energy()
            if before:
                self.attach()
                if self.fix.symbols is None:     # box made by create_box: atoms came later
                    self.fix.resolve_elements()
                self.stages.expect(cmd)
            else:
                self.stages.done()
                on_root(self.comm, self._flush_sink, True)
        elif word in REINSTALL:
            self._release_energy()
            self.detach() if before else self.attach()
        elif word == "clear":
            self._release_energy()
            self.fix.installed = False
            self.late.disarm()
        elif word in BOX_COMMANDS:
            self.attach()

    def command(self, cmd: str) -> None:
        """Execute one LAMMPS command; run/minimize become recorded stages."""
        self._check_open()
        with self.signals:
            run_command(self.lmp, cmd, self._hook, self._call)

    def commands(self, cmds) -> None:
        for c in (cmds.splitlines() if isinstance(cmds, str) else cmds):
            if c.strip() and not c.strip().startswith("#"):
                self.command(c)

    def file(self, deck) -> None:
        """Run a whole LAMMPS deck (loops, labels, variables as in ``lmp -in``), recording
        each of its run/minimize commands (method: recorder/deck.py)."""
        self._check_open()
        deck = Path(deck)
        text = deck.read_text() if self.rank == 0 else None
        with self.signals:
            run_with_hooks(self.lmp, deck, text, self._hook, self._call, self.comm)

    def _check_open(self):
        if self._closed:
            raise RecorderError("the recorder is closed")

    def _call(self, fn, what):
        """One LAMMPS call; afterwards any error (of LAMMPS, or one the callback stopped
        LAMMPS for, or a signal) closes the file and is raised with the rows kept."""
        try:
            fn()
            cause = self._error
            if cause is None:
                self.signals.stop_if_received(self.comm, f"during {what!r}")
        except RecorderError as exc:
            cause = exc
        except Exception as exc:  # noqa: BLE001 - a LAMMPS error of the deck
            cause = self._error or RecorderError(f"LAMMPS error in {what!r}: {one_line(exc)}")
        if cause is None:
            return
        self._error = cause
        self.late.disarm()
        self.close(raise_errors=False)
        kept = f"({self.rows_written} rows recorded in {self.out})"
        if self.rows_written == 0 and self._mode != "append":
            on_root(self.comm, self._remove_empty)     # it would only block the rerun
            kept = f"(0 rows recorded; {self.out} not kept)"
        if isinstance(cause, RunInterrupted):
            raise RunInterrupted(f"{cause}: {kept[1:-1]}, all flushed", cause.signum) from None
        raise RecorderError(f"{cause} {kept}") from None

    def _remove_empty(self) -> None:
        if self.out.is_file():
            self.out.unlink()

    def set_parameters(self, values: dict) -> None:
        """Add attributes to this recording's /parameters (collective; rank 0 writes), e.g.
        an experiment's outcome known only after its run (a relaxation's convergence)."""
        self._check_open()
        self._release_energy()
        try:
            on_root(self.comm, lambda: self.sink.writer.set_parameters(values))
        except FileFormatError as exc:
            raise RecorderError(str(exc)) from None

    # ------------------------------------------------------------------ closing
    def flush(self) -> None:
        self._release_energy()
        on_root(self.comm, self._flush_sink, False)

    def _flush_sink(self, report: bool):
        self.sink.flush()
        if report:
            self.sink.print_progress()

    def close(self, raise_errors: bool = True) -> None:
        """Write what is buffered, close the file and the model (collective)."""
        if self._closed:
            return
        self._closed = True
        err = None
        try:
            if self._error is None:
                self._release_energy()
        except RecorderError as exc:
            err = exc
        try:
            self.rows_written = on_root(self.comm, lambda: self.sink and self.sink.close()) or 0
        except Exception as exc:  # noqa: BLE001 - raised below when asked
            err = err or exc
        try:
            if not self.lmp.lib.lammps_is_running(self.lmp.lmp):
                if self._error is not None:
                    self.lmp.command("timer timeout off")     # undo the forced timeout
                if self.fix.installed:
                    self.detach()
        except Exception:  # noqa: BLE001 - the instance may be gone after a LAMMPS error
            pass
        self.calculator.close()
        if err is not None and raise_errors:
            raise err if isinstance(err, RecorderError) else RecorderError(one_line(err))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(raise_errors=exc_type is None)
