"""The recorder: adversarial measures of a LAMMPS run or minimization, step by step, to HDF5.

``fix <id> all external pf/callback 1 1`` calls it at every force evaluation: the setup
of every ``run`` and ``minimize``, every MD step, and every evaluation of a minimization
(line searches included). The fix adds no force, energy or virial. At that moment,
post_force, LAMMPS' force array holds the complete force of the driving model (pair +
bonded + kspace, ghosts summed), plus forces of fixes defined *before* the recorder's
fix; so the fix is installed right after the box exists, before a deck's own fixes.

Energy of the driving model for exactly the recorded configuration: in MD a private
``compute pe`` (a ``fix ave/time`` asks LAMMPS to tally it every ``every`` steps); in a
minimization the minimizer's own ``thermo_pe``, read after the callback (late_energy.py).

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
from lammps_adv.errors import FileFormatError, RecorderError, RunInterrupted
from lammps_adv.mpi import comm_of, on_root
from lammps_adv.recorder.deck import BOX_COMMANDS, HOOKED_AFTER, RUN_COMMANDS, run_with_hooks
from lammps_adv.recorder.late_energy import LateEnergy
from lammps_adv.recorder.provenance import recording_parameters, run_parameters
from lammps_adv.recorder.signals import StopSignals
from lammps_adv.recorder.sink import RecordSink
from lammps_adv.recorder.snapshot import Gatherer, check_atom_set
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
    for ``/parameters``; progress: a progress line on rank 0 (at most one a second).

    Drive LAMMPS with ``command``, ``commands`` or ``file`` (a whole deck); use it as a
    context manager or call ``close()``.
    """

    def __init__(self, lmp, reference, out="run.h5", every: int = 1, frames_every: int = 0,
                 flush_every: int = 100, flush_seconds: float = 5.0, append: bool = False,
                 overwrite: bool = False, species=None, approx: str | None = None,
                 provenance: dict | None = None, progress: bool = False,
                 fix_id: str = "adv_rec", comm=None):
        for name, value, ok in (("every", every, int(every) >= 1),
                                ("frames-every", frames_every, int(frames_every) >= 0),
                                ("flush-every", flush_every, int(flush_every) >= 1),
                                ("flush-seconds", flush_seconds, float(flush_seconds) > 0)):
            if not ok:
                raise RecorderError(f"--{name} must be {'>= 0' if name == 'frames-every' else 'positive'}, got {value}")
        if append and overwrite:
            raise RecorderError("--append and --overwrite contradict each other: choose one")
        self.lmp, self.comm = lmp, comm_of(lmp, comm)
        self.rank = self.comm.Get_rank()
        self.every, self.frames_every = int(every), int(frames_every)
        self.flush_every, self.flush_seconds = int(flush_every), float(flush_seconds)
        self.species, self.approx, self.progress = species, approx, progress
        self.fix_id, self.out, self.provenance = fix_id, Path(out), dict(provenance or {})
        self.calculator = get_calculator(reference, comm=self.comm)
        self.gatherer, self.late = Gatherer(lmp, self.comm), LateEnergy(lmp)
        self.signals = StopSignals()
        self.sink, self._error, self._closed, self._installed = None, None, False, False
        self._types = self._symbols = self._type_elements = None
        self._warned = set()
        self._timings = dict.fromkeys(("gather", "reference", "callback"), 0.0)
        self.rows_written = 0
        # the output is opened (and locked) at once: a bad path fails before any run
        mode = "append" if append else "overwrite" if overwrite else "new"
        try:
            n_stages = on_root(self.comm, self._open_sink, mode)
        except FileFormatError as exc:
            raise RecorderError(str(exc)) from None
        self.stages = StageTracker(self.every, n_stages)
        if self._box_exists():
            self.attach()

    def _open_sink(self, mode):
        from lammps_adv.engine import lammps_version
        attrs, texts = recording_parameters(
            self.calculator, self.provenance, every=self.every, frames_every=self.frames_every,
            lammps_version=lammps_version(self.lmp), mpi_ranks=self.comm.Get_size())
        self.sink = RecordSink(self.out, attrs, texts, mode, self.frames_every,
                               self.flush_every, self.flush_seconds, self.progress)
        return self.sink.writer.n_stages

    @property
    def n_records(self) -> int:
        return self.sink.n_records if self.sink is not None else 0

    @property
    def timings(self) -> dict:
        """Seconds spent: gather, reference, measures, write; callback = all inside it."""
        return {**self._timings, **(self.sink.timings if self.sink is not None else {})}

    def _box_exists(self) -> bool:
        return bool(self.lmp.extract_setting("box_exist"))

    def _warn(self, key, msg):
        if key not in self._warned and self.rank == 0:
            print(f"lammps-adv: warning: {msg}", file=sys.stderr, flush=True)
        self._warned.add(key)

    # ------------------------------------------------------------------ the fix
    def attach(self) -> None:
        """Install the recording fix (the box must exist; idempotent)."""
        lmp, fid = self.lmp, self.fix_id
        if self._installed and lmp.has_id("fix", fid):
            return
        if not self._box_exists():
            raise RecorderError("the recorder needs a simulation box: attach it after "
                                "read_data / create_box / read_restart")
        if lmp.extract_global("units") != "metal":
            raise RecorderError(f"the recorder works in metal units (eV, A, ps); the deck "
                                f"uses units {lmp.extract_global('units')}")
        from lammps_adv.elements import type_elements
        from lammps_adv.errors import CalculatorError
        try:
            self._type_elements, self._species_source = type_elements(lmp, self.species, self.comm)
            if lmp.get_natoms() > 0:
                types = self.gatherer.types()
                self._symbols = on_root(self.comm, lambda: self._symbols_for(types, None, 0))
                self.calculator.setup(self._symbols)
        except CalculatorError as exc:
            source = getattr(self, "_species_source", None)
            raise RecorderError(f"{exc} (elements from {source})" if source else str(exc)) from None
        lmp.commands_list([f"fix {fid} all external pf/callback 1 1",
                           f"fix_modify {fid} energy no virial no",
                           f"compute {fid}_pe all pe pair bond angle dihedral improper kspace",
                           f"fix {fid}_e all ave/time 1 1 {self.every} c_{fid}_pe"])
        lmp.set_fix_external_callback(fid, self._callback)
        self._installed = True

    def detach(self) -> None:
        """Remove the recording fixes (e.g. before ``replicate``)."""
        if self._box_exists():
            for kind, name in (("fix", f"{self.fix_id}_e"), ("fix", self.fix_id),
                               ("compute", f"{self.fix_id}_pe")):
                if self.lmp.has_id(kind, name):
                    self.lmp.command(("unfix " if kind == "fix" else "uncompute ") + name)
        self._installed = False
        self.late.disarm()

    def _symbols_for(self, types, step, natoms):
        """Rank 0: the element of every atom; errors when atoms were lost or changed."""
        check_atom_set(types, self._types if self.sink.writer.started else None, step, natoms)
        if self._types is None or len(types) != len(self._types) or (types != self._types).any():
            missing = sorted(set(types.tolist()) - set(self._type_elements))
            if missing:
                raise RecorderError(f"atom types {missing} have no element")
            self._symbols = [self._type_elements[int(t)] for t in types]
            self.calculator.check_species(self._symbols)
            self._types = types
        return self._symbols

    # ------------------------------------------------------------------ callback
    def _callback(self, caller, step, nlocal, tag, x, fext):
        if nlocal:
            fext[:] = 0.0
        if self._error is not None:
            return
        t0 = _time.perf_counter()
        try:
            self._stop_if_signalled(f"at step {step}")
            self._on_force(int(step), int(nlocal), tag, x)
        except Exception as exc:  # noqa: BLE001 - raised on every rank, see _on_force
            self._error = exc if isinstance(exc, RecorderError) else RecorderError(_one_line(exc))
            self.lmp.lib.lammps_force_timeout(self.lmp.lmp)   # stops at the next step
        self._timings["callback"] += _time.perf_counter() - t0

    def _stop_if_signalled(self, where):
        sig = self.signals.received or 0
        if self.comm.Get_size() > 1:
            from mpi4py import MPI
            sig = self.comm.allreduce(sig, op=MPI.MAX)
        if sig:
            raise RunInterrupted(f"interrupted by {StopSignals.name(sig)} {where}", sig)

    def _on_force(self, step, nlocal, tag, x):
        lmp = self.lmp
        kind = "minimize" if lmp.lib.lammps_is_running(lmp.lmp) == 2 else "run"
        self._release_energy()
        ev, started = self.stages.observe(kind, step)
        if started is not None and self.rank == 0:
            self.sink.writer.add_stage(kind, started, step)
        if not self.stages.wanted(kind, ev, step):
            return
        t0 = _time.perf_counter()
        e_app = None
        if kind == "run":
            e_app = float("nan")
            if int(lmp.extract_global("eflag_global")) == step:
                e_app = lmp.extract_compute(f"{self.fix_id}_pe", 0, 0)
            else:
                self._warn("eflag", f"energy not tallied at step {step}: energy_approx is NaN there")
        elif ev == 0:
            self.late.arm(lmp.extract_compute(f"{self.fix_id}_pe", 0, 0))
        snap = self.gatherer.snapshot(step, nlocal, tag, x, half_kick=kind == "run" and ev > 0)
        if self.rank == 0:
            snap.update(step=step, ev=ev, stage=self.stages.index, e_app=e_app)
        on_root(self.comm, lambda: self._symbols_for(snap["types"], step, snap["natoms"]) and None)
        t1 = _time.perf_counter()
        self._timings["gather"] += t1 - t0
        e_acc, f_acc = self.calculator.evaluate(
            snap and snap["pos"], snap and snap["cell"], symbols=self._symbols,
            label=f"the configuration of step {step} ({kind}, stage {self.stages.index})")
        self._timings["reference"] += _time.perf_counter() - t1
        if e_app is None:
            self.late.hold(snap or True)      # completed by the minimizer's energy
            if snap:
                snap.update(e_acc=e_acc, f_acc=f_acc)
        else:
            on_root(self.comm, lambda: self._finish({**snap, "e_acc": e_acc, "f_acc": f_acc}))

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
        self.sink.add(rec, self.stages.kind, self._symbols, lambda: run_parameters(
            self.lmp, self.calculator, self.provenance, self.approx, self._species_source,
            len(self._symbols)))

    # ------------------------------------------------------------------ driving LAMMPS
    def _hook(self, word, cmd, before):
        if word in RUN_COMMANDS:
            self._release_energy()
            if before:
                if not (self._installed and self.lmp.has_id("fix", self.fix_id)):
                    self._installed = False
                    self.attach()
                self.stages.expect(cmd)
            else:
                self.stages.done()
                on_root(self.comm, self._flush_sink, True)
        elif word == "replicate":
            self._release_energy()
            self.detach() if before else self.attach()
        elif word == "clear":
            self._release_energy()
            self._installed = False
            self.late.disarm()
        elif word in BOX_COMMANDS:
            self.attach()

    def command(self, cmd: str) -> None:
        """Execute one LAMMPS command; run/minimize become recorded stages."""
        word = (cmd.split() or [""])[0]
        if self._closed:
            raise RecorderError("the recorder is closed")
        with self.signals:
            if word in RUN_COMMANDS or word == "replicate":
                self._hook(word, cmd, True)
            self._call(lambda: self.lmp.command(cmd), cmd)
            if word in HOOKED_AFTER:
                self._hook(word, cmd, False)

    def commands(self, cmds) -> None:
        for c in (cmds.splitlines() if isinstance(cmds, str) else cmds):
            if c.strip() and not c.strip().startswith("#"):
                self.command(c)

    def file(self, deck) -> None:
        """Run a whole LAMMPS deck (loops, labels, variables as in ``lmp -in``), recording
        each of its run/minimize commands (method: recorder/deck.py)."""
        if self._closed:
            raise RecorderError("the recorder is closed")
        deck = Path(deck)
        text = deck.read_text() if self.rank == 0 else None
        with self.signals:
            run_with_hooks(self.lmp, deck, text, self._hook, self._call, self.comm)

    def _call(self, fn, what):
        """One LAMMPS call; afterwards any error (of LAMMPS, or one the callback stopped
        LAMMPS for, or a signal) closes the file and is raised with the rows kept."""
        try:
            fn()
            cause = self._error
            if cause is None:
                self._stop_if_signalled(f"during {what!r}")
        except RecorderError as exc:
            cause = exc
        except Exception as exc:  # noqa: BLE001 - a LAMMPS error of the deck
            cause = self._error or RecorderError(f"LAMMPS error in {what!r}: {_one_line(exc)}")
        if cause is None:
            return
        self._error = cause
        self.late.disarm()
        self.close(raise_errors=False)
        kept = f"({self.rows_written} rows recorded in {self.out})"
        if isinstance(cause, RunInterrupted):
            raise RunInterrupted(f"{cause}: {kept[1:-1]}, all flushed", cause.signum) from None
        raise RecorderError(f"{cause} {kept}") from None

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
                if self._installed:
                    self.detach()
        except Exception:  # noqa: BLE001 - the instance may be gone after a LAMMPS error
            pass
        self.calculator.close()
        if err is not None and raise_errors:
            raise err if isinstance(err, RecorderError) else RecorderError(_one_line(err))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(raise_errors=exc_type is None)


def _one_line(exc) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
