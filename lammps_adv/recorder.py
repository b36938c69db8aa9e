"""Record the adversarial measures of a LAMMPS run or minimization, step by step, to HDF5.

How it hooks LAMMPS
-------------------
``fix <id> all external pf/callback 1 1`` calls the recorder at every force evaluation:
the setup of every ``run`` and ``minimize``, every MD step, and every evaluation of a
minimization (line-search evaluations included, several with the same step number). The
fix adds no force (it zeroes its own force array) and no energy or virial
(``fix_modify energy no virial no``). At that moment, post_force, LAMMPS' per-atom force
array holds the complete force of the driving model (pair + bonded + kspace, summed over
ghost atoms), plus the forces of fixes defined *before* the recorder's fix; that is why the
recorder installs its fix right after the box exists (``read_data``/``create_box``/
``read_restart``), before a deck defines its own fixes (``fix langevin`` for one).

Energy of the driving model, for exactly the configuration of the recorded forces:

* MD: a private ``compute <id>_pe all pe pair bond angle dihedral improper kspace`` read in
  the callback. LAMMPS only tallies energy on steps some output needs it, so a
  ``fix <id>_e all ave/time 1 1 N c_<id>_pe`` asks for it on every multiple of N (and
  LAMMPS always tallies at the setup of a run). A compute is cached per timestep, and the
  cache is reset at the start of every run, so within one run each read is fresh.
* minimization: the minimizer itself evaluates ``thermo_pe`` right after the callback
  returns (``Min::energy_force``), for the same configuration, with no cache in between.
  The recorder keeps a pointer to that compute's scalar and reads it at the next callback
  or when the command returns. (``compute pe`` caches per step, and a line search evaluates
  several times per step, so reading a compute inside the callback would be stale.)
  ``thermo_pe`` includes energies of fixes with ``fix_modify energy yes``; the recorder
  warns once if the two sources disagree.

Running an unmodified deck (``Recorder.file`` and ``lammps-adv run``)
-----------------------------------------------------------------
LAMMPS has no per-command hook, and a deck may loop with ``label``/``jump``, so the deck is
not split into pieces: LAMMPS itself reads a copy of it in which every top-level
``run``/``minimize`` (and box-creating, ``clear`` and ``replicate``) command is wrapped in
three-line hooks::

    variable __adv_hook string B12
    jump /tmp/.../empty.in            # LAMMPS reads an empty file: lmp.file() returns
    label __adv_B12
    run 1000

At a hook ``lmp.file`` returns to Python, which installs the fix, marks a new stage, or
flushes the file, and resumes LAMMPS with a one-line file ``jump COPY __adv_B12`` (LAMMPS
skips to that label). Variables, loops and ``jump SELF`` keep working because LAMMPS still
does all the parsing; ``jump SELF`` refers to the copy, and a ``jump`` to the deck's own file
name is rewritten to ``jump SELF``. Limits: commands inside ``include``d files or inside
``if ... then "run ..."`` are not wrapped (they are still recorded: stages are then detected
from the callback, a new stage when the mode changes or the MD step does not advance by 1),
and no hook is placed between a ``next`` and the following ``jump`` (a hook's ``jump``
would consume the skip that ``next`` arms at the end of a loop).

Errors
------
An error inside the callback (reference failure, lost atoms, unwritable file) cannot be
raised through LAMMPS' C code, so the recorder forces a LAMMPS timeout
(``lammps_force_timeout``): the run or minimization stops at its next step and so does any
later one; at the next hook (right after the command) the recorder flushes and closes the
file (every row recorded so far is kept) and raises ``RecorderError`` with the cause. A
LAMMPS error of the deck itself is reported the same way. (``fix halt`` would do too, but it
makes LAMMPS tally energy and virial at every step: +12 % per step on a 3000-atom glass.)
"""
from __future__ import annotations

import ctypes
import json
import sys
import tempfile
import time as _time
from pathlib import Path

import numpy as np

from lammps_adv import adversarial

HOOK_VAR = "__adv_hook"
OBSERVABLES = adversarial.OBSERVABLES + ("temperature", "evaluation", "stage")
BOX_COMMANDS = ("read_data", "create_box", "read_restart")
RUN_COMMANDS = ("run", "minimize")


class RecorderError(RuntimeError):
    """Recording failed; the message says why (rows recorded so far are kept)."""


# =============================================================================== decks
def _strip_comment(line: str) -> str:
    quote = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if line.startswith(quote, i):
                i += len(quote)
                quote = None
                continue
        elif line.startswith('"""', i):
            quote = '"""'
            i += 3
            continue
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
        i += 1
    return line


def logical_commands(text: str):
    """Split deck text into LAMMPS commands: yields (first_line, last_line, words).

    Joins '&' continuation lines, keeps triple-quoted blocks together, drops comments.
    """
    lines = text.splitlines()
    i, n = 0, len(lines)
    while i < n:
        start = i
        parts = []
        triple = False
        while i < n:
            line = lines[i]
            i += 1
            if line.count('"""') % 2 == 1:
                triple = not triple
            if triple:
                parts.append(line)
                continue
            code = _strip_comment(line).rstrip()
            if code.endswith("&"):
                parts.append(code[:-1])
                continue
            parts.append(code)
            break
        yield start, i - 1, " ".join(parts).split()


def prepare_deck(text: str, deck_path, copy_path, empty_path):
    """Insert the hooks (see the module docstring). Returns (new_text, {hook: (word, cmd)})."""
    lines = text.splitlines()
    deck_path = Path(deck_path).resolve() if deck_path else None
    out, hooks = [], {}
    next_pending = False
    k = 0

    def hook(name):
        return [f"variable {HOOK_VAR} string {name}", f"jump {empty_path}", f"label __adv_{name}"]

    for first, last, words in logical_commands(text):
        block = lines[first:last + 1]
        word = words[0] if words else ""
        cmd = " ".join(words)
        if word == "jump" and len(words) >= 2 and deck_path is not None and words[1] != "SELF":
            try:
                if Path(words[1]).resolve() == deck_path:
                    block = [" ".join(["jump", "SELF"] + words[2:])]
            except OSError:
                pass
        if word == "next":
            next_pending = True
        elif word == "jump":
            next_pending = False
        wrap_before = word in RUN_COMMANDS + ("replicate",) and not next_pending
        wrap_after = word in RUN_COMMANDS + BOX_COMMANDS + ("replicate", "clear") and not next_pending
        if wrap_before:
            k += 1
            hooks[f"B{k}"] = (word, cmd)
            out += hook(f"B{k}")
        out += block
        if wrap_after:
            k += 1
            hooks[f"A{k}"] = (word, cmd)
            out += hook(f"A{k}")
    return "\n".join(out) + "\n", hooks


# =============================================================================== recorder
class Recorder:
    """Records adversarial measures of a LAMMPS instance's runs and minimizations.

    lmp: a ``lammps.lammps`` instance (metal units); reference: a spec string
    (``lammps_adv.references``) or a ``Reference``; out: HDF5 file; every: MD record
    interval in steps (every force evaluation of a minimization is recorded, and the first
    configuration of every run); frames_every: store positions, both force sets and the box
    every K records (0: never); flush_every / flush_seconds: write buffered rows after that
    many rows or seconds; append: continue an existing file; species: element of each atom
    type when the types carry no labels; approx: a name for the driving model (provenance);
    provenance: extra {deck, command_line, variables, ...} for ``/parameters``;
    progress: print a progress line on rank 0 (at most one a second, and one per stage).

    Use as a context manager, or call ``close()``. Drive LAMMPS with ``command``,
    ``commands`` or ``file`` (a whole deck); plain ``lmp.command("run ...")`` is recorded
    too, but its stages are then only told apart by the callback's heuristics.
    """

    def __init__(self, lmp, reference, out="run.h5", every: int = 1, frames_every: int = 0,
                 flush_every: int = 100, flush_seconds: float = 5.0, append: bool = False,
                 species=None, approx: str | None = None, provenance: dict | None = None,
                 progress: bool = False, fix_id: str = "adv_rec", comm=None):
        from lammps_adv.references import Reference, _comm_of, get_reference
        self.lmp = lmp
        self.comm = _comm_of(lmp, comm)
        self.rank = self.comm.Get_rank()
        if int(every) < 1:
            raise RecorderError(f"--every must be >= 1, got {every}")
        if int(frames_every) < 0:
            raise RecorderError(f"--frames-every must be >= 0, got {frames_every}")
        self.every = int(every)
        self.frames_every = int(frames_every)
        self.flush_every = max(1, int(flush_every))
        self.flush_seconds = float(flush_seconds)
        self.species = list(species) if species else None
        self.approx = approx
        self.progress = progress
        self.fix_id = fix_id
        self.out = Path(out)
        self.provenance = dict(provenance or {})
        self.reference = (reference if isinstance(reference, Reference)
                          else get_reference(str(reference), comm=self.comm))
        self.writer = None
        self._closed = False
        self._installed = False
        self._type_elements = None
        self._types = None
        self._symbols = None
        self._stage = -1
        self._kind = None
        self._eval = 0
        self._last_step = None
        self._next_stage = None
        self._pending = None
        self._pe_ptr = None
        self._min_check = None
        self._warned = set()
        self._error = None
        self._last_print = 0.0
        self._last_flush = _time.monotonic()
        self._stage_rows = 0
        self._last = None
        self.timings = {"gather": 0.0, "reference": 0.0, "measures": 0.0, "write": 0.0,
                        "callback": 0.0}   # seconds; callback: everything inside it
        self.n_records = 0
        self.rows_written = 0
        self._order = None
        # the output file is opened at once, so an unwritable path fails before any run
        self._collective(self._open_writer, append)
        stages = self.comm.bcast(self.writer.n_stages if self.rank == 0 else None, root=0)
        self._stage = stages - 1
        if self._box_exists():
            self.attach()

    # ------------------------------------------------------------------ helpers
    def _collective(self, fn, *args, all_ranks: bool = False):
        """Run fn on rank 0 (or on every rank); raise RecorderError on every rank if it
        failed on rank 0. Returns fn's result where it ran."""
        err = result = None
        if all_ranks or self.rank == 0:
            try:
                result = fn(*args)
            except Exception as exc:  # noqa: BLE001 (re-raised on all ranks below)
                err = _message(exc)
        if self.comm.Get_size() > 1:
            err = self.comm.bcast(err, root=0)
        if err is not None:
            raise RecorderError(err)
        return result

    def _open_writer(self, append):
        from lammps_adv.engine import lammps_version
        from lammps_adv.h5md import H5MDWriter
        prov = self.provenance
        attrs = {"reference": self.reference.spec,
                 "reference_description": self.reference.description,
                 "units": "metal", "every": self.every, "frames_every": self.frames_every,
                 "lammps_version": lammps_version(self.lmp),
                 "lammps_adv_version": _version(), "mpi_ranks": self.comm.Get_size(),
                 "created": _time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 "energy_unit": "eV", "force_unit": "eV/A", "length_unit": "A", "time_unit": "ps"}
        for key in ("variables", "seeds"):
            if key in prov:
                attrs[key] = json.dumps(prov[key], sort_keys=True)
        # any other scalar provenance (an experiment's settings) goes in as attributes
        for key, val in prov.items():
            if key not in attrs and isinstance(val, (str, int, float, bool)) and key not in (
                    "deck", "deck_path", "command_line"):
                attrs[key] = val
        texts = {k: prov[k] for k in ("deck", "deck_path", "command_line") if prov.get(k) is not None}
        self.writer = H5MDWriter(self.out, OBSERVABLES, attrs, texts, append=append)

    def _box_exists(self) -> bool:
        return bool(self.lmp.extract_setting("box_exist"))

    def _warn(self, key, msg):
        if key in self._warned:
            return
        self._warned.add(key)
        if self.rank == 0:
            print(f"lammps-adv: warning: {msg}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ install
    def attach(self) -> None:
        """Install the recording fix (the box must exist; idempotent)."""
        lmp = self.lmp
        if self._installed and lmp.has_id("fix", self.fix_id):
            return
        if not self._box_exists():
            raise RecorderError("the recorder needs a simulation box: attach it after "
                                "read_data / create_box / read_restart")
        units = lmp.extract_global("units")
        if units != "metal":
            raise RecorderError(f"the recorder works in metal units (eV, A, ps); the deck "
                                f"uses units {units}")
        from lammps_adv.references import ReferenceError, type_elements
        try:
            self._type_elements, source = type_elements(lmp, self.species, comm=self.comm)
        except ReferenceError as exc:
            raise RecorderError(str(exc)) from None
        self._species_source = source
        if lmp.get_natoms() > 0:
            self._check_reference_species()
        fid = self.fix_id
        lmp.commands_list([
            f"fix {fid} all external pf/callback 1 1",
            f"fix_modify {fid} energy no virial no",
            f"compute {fid}_pe all pe pair bond angle dihedral improper kspace",
            f"fix {fid}_e all ave/time 1 1 {self.every} c_{fid}_pe",
        ])
        lmp.set_fix_external_callback(fid, self._callback)
        self._installed = True

    def detach(self) -> None:
        """Remove the recording fixes (e.g. before ``replicate``)."""
        lmp = self.lmp
        if not self._box_exists():
            self._installed = False
            return
        fid = self.fix_id
        for kind, name in (("fix", f"{fid}_e"), ("fix", fid),
                           ("compute", f"{fid}_pe")):
            if lmp.has_id(kind, name):
                lmp.command(("unfix " if kind == "fix" else "uncompute ") + name)
        self._installed = False
        self._pe_ptr = None

    def _check_reference_species(self):
        """Element list in atom-ID order; set up the reference (clear error on mismatch)."""
        types = self._gather_types()
        if self.rank == 0:
            missing = sorted(set(int(t) for t in types) - set(self._type_elements))
            symbols = None if missing else [self._type_elements[int(t)] for t in types]
        else:
            missing, symbols = None, None
        missing, symbols = self.comm.bcast((missing, symbols), root=0) if self.comm.Get_size() > 1 \
            else (missing, symbols)
        if missing:
            raise RecorderError(f"atom types {missing} have no element")
        from lammps_adv.references import ReferenceError
        try:
            self.reference.setup(symbols)
        except ReferenceError as exc:
            raise RecorderError(f"{exc} (elements from {self._species_source})") from None
        self._types = types
        self._symbols = symbols

    def _gather_types(self):
        lmp = self.lmp
        nlocal = int(lmp.extract_global("nlocal"))
        tag = np.asarray(lmp.numpy.extract_atom("id")[:nlocal], dtype=np.float64)
        typ = np.asarray(lmp.numpy.extract_atom("type")[:nlocal], dtype=np.float64)
        data = self._gatherv(np.column_stack([tag, typ]).reshape(-1), 2)
        if self.rank != 0:
            return None
        data = data.reshape(-1, 2)
        return data[np.argsort(data[:, 0]), 1].astype(np.int64)

    def _gatherv(self, local, width):
        comm = self.comm
        if comm.Get_size() == 1:
            return local
        counts = comm.gather(local.size, root=0)
        if self.rank == 0:
            buf = np.empty(sum(counts))
            comm.Gatherv(local, (buf, counts), root=0)
            return buf
        comm.Gatherv(local, None, root=0)
        return None

    # ------------------------------------------------------------------ callback
    def _callback(self, caller, step, nlocal, tag, x, fext):
        if nlocal:
            fext[:] = 0.0
        if self._error is not None:
            return
        t0 = _time.perf_counter()
        try:
            self._on_force(int(step), int(nlocal), tag, x)
        except Exception as exc:  # noqa: BLE001 (collective by construction, see _on_force)
            self._fail(exc)
        self.timings["callback"] += _time.perf_counter() - t0

    def _fail(self, exc):
        """Stop LAMMPS: the run or minimization ends at its next step (timeout), every later
        one at once, and the recorder raises the error when LAMMPS hands back control."""
        self._error = exc if isinstance(exc, RecorderError) else RecorderError(_message(exc))
        self.lmp.lib.lammps_force_timeout(self.lmp.lmp)

    def _on_force(self, step, nlocal, tag, x):
        lmp = self.lmp
        mode = lmp.lib.lammps_is_running(lmp.lmp)
        kind = "minimize" if mode == 2 else "run"
        if self._pending is not None:
            self._resolve_pending()
        if self._next_stage is not None:
            new, text = True, self._next_stage
        elif (self._kind is None or kind != self._kind
              or (kind == "run" and step != self._last_step + 1)):
            new, text = True, ""
        else:
            new, text = False, None
        if new:
            self._begin_stage(kind, text, step)
        ev = self._eval
        self._eval += 1
        self._last_step = step
        if not (kind == "minimize" or ev == 0 or step % self.every == 0):
            return
        t0 = _time.perf_counter()
        fid = self.fix_id
        if kind == "run":
            if int(lmp.extract_global("eflag_global")) == step:
                e_app = lmp.extract_compute(f"{fid}_pe", 0, 0)
            else:
                e_app = float("nan")
                self._warn("eflag", f"energy not tallied at step {step}: energy_approx is NaN there")
        else:
            e_app = None
            if ev == 0:
                self._min_check = lmp.extract_compute(f"{fid}_pe", 0, 0)
                lmp.lib.lammps_extract_compute.restype = ctypes.POINTER(ctypes.c_double)
                ptr = lmp.lib.lammps_extract_compute(lmp.lmp, b"thermo_pe", 0, 0)
                if not ptr:
                    raise RecorderError("cannot read the minimizer's energy (compute thermo_pe)")
                self._pe_ptr = ptr
        # gather [id, type, x, f] by atom ID onto rank 0
        ftot = lmp.numpy.extract_atom("f")[:nlocal]
        typ = lmp.numpy.extract_atom("type")[:nlocal]
        local = np.empty((nlocal, 8))
        local[:, 0] = tag[:nlocal]
        local[:, 1] = typ
        local[:, 2:5] = x[:nlocal]
        local[:, 5:8] = ftot
        mv2 = 0.0
        if nlocal:
            if lmp.extract_setting("rmass_flag"):
                m = lmp.numpy.extract_atom("rmass")[:nlocal]
            else:
                m = lmp.numpy.extract_atom("mass")[typ]
            vv = lmp.numpy.extract_atom("v")[:nlocal]
            if kind == "run" and ev > 0:
                # at post_force velocity Verlet holds v(t - dt/2); kick to v(t) with F(t)
                half = 0.5 * float(lmp.extract_global("dt")) * float(lmp.extract_global("ftm2v"))
                vv = vv + (half / m)[:, None] * ftot
            mv2 = float(m @ np.einsum("ij,ij->i", vv, vv))
        data = self._gatherv(local.reshape(-1), 8)
        if self.comm.Get_size() > 1:
            mv2 = self.comm.reduce(mv2, root=0)
        boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
        cell = np.array([[boxhi[0] - boxlo[0], 0.0, 0.0],
                         [xy, boxhi[1] - boxlo[1], 0.0],
                         [xz, yz, boxhi[2] - boxlo[2]]])
        dt = float(lmp.extract_global("dt"))
        t_ps = float(lmp.extract_global("atime")) + (step - int(lmp.extract_global("atimestep"))) * dt
        natoms = int(lmp.get_natoms())
        # rank 0 checks the system before the collective reference evaluation
        rec = self._collective(self._unpack, data, step, natoms)
        err = None
        t1 = _time.perf_counter()
        self.timings["gather"] += t1 - t0
        pos_rel = rec["pos"] - np.asarray(boxlo) if rec is not None else None
        try:
            res = self.reference.evaluate(pos_rel, cell)
        except Exception as exc:  # noqa: BLE001
            res, err = None, f"reference {self.reference.spec} failed at step {step}: {_message(exc)}"
        t2 = _time.perf_counter()
        self.timings["reference"] += t2 - t1
        if self.rank == 0 and err is None:
            try:
                rec.update(step=step, time=t_ps, ev=ev, stage=self._stage, cell=cell,
                           e_app=e_app, e_acc=res[0], f_acc=res[1],
                           temperature=self._temperature(mv2, natoms))
                if e_app is None:
                    self._pending = rec
                else:
                    self._finish(rec)
            except Exception as exc:  # noqa: BLE001
                err = _message(exc)
        elif e_app is None and err is None:
            self._pending = True
        if self.comm.Get_size() > 1:
            err = self.comm.bcast(err, root=0)
        if err is not None:
            raise RecorderError(err)

    def _unpack(self, data, step, natoms):
        d = data.reshape(-1, 8)
        tags = d[:, 0]
        # LAMMPS keeps the atom order for many steps: reuse the sorting permutation
        cached = self._order
        if cached is not None and len(cached[0]) == len(tags) and np.array_equal(cached[0], tags):
            order = cached[1]
        else:
            order = np.argsort(tags, kind="stable")
            st = tags[order]
            if len(st) > 1 and np.any(st[1:] == st[:-1]):
                raise RecorderError(f"duplicate atom IDs at step {step}")
            self._order = (tags.copy(), order)
        d = d[order]
        types = d[:, 1].astype(np.int64)
        if self._types is not None and len(types) != len(self._types):
            raise RecorderError(f"atoms lost or added during the recording: {len(self._types)} "
                                f"atoms before, {len(types)} at step {step} (LAMMPS counts {natoms})")
        if self._types is None or not np.array_equal(types, self._types):
            if self.writer is not None and self.writer.started:
                raise RecorderError(f"atom types changed during the recording at step {step}")
            missing = sorted(set(types.tolist()) - set(self._type_elements))
            if missing:
                raise RecorderError(f"atom types {missing} have no element")
            symbols = [self._type_elements[int(t)] for t in types]
            self.reference.check_species(symbols)
            self._types, self._symbols = types, symbols
            self.reference.symbols = symbols
        return {"pos": d[:, 2:5], "f_app": d[:, 5:8]}

    def _temperature(self, mv2, natoms):
        dof = 3 * natoms - 3
        if dof <= 0:
            return 0.0
        return mv2 * float(self.lmp.extract_global("mvv2e")) / (dof * float(self.lmp.extract_global("boltz")))

    def _resolve_pending(self):
        """Energy of the last minimization evaluation (thermo_pe, see module docstring)."""
        pend, self._pending = self._pending, None
        if self._pe_ptr is None:
            return
        energy = float(self._pe_ptr[0])
        if self.rank != 0 or pend is True:
            return
        pend["e_app"] = energy
        if self._min_check is not None and pend["ev"] == 0:
            if abs(self._min_check - energy) > 1e-8 * max(1.0, abs(energy)):
                self._warn("minfix", "the minimizer's energy differs from pair+bonded+kspace "
                           f"({energy} vs {self._min_check} eV): fixes with fix_modify energy "
                           "yes are included in energy_approx of minimizations")
            self._min_check = None
        self._finish(pend)

    def _begin_stage(self, kind, text, step):
        self._stage += 1
        self._kind = kind
        self._eval = 0
        self._next_stage = None
        self._stage_rows = 0
        if self.rank == 0:
            self.writer.add_stage(kind, text or "", step)

    def _finish(self, rec):
        """Rank 0: measures, row, frame, flush, progress for one complete record."""
        t0 = _time.perf_counter()
        m = adversarial.measures(rec["e_app"], rec["e_acc"], rec["f_app"], rec["f_acc"])
        m.update(temperature=rec["temperature"], evaluation=rec["ev"], stage=rec["stage"])
        t1 = _time.perf_counter()
        self.timings["measures"] += t1 - t0
        w = self.writer
        if not w.started:
            self._start_writer()
        row = w.add_row(rec["step"], rec["time"], m)
        if self.frames_every and row % self.frames_every == 0:
            w.add_frame(rec["step"], rec["time"], row, rec["pos"], rec["f_app"], rec["f_acc"], rec["cell"])
        now = _time.monotonic()
        if w.pending >= self.flush_every or now - self._last_flush >= self.flush_seconds:
            w.flush()
            self._last_flush = now
        self.timings["write"] += _time.perf_counter() - t1
        self.n_records += 1
        self._stage_rows += 1
        self._last = (rec["stage"], self._kind, rec["step"], rec["ev"], m, row)
        if self.progress and (now - self._last_print >= 1.0 or rec["ev"] == 0):
            self._last_print = now
            self._print_progress()

    def _print_progress(self):
        if self._last is None:
            return
        stage, kind, step, ev, m, row = self._last
        print(f"[lammps-adv] stage {stage} {kind:<8s} step {step:>9d} eval {ev:>7d}  "
              f"cos {m['cos_adversarial']:+.4f}  dE {m['energy_error']:+.6e} eV  "
              f"F_rmse {m['force_rmse']:.4e}  rows {row + 1}", flush=True)

    def _start_writer(self):
        lmp = self.lmp
        hashes = dict(self.reference.hashes())
        hashes.update(self.provenance.get("file_hashes", {}))
        pair = lmp.extract_global("pair_style") or ""
        ksp = lmp.extract_global("kspace_style") or ""
        approx = self.approx or f"lammps: pair_style {pair}" + (f", kspace_style {ksp}" if ksp else "")
        extra = {"approx": approx, "approx_pair_style": pair, "approx_kspace_style": ksp,
                 "model_hashes": json.dumps(hashes, sort_keys=True),
                 "species_source": self._species_source, "n_atoms": len(self._symbols)}
        g = self.writer.f["parameters"]
        if self.writer.append:
            g = g[sorted((k for k in g if k.startswith("append_")), key=lambda s: int(s[7:]))[-1]]
        for k, v in extra.items():
            g.attrs[k] = v
        self.writer.start(self._symbols, frames=self.frames_every > 0)

    # ------------------------------------------------------------------ stages
    def _before_run(self, cmd: str):
        self._sync_pending()
        if not self._installed or not self.lmp.has_id("fix", self.fix_id):
            self._installed = False
            self.attach()
        self._next_stage = cmd

    def _after_run(self):
        self._sync_pending()
        self._next_stage = None
        self._collective(self._flush_and_report)

    def _flush_and_report(self):
        if self.writer is not None and self.writer.started:
            self.writer.flush()
            self._last_flush = _time.monotonic()
        if self.progress:
            self._print_progress()

    def _sync_pending(self):
        """Resolve a minimization record still waiting for its energy (collective)."""
        if self._pending is None:
            return
        self._collective(self._resolve_pending, all_ranks=True)

    def _hook(self, word, cmd, before):
        if word in RUN_COMMANDS:
            if before:
                self._before_run(cmd)
            else:
                self._after_run()
        elif word == "replicate":
            if before:
                self._sync_pending()
                self.detach()
            else:
                self.attach()
        elif word == "clear":
            self._sync_pending()
            self._installed = False
            self._pe_ptr = None
        elif word in BOX_COMMANDS:
            self.attach()

    # ------------------------------------------------------------------ driving LAMMPS
    def command(self, cmd: str) -> None:
        """Execute one LAMMPS command; run/minimize become recorded stages."""
        words = cmd.split()
        word = words[0] if words else ""
        self._check_open()
        if word in RUN_COMMANDS or word == "replicate":
            self._hook(word, cmd, True)
        self._lammps(lambda: self.lmp.command(cmd), cmd)
        if word in RUN_COMMANDS + BOX_COMMANDS + ("replicate", "clear"):
            self._hook(word, cmd, False)

    def commands(self, cmds) -> None:
        for c in (cmds.splitlines() if isinstance(cmds, str) else cmds):
            if c.strip() and not c.strip().startswith("#"):
                self.command(c)

    def file(self, deck) -> None:
        """Run a whole LAMMPS deck (loops, labels, variables as in ``lmp -in``), recording
        each of its run/minimize commands (see the module docstring for the method)."""
        self._check_open()
        deck = Path(deck)
        text = deck.read_text() if self.rank == 0 else None
        if self.comm.Get_size() > 1:
            text = self.comm.bcast(text, root=0)
        tmp = None
        if self.rank == 0:
            tmp = tempfile.mkdtemp(prefix="lammps-adv-")
        if self.comm.Get_size() > 1:
            tmp = self.comm.bcast(tmp, root=0)
        tmp = Path(tmp)
        copy, empty = tmp / deck.name, tmp / "empty.in"
        new, hooks = prepare_deck(text, deck, copy, empty)
        if self.rank == 0:
            copy.write_text(new)
            empty.write_text("")
            for h in hooks:
                (tmp / f"resume_{h}.in").write_text(f"jump {copy} __adv_{h}\n")
        if self.comm.Get_size() > 1:
            self.comm.Barrier()
        lmp = self.lmp
        try:
            lmp.command(f"variable {HOOK_VAR} string none")
            self._lammps(lambda: lmp.file(str(copy)), f"deck {deck}")
            while True:
                h = lmp.extract_variable(HOOK_VAR)
                if h in (None, "none"):
                    break
                lmp.command(f"variable {HOOK_VAR} string none")
                word, cmd = hooks[h]
                self._hook(word, cmd, h.startswith("B"))
                self._lammps(lambda: lmp.file(str(tmp / f"resume_{h}.in")), cmd)
        finally:
            if self.rank == 0:
                for p in sorted(tmp.iterdir()):
                    p.unlink()
                tmp.rmdir()

    def _lammps(self, fn, what):
        try:
            fn()
        except RecorderError:
            raise
        except Exception as exc:  # a LAMMPS error of the deck (or of the recorder's commands)
            cause = self._error
            self._pending = None
            msg = str(cause) if cause is not None else \
                f"LAMMPS error in {what!r}: {' '.join(str(exc).split())}"
            self.close(raise_errors=False)
            raise RecorderError(f"{msg} ({self.rows_written} rows recorded in {self.out})") from None
        if self._error is not None:   # the recorder stopped LAMMPS (forced timeout)
            err = self._error
            self._pending = None
            self.close(raise_errors=False)
            raise RecorderError(f"{err} ({self.rows_written} rows recorded in {self.out})")

    def _check_open(self):
        if self._closed:
            raise RecorderError("the recorder is closed")

    # ------------------------------------------------------------------ closing
    def flush(self) -> None:
        self._sync_pending()
        self._collective(self._flush_and_report)

    def close(self, raise_errors: bool = True) -> None:
        """Write what is buffered, close the file and the reference (collective)."""
        if self._closed:
            return
        self._closed = True
        err = None
        try:
            if self._error is None:
                self._sync_pending()
        except RecorderError as exc:
            err = exc
        self._pending = None
        if self.rank == 0 and self.writer is not None:
            try:
                self.rows_written = self.writer.n_rows
                self.writer.close()
            except Exception as exc:  # noqa: BLE001
                err = err or RecorderError(_message(exc))
        try:
            if not self.lmp.lib.lammps_is_running(self.lmp.lmp):
                if self._error is not None:
                    self.lmp.command("timer timeout off")     # undo the forced timeout
                if self._installed and self._box_exists():
                    self.detach()
        except Exception:  # noqa: BLE001
            pass
        self.reference.close()
        if self.comm.Get_size() > 1:
            msg, self.rows_written = self.comm.bcast((str(err) if err else None, self.rows_written), root=0)
            err = RecorderError(msg) if msg else None
        if err is not None and raise_errors:
            raise err

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(raise_errors=exc_type is None)


def _message(exc) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _version() -> str:
    from lammps_adv import __version__
    return __version__


def file_hashes(text: str, variables: dict | None = None) -> dict:
    """sha256 of every existing file a deck names (tokens and -var values), for provenance."""
    from lammps_adv.references import file_sha256
    cands = set()
    for _, _, words in logical_commands(text):
        cands.update(w for w in words[1:] if "$" not in w)
    for vals in (variables or {}).values():
        cands.update(str(v) for v in (vals if isinstance(vals, (list, tuple)) else [vals]))
    out = {}
    for c in sorted(cands):
        p = Path(c)
        try:
            if len(c) < 4096 and p.is_file() and p.stat().st_size < (1 << 30):
                out[str(p)] = file_sha256(p)
        except OSError:
            continue
    return out


def run_deck(deck, reference, out="run.h5", every: int = 1, frames_every: int = 0,
             variables: dict | None = None, species=None, append: bool = False,
             approx: str | None = None, flush_every: int = 100, flush_seconds: float = 5.0,
             progress: bool = True, screen: bool = False, log: str | None = None,
             command_line: str | None = None, comm=None) -> int:
    """Run an unmodified LAMMPS deck with recording (what ``lammps-adv run`` does).

    Returns the number of records written (on rank 0; 0 elsewhere).
    """
    from lammps_adv.engine import open_lammps
    deck = Path(deck)
    if not deck.is_file():
        raise RecorderError(f"deck not found: {deck}")
    variables = dict(variables or {})
    args = []
    for name, vals in variables.items():
        vals = vals if isinstance(vals, (list, tuple)) else [vals]
        args += ["-var", name] + [str(v) for v in vals]
    text = deck.read_text()
    prov = {"deck": text, "deck_path": str(deck.resolve()), "command_line": command_line,
            "variables": variables,
            "seeds": {k: v for k, v in variables.items() if "seed" in k.lower()},
            "file_hashes": file_hashes(text, variables)}
    from lammps_adv.references import get_reference
    ref = get_reference(str(reference), comm=comm)
    lmp = open_lammps(comm=comm, screen=screen, log=log, args=args)
    try:
        rec = Recorder(lmp, ref, out=out, every=every, frames_every=frames_every,
                       flush_every=flush_every, flush_seconds=flush_seconds, append=append,
                       species=species, approx=approx, provenance=prov, progress=progress,
                       comm=comm)
        with rec:
            rec.file(deck)
        n = rec.n_records
    finally:
        ref.close()
        lmp.close()
    return n
