"""Every HDF5 file lammps-adv writes: its writers and readers, in one place.

Three kinds of files, all in metal units (eV, Angstrom, ps):

* recordings of runs (``lammps-adv run``, ``relax``): H5MD 1.1 based, written by
  ``H5MDWriter``, read by ``read_observables``, ``read_frames``, ``read_stages``,
  ``read_parameters``;
* probe files (``lammps-adv probe``): ``write_probe`` / ``read_probe``;
* dataset files (``lammps-adv dataset``): ``write_dataset`` / ``read_dataset``.

Other modules never open these files with h5py themselves. Names, units and layout
constants are lammps_adv.io.schema's; the writer's lock, disk reservation, atomic
replacement and superblock repair are lammps_adv.io.files'.

Recording layout (H5MD 1.1 based, plus ``/stages``; docs/recorder.md has the table)::

  /h5md                                    attrs version [1, 1]; groups author, creator
  /parameters                              attrs (approx, reference, units, every, ...),
                                           string datasets (deck, command_line, ...);
                                           /parameters/append_<k> for each --append session
  /observables/<name>/{step,time,value}    [T] int64 / float64 ps / float64 (unit attribute
                                           on value); one row per record, shared by all
                                           observables (step, time: hard links); ``dt``
                                           (time between frames) is MDAnalysis' time step
  /particles/all/species                   [N] element symbols (atom-ID order)
  /particles/all/{position,velocity,force,force_approx,force_reference}/{step,time,value [K,N,3]}
  /particles/all/box/edges/{step,time,value [K,3,3]}   rows = cell vectors a, b, c
  /particles/all/record/{step,time,value [K]}          observable row of each frame
  /stages/{kind,command,first_step,first_row} [S]      one row per run/minimize command

Units are H5MD ``unit`` attributes on each ``value`` dataset and on the shared ``time``:
time "ps", position and box edges "Angstrom", velocity "Angstrom ps-1" (at time t in MD;
what LAMMPS holds in a minimization), force_approx / force_reference "eV Angstrom-1",
energies "eV". ``particles/all/force`` holds the driving force (the same
numbers as force_approx) in "kJ mol-1 Angstrom-1", a force unit MDAnalysis' H5MD reader
knows (it refuses "eV Angstrom-1"), so that external H5MD readers find positions, forces,
box and time.

Crash safety of recordings: the writer holds an exclusive lock (a sidecar file
``.<name>.lock`` next to the output, ``flock``ed, holding pid, host, start time and command
line) for its whole life, and does not keep the HDF5 file open: the layout is made when the
writer is created (in a temporary file renamed into place), and every later write
(``flush()``, parameters, the per-particle layout) opens the file with SWMR-write access in
one call (``files.open_swmr_write``; a kill during it leaves a file ``files.recover()`` can
clear), writes values first and ``step``/``time`` last, and closes it. Between flushes the
file is a plain closed HDF5 file; a SIGKILL loses at most the rows since the last flush.
Live readers: an SWMR-read open (``h5py.File(path, "r", libver="latest", swmr=True)``)
succeeds at every moment of a run, since the file is either closed or open for SWMR
writing; a plain open fails while a write is under way (the readers here then open SWMR).
Before a flush the writer reserves
(``posix_fallocate``) more disk space than the flush can use, so a full disk or a file size
limit fails before HDF5 writes a byte: one ``FileFormatError`` and every earlier row intact.
Value datasets are created with fill value NaN (record: -1, step: -1) and Fletcher-32
checksums, so a chunk that never reached the disk reads as NaN and a damaged chunk is an
error, never silent zeros or garbage.

Files of older versions of the writer (kept open in SWMR mode, so marked "open for write"
after a crash) are read through a SWMR-read open; ``files.recover(path)`` clears the marks
for good (like HDF5's ``h5clear -s``).
"""
from __future__ import annotations

import datetime
import functools
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from lammps_adv import __version__
from lammps_adv.core.alignment import from_attrs as alignment_from_attrs
from lammps_adv.core.errors import FileFormatError, one_line
from lammps_adv.io.files import (WriterLock, atomic_write_h5, error_reason, lock_holder,
                                 open_reserved, recover, reserve_space)
from lammps_adv.io.schema import (COMMAND_LEN, CREATOR, DATASET_FORMAT, DATASET_LAYOUT,
                                  DATASET_VERSION, ENERGY_UNIT, FRAME_DATASETS, H5MD_VERSION,
                                  KJ_PER_MOL_PER_EV, MDA_FORCE_UNIT, MITIGATION_UNITS,
                                  OBSERVABLE_UNITS, PROBE_STRING_ARRAYS, PROBE_UNITS,
                                  STAGE_DTYPES, TIME_UNIT, VELOCITY_UNIT)

H5MDError = FileFormatError         # the old name of the error, kept for old imports

OBS_CHUNK = 4096           # rows per chunk of the observables
FRAME_META_CHUNK = 1024    # frames per chunk of step/time/record
BOX_CHUNK = 16
STAGE_CHUNKS = {"kind": 256, "command": 64, "first_step": 256, "first_row": 256}
MODES = ("new", "overwrite", "append")


def _h5py():
    import h5py
    return h5py


def _one_line(exc) -> str:
    return one_line(exc, limit=240)


def _decode(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.dtype.kind in "SO":
        return [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _attrs(obj) -> dict:
    return {k: _decode(v) for k, v in obj.attrs.items()}


# ----------------------------------------------------------------------------- opening
def _open_read(path):
    """h5py.File of one file, read-only, without changing it: plainly, or with a SWMR-read
    open when a writer holds it (or an old writer crashed in it); a file an old writer left
    marked but not in SWMR mode is recovered first when no writer holds it."""
    h5py = _h5py()
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    # HDF5's default file locking, as a user's own h5py.File in the same process (a
    # mismatch is an error there); the writer takes no HDF5 lock (its lock is the sidecar
    # file), so readers never wait for it
    try:
        return h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001
        err = exc
    if "already open for" in str(err):
        try:
            return h5py.File(path, "r", libver="latest", swmr=True)
        except Exception:  # noqa: BLE001
            pass
        if lock_holder(path) is None:
            try:
                recover(path)
                return h5py.File(path, "r")
            except Exception as exc:  # noqa: BLE001
                err = exc
    raise FileFormatError(f"{path}: not a readable HDF5 file ({_one_line(err)})") from None


def open_h5(path, mode: str = "r"):
    """h5py.File(path, mode) of a lammps-adv file; read-only opens go through the same path
    as the readers (SWMR read for a file held by a writer), write opens clear a crashed
    writer's marks first. For tests and tools; the package itself uses the functions below."""
    if mode == "r":
        return _open_read(path)
    h5py = _h5py()
    try:
        return h5py.File(path, mode, libver="latest")
    except OSError as exc:
        if "already open for" not in str(exc):
            raise
    recover(path)
    return h5py.File(path, mode, libver="latest")


def _check_ours(f, path) -> None:
    creator = f.get("h5md/creator")
    name = creator.attrs.get("name") if creator is not None else None
    if _decode(name) != CREATOR:
        raise FileFormatError(f"{path}: not a lammps-adv file (no /h5md/creator named {CREATOR})")


class _ReadFailure(FileFormatError):
    """HDF5 could not read something of an open file, or its datasets disagree: damage, or,
    while a writer is at work, a chunk it was rewriting (Fletcher-32 catches the torn read)
    or extents it has not all flushed yet (HDF5 flushes object headers in its own order)."""


LIVE_RETRY_S, LIVE_RETRY_MAX_S = 0.02, 2.0


def while_written(path, read, failures=(OSError,)):
    """``read()``, repeated for up to LIVE_RETRY_MAX_S when it fails with ``failures`` while
    a live writer holds ``path`` (``files.lock_holder``): a file being written can show a
    chunk in the middle of its rewrite or extents not all flushed. Any other failure, or one
    with no writer, is raised at once."""
    give_up = time.monotonic() + LIVE_RETRY_MAX_S
    while True:
        try:
            return read()
        except failures:
            if time.monotonic() > give_up or lock_holder(path) is None:
                raise
            time.sleep(LIVE_RETRY_S)


def _live(read):
    """A reader of this module that also works on a file being written (``while_written``)."""
    @functools.wraps(read)
    def reader(path, *args, **kwargs):
        return while_written(path, lambda: read(path, *args, **kwargs), (_ReadFailure,))
    return reader


@contextmanager
def _reading(path, ours: bool = True):
    """Open for reading; any failure inside (damaged metadata or chunk, missing dataset)
    becomes one FileFormatError naming the file."""
    path = Path(path)
    f = _open_read(path)
    try:
        if ours:
            _check_ours(f, path)
        yield f
    except FileFormatError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _ReadFailure(f"{path}: cannot read it ({_one_line(exc)})") from None
    finally:
        try:
            f.close()
        except Exception:  # noqa: BLE001
            pass


def write_header(f) -> None:
    """The /h5md group of every lammps-adv file: H5MD version, author, creator."""
    h5 = f.create_group("h5md")
    h5.attrs["version"] = np.array(H5MD_VERSION, dtype=np.int32)
    h5.create_group("author").attrs["name"] = "lammps-adv user"
    cr = h5.create_group("creator")
    cr.attrs["name"] = CREATOR
    cr.attrs["version"] = __version__


def _write_params(g, attrs, texts) -> None:
    for key, val in (attrs or {}).items():
        if val is None:
            continue
        g.attrs[key] = val
    for key, val in (texts or {}).items():
        if key in g:
            del g[key]
        # fixed-length UTF-8 bytes (no global heap: a damaged file cannot make reading
        # it slow)
        data = str(val).encode("utf-8")
        n = max(1, len(data))
        g.create_dataset(key, data=np.array(data, dtype=f"S{n}"))


# ----------------------------------------------------------------------------- recordings
def _chunked(g, name, shape, chunks, dtype, fill, unit=None):
    d = g.create_dataset(name, shape=(0,) + tuple(shape), maxshape=(None,) + tuple(shape),
                         dtype=dtype, chunks=chunks, fillvalue=fill, fletcher32=True)
    if unit:
        d.attrs["unit"] = unit
    return d


def _new_chunks(n0: int, k: int, rows_per_chunk: int) -> int:
    """Chunks a write of rows n0 .. n0+k-1 touches."""
    if k <= 0:
        return 0
    return (n0 + k - 1) // rows_per_chunk - n0 // rows_per_chunk + 1


class H5MDWriter:
    """Rank-0 writer of one recorded run (see the module docstring for layout and safety).

    mode: "new" (refuse an existing file), "overwrite" (replace it) or "append" (continue
    it; a missing file is created). The old keyword ``append=True`` means mode "append".
    Rows and frames are buffered by ``add_row`` / ``add_frame`` and written by ``flush()``.
    A failed write raises one FileFormatError and leaves the writer broken: later flushes
    raise the same error, ``close()`` only releases the lock.
    """

    def __init__(self, path, observables, attrs: dict | None = None, texts: dict | None = None,
                 mode: str = "new", append: bool | None = None):
        if isinstance(mode, bool):            # old positional ``append``
            append, mode = mode, "new"
        if append:
            mode = "append"
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.path = Path(path)
        self.observables = list(observables)
        self.mode = mode
        self.started = False
        self.frames = False
        self.broken: FileFormatError | None = None
        self.append = False
        self._closed = False
        self._rows = []          # (step, time, [values...])
        self._frames = []        # (step, time, row, pos, fa, fr, box)
        self._stages = []        # (kind, command, first_step, first_row)
        self._written_rows = self._written_frames = self._written_stages = 0
        self._natoms = 0
        self._param_group = "parameters"
        self._lock = None
        if self.path.is_dir():
            raise FileFormatError(f"cannot write output file {self.path}: it is a directory")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FileFormatError(f"cannot write output file {self.path}: "
                                  f"{error_reason(exc)}") from None
        self._lock = WriterLock(self.path)        # before anything of the file is touched
        try:
            exists = self.path.exists()
            if mode == "new" and exists:
                raise FileFormatError(f"{self.path} already exists: pass --overwrite to "
                                      "replace it or --append to continue it")
            self.append = mode == "append" and exists
            if self.append:
                self._open_existing(attrs or {}, texts or {})
            else:
                atomic_write_h5(self.path, lambda f: self._create(f, attrs or {}, texts or {}))
        except BaseException:
            self._lock.release()
            self._closed = True
            raise

    # ---------------------------------------------------------------- layout
    def _create(self, f, attrs, texts):
        write_header(f)
        _write_params(f.create_group("parameters"), attrs, texts)
        obs = f.create_group("observables")
        step = time = None
        for name in self.observables:
            g = obs.create_group(name)
            if step is None:
                step = _chunked(g, "step", (), (OBS_CHUNK,), "i8", -1)
                time = _chunked(g, "time", (), (OBS_CHUNK,), "f8", np.nan, TIME_UNIT)
            else:
                g["step"] = step
                g["time"] = time
            _chunked(g, "value", (), (OBS_CHUNK,), "f8", np.nan, OBSERVABLE_UNITS.get(name))
        st = f.create_group("stages")
        for name, dt in STAGE_DTYPES.items():
            _chunked(st, name, (), (STAGE_CHUNKS[name],), dt, -1 if dt == "i8" else b"")

    def _open_existing(self, attrs, texts):
        try:                # we hold the lock: marks in the file are a crashed writer's
            size = reserve_space(self.path, 1 << 20)
            try:
                f = open_reserved(self.path, size)
            except OSError as exc:
                if "already open for" not in str(exc):
                    raise
                recover(self.path)
                size = reserve_space(self.path, 1 << 20)
                f = open_reserved(self.path, size)
        except (OSError, ValueError) as exc:
            raise FileFormatError(f"cannot append to {self.path}: {_one_line(exc)}") from None
        try:
            if "h5md" not in f or "observables" not in f:
                raise FileFormatError(f"{self.path} is not a lammps-adv recording (no /h5md, "
                                      "/observables): cannot --append to it")
            self._add_missing_observables(f["observables"])
            before, now = (alignment_from_attrs(a) for a in (f["parameters"].attrs, attrs))
            if not before.same_shifts(now):     # one file, one energy zero
                raise FileFormatError(f"{self.path}: recorded with alignment {before.describe()}; "
                                      f"--append needs the same, not {now.describe()}")
            for name in self.observables:       # files of older versions had no units
                unit = OBSERVABLE_UNITS.get(name)
                if unit and "unit" not in f["observables"][name]["value"].attrs:
                    f["observables"][name]["value"].attrs["unit"] = unit
            k = 1
            while f"append_{k}" in f["parameters"]:
                k += 1
            self._param_group = f"parameters/append_{k}"
            _write_params(f["parameters"].create_group(f"append_{k}"), attrs, texts)
            # rows a kill during a flush left without their step are written again
            self._written_rows = _visible(f["observables"][self.observables[0]]["step"][()])
            self._written_stages = int(f["stages/kind"].shape[0])
            part = f.get("particles/all")
            if part is not None and "position" in part:
                self._written_frames = _visible(part["position/step"][()])
        except FileFormatError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise FileFormatError(f"cannot append to {self.path}: {_one_line(exc)}") from None
        finally:
            f.close()

    def _add_missing_observables(self, obs):
        """Observables a file of an older version lacks (e.g. ``dt``): created with NaN for
        its rows so far, sharing its step and time."""
        present = [n for n in self.observables if n in obs]
        if not present:
            raise FileFormatError(f"{self.path}: none of the observables of a recording; "
                                  "cannot --append")
        first = obs[present[0]]
        rows = first["value"].shape[0]
        for name in self.observables:
            if name not in obs:
                g = obs.create_group(name)
                g["step"], g["time"] = first["step"], first["time"]
                d = _chunked(g, "value", (), (OBS_CHUNK,), "f8", np.nan, OBSERVABLE_UNITS.get(name))
                d.resize((rows,))

    # ---------------------------------------------------------------- parameters
    def set_parameters(self, values: dict) -> None:
        """Write attributes onto this session's parameters group (``/parameters``, or
        ``/parameters/append_<k>`` when appending); None values are skipped."""
        self._modify(lambda f: _write_params(f[self._param_group], dict(values), {}))

    def _modify(self, fn, reserve: int = 1 << 20) -> None:
        """Reserve disk space, open the file, apply fn, close: any failure is one
        FileFormatError and leaves the writer broken (see ``_fail``)."""
        self._check_usable()
        size = self._reserve(reserve)
        try:
            f = open_reserved(self.path, size)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
        try:
            fn(f)
        except FileFormatError:
            self._close_quietly(f)
            raise
        except Exception as exc:  # noqa: BLE001
            self._close_quietly(f)
            self._fail(exc)
        try:
            f.close()
        except Exception as exc:  # noqa: BLE001
            self._close_quietly(f)
            self._fail(exc)

    # ---------------------------------------------------------------- counts
    @property
    def n_rows(self) -> int:
        return self._written_rows + len(self._rows)

    @property
    def rows_flushed(self) -> int:
        """Rows on disk (what a reader sees), also after a failed write."""
        return self._written_rows

    @property
    def n_frames(self) -> int:
        return self._written_frames + len(self._frames)

    @property
    def n_stages(self) -> int:
        return self._written_stages + len(self._stages)

    @property
    def pending(self) -> int:
        return len(self._rows) + len(self._frames)

    # ---------------------------------------------------------------- start
    def start(self, species, frames: bool) -> None:
        """Create the per-particle datasets (N = len(species)); with ``frames`` also the
        frame groups. On --append the atoms must be the same as in the file."""
        species = [str(s) for s in species]
        n = len(species)

        def make(f):
            part = f.require_group("particles").require_group("all")
            if "species" in part:
                old = [_decode(s) for s in part["species"][()]]
                if old != species:
                    raise FileFormatError(
                        f"{self.path} holds a system of {len(old)} atoms ({_summary(old)}); "
                        f"this run has {n} ({_summary(species)}): cannot --append")
            else:
                part.create_dataset("species", data=np.array(species, dtype="S3"))
            if frames and "position" not in part:
                shared = None
                for name, kind, unit in FRAME_DATASETS:
                    g = part.require_group(name)
                    if shared is None:
                        shared = (_chunked(g, "step", (), (FRAME_META_CHUNK,), "i8", -1),
                                  _chunked(g, "time", (), (FRAME_META_CHUNK,), "f8", np.nan,
                                           TIME_UNIT))
                    else:
                        g["step"], g["time"] = shared
                    if kind == "atoms":
                        _chunked(g, "value", (n, 3), (1, n, 3), "f8", np.nan, unit)
                    elif kind == "box":
                        _chunked(g, "value", (3, 3), (BOX_CHUNK, 3, 3), "f8", np.nan, unit)
                    else:
                        _chunked(g, "value", (), (FRAME_META_CHUNK,), "i8", -1)
                box = part["box"]
                box.attrs["dimension"] = 3
                box.attrs["boundary"] = np.array([b"periodic"] * 3)
            elif "position" in part and "force" not in part:
                # a file of an older version: add the driving force in MDAnalysis' units
                g = part.create_group("force")
                g["step"], g["time"] = part["position/step"], part["position/time"]
                fa = part["force_approx/value"]
                d = g.create_dataset("value", data=fa[()] * KJ_PER_MOL_PER_EV,
                                     maxshape=(None, n, 3), chunks=(1, n, 3),
                                     fillvalue=np.nan, fletcher32=True)
                d.attrs["unit"] = MDA_FORCE_UNIT
            if "position" in part and "velocity" not in part:
                # a file of an older version: velocities unknown (NaN) in its frames so far
                g = part.create_group("velocity")
                g["step"], g["time"] = part["position/step"], part["position/time"]
                k = part["position/value"].shape[0]
                d = g.create_dataset("value", shape=(k, n, 3), maxshape=(None, n, 3),
                                     chunks=(1, n, 3), dtype="f8", fillvalue=np.nan,
                                     fletcher32=True)
                d.attrs["unit"] = VELOCITY_UNIT
            self.frames = "position" in part

        self._modify(make, reserve=(1 << 20) + 64 * n + 2 * self._written_frames * n * 24)
        self._natoms = n
        self.started = True

    # ---------------------------------------------------------------- data
    def add_row(self, step: int, time: float, values: dict) -> int:
        """Buffer one row; returns its row index in the file."""
        row = self.n_rows
        self._rows.append((int(step), float(time), [float(values[n]) for n in self.observables]))
        return row

    def add_frame(self, step, time, row, positions, f_approx, f_reference, cell,
                  velocities=None) -> None:
        """One frame (A, eV/A, A ps-1; velocities None: unknown, stored as NaN)."""
        if not self.frames:
            raise FileFormatError(f"{self.path}: frames were not enabled when the file was started")
        positions = np.array(positions, dtype=np.float64)
        velocities = np.full_like(positions, np.nan) if velocities is None \
            else np.array(velocities, dtype=np.float64)
        self._frames.append((int(step), float(time), int(row), positions,
                             np.array(f_approx, dtype=np.float64),
                             np.array(f_reference, dtype=np.float64),
                             np.array(cell, dtype=np.float64), velocities))

    def add_stage(self, kind: str, command: str, first_step: int) -> int:
        index = self.n_stages
        cmd = command.encode("utf-8")[:COMMAND_LEN]
        self._stages.append((kind.encode()[:16], cmd, int(first_step), self.n_rows))
        return index

    # ---------------------------------------------------------------- flushing
    def _check_usable(self):
        if self.broken is not None:
            raise self.broken
        if self._closed:
            raise FileFormatError(f"{self.path}: the writer is closed")

    def _flush_bytes(self) -> int:
        """More bytes than the buffered rows, frames and stages can take in the file:
        every chunk they touch (+ checksum), twice, plus room for metadata."""
        total, chunks = 0, 0

        def add(n0, k, rows_per_chunk, row_bytes, copies=1):
            nonlocal total, chunks
            c = _new_chunks(n0, k, rows_per_chunk) * copies
            total += c * (rows_per_chunk * row_bytes + 4)
            chunks += c

        add(self._written_rows, len(self._rows), OBS_CHUNK, 8, len(self.observables) + 2)
        for name, dt in STAGE_DTYPES.items():
            add(self._written_stages, len(self._stages), STAGE_CHUNKS[name], np.dtype(dt).itemsize)
        if self._frames:
            natoms = len(self._frames[0][3])
            n0, k = self._written_frames, len(self._frames)
            add(n0, k, 1, natoms * 24, 4)
            add(n0, k, BOX_CHUNK, 72)
            add(n0, k, FRAME_META_CHUNK, 8, 3)
        return 2 * total + (256 << 10) + 4096 * chunks

    def _reserve(self, nbytes: int) -> int:
        try:
            return reserve_space(self.path, nbytes)
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc):
        """Mark the writer broken and raise one FileFormatError (one line)."""
        frames = f" and {self._written_frames} frames" if self.frames else ""
        self.broken = FileFormatError(
            f"cannot write {self.path}: {error_reason(exc)}; the {self._written_rows} rows{frames} "
            "flushed before are intact")
        self._rows, self._frames, self._stages = [], [], []
        raise self.broken from None

    def _close_quietly(self, f):
        """Close an h5py file after a failed write: no message on stderr, and the
        'open for write' marks it may leave are cleared."""
        hook = sys.unraisablehook
        sys.unraisablehook = lambda *a: None
        try:
            f.close()
        except Exception:  # noqa: BLE001
            pass
        finally:
            sys.unraisablehook = hook
        try:
            recover(self.path)
        except Exception:  # noqa: BLE001
            pass

    def flush(self) -> None:
        """Write what is buffered: open the file, SWMR on, values, then step/time, close."""
        self._check_usable()
        if not (self._rows or self._frames or self._stages):
            return

        def write(f):
            self._write(f)
            f.flush()
        self._modify(write, self._flush_bytes())
        self._written_rows += len(self._rows)
        self._written_frames += len(self._frames)
        self._written_stages += len(self._stages)
        self._rows, self._frames, self._stages = [], [], []

    @staticmethod
    def _put(d, n0, data):
        d.resize((n0 + len(data),) + d.shape[1:])
        d[n0:] = data

    def _write(self, f):
        put = self._put
        if self._stages:
            st, n0 = f["stages"], self._written_stages
            for j, name in ((1, "command"), (2, "first_step"), (3, "first_row"), (0, "kind")):
                put(st[name], n0, np.array([s[j] for s in self._stages], dtype=st[name].dtype))
        obs = f["observables"]
        first = obs[self.observables[0]]
        part = f["particles/all"] if self._frames else None
        # values first, step and time last: a row or frame exists once its step is written
        if self._rows:
            vals = np.array([r[2] for r in self._rows], dtype=np.float64)
            for j, name in enumerate(self.observables):
                put(obs[name]["value"], self._written_rows, vals[:, j])
        if self._frames:
            n0 = self._written_frames
            fa = np.array([fr[4] for fr in self._frames])
            put(part["position/value"], n0, np.array([fr[3] for fr in self._frames]))
            put(part["velocity/value"], n0, np.array([fr[7] for fr in self._frames]))
            put(part["force_approx/value"], n0, fa)
            put(part["force/value"], n0, fa * KJ_PER_MOL_PER_EV)
            put(part["force_reference/value"], n0, np.array([fr[5] for fr in self._frames]))
            put(part["box/edges/value"], n0, np.array([fr[6] for fr in self._frames]))
            put(part["record/value"], n0, np.array([fr[2] for fr in self._frames], dtype=np.int64))
        if self._rows:
            put(first["time"], self._written_rows, np.array([r[1] for r in self._rows]))
            put(first["step"], self._written_rows, np.array([r[0] for r in self._rows], dtype=np.int64))
        if self._frames:
            put(part["position/time"], n0, np.array([fr[1] for fr in self._frames]))
            put(part["position/step"], n0, np.array([fr[0] for fr in self._frames], dtype=np.int64))

    def close(self) -> None:
        """Flush (unless broken), then release the lock and remove the lock file."""
        if self._closed:
            return
        try:
            if self.broken is None:
                self.flush()
        finally:
            self._closed = True
            if self._lock is not None:
                self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            try:
                self.close()
            except Exception:  # noqa: BLE001 (the first error wins)
                pass


def _summary(species) -> str:
    from collections import Counter
    return " ".join(f"{s}{c}" for s, c in sorted(Counter(species).items()))


# ----------------------------------------------------------------------------- reading
def _visible(step) -> int:
    """Rows a reader may use: len(step), less a tail that never reached the disk (step -1)."""
    step = np.asarray(step)
    bad = np.nonzero(step < 0)[0]
    return int(bad[0]) if len(bad) else len(step)


@_live
def read_parameters(path, texts: bool = True) -> dict:
    """/parameters of any lammps-adv file (recording or probe): attributes, and with
    ``texts`` the string datasets (deck, command_line, ...) by name and the
    ``append_<k>`` sessions as nested dicts."""
    def group(g):
        out = _attrs(g)
        if not texts:
            return out
        for key, item in g.items():
            if isinstance(item, _h5py().Group):
                out[key] = group(item)
            else:
                out[key] = _decode(item[()])
        return out

    with _reading(path) as f:
        return group(f["parameters"]) if "parameters" in f else {}


@_live
def read_observables(path) -> dict:
    """{name: value array, 'step': ..., 'time': ...} of a recording, ``len(step)`` rows."""
    path = Path(path)
    with _reading(path) as f:
        if "observables" not in f:
            raise FileFormatError(f"{path}: not a recording (no /observables)")
        obs = f["observables"]
        names = list(obs)
        if not names:
            raise FileFormatError(f"{path}: no observables")
        step = obs[names[0]]["step"][()]
        n = _visible(step)
        out = {"step": step[:n], "time": obs[names[0]]["time"][:n]}
        for name in names:
            v = obs[name]["value"]
            if v.shape[0] < n:      # damaged, or a writer's extents not all flushed yet
                raise _ReadFailure(f"{path}: observable {name} has {v.shape[0]} rows, "
                                   f"step has {n}")
            out[name] = v[:n]
    return out


@_live
def read_stages(path) -> dict:
    """{'kind': [str], 'command': [str], 'first_step': int array, 'first_row': int array}."""
    with _reading(path) as f:
        st = f.get("stages")
        if st is None or "kind" not in st:
            return {"kind": [], "command": [], "first_step": np.zeros(0, np.int64),
                    "first_row": np.zeros(0, np.int64)}
        kind = [_decode(k) for k in st["kind"][()]]
        n = len(kind)
        return {"kind": kind, "command": [_decode(c) for c in st["command"][:n]],
                "first_step": st["first_step"][:n], "first_row": st["first_row"][:n]}


@_live
def read_frames(path) -> dict:
    """Frames of a recording: 'position', 'force_approx', 'force_reference' [K, N, 3]
    (A, eV/A), 'velocity' [K, N, 3] (A/ps; NaN where unknown; files before 2026-12 have
    none), 'box' [K, 3, 3] (A, rows a, b, c), 'record' [K] (observables row), 'step',
    'time' [K], 'species' [N]; ``len(step)`` frames."""
    path = Path(path)
    with _reading(path) as f:
        part = f.get("particles/all")
        if part is None or "position" not in part:
            raise FileFormatError(f"{path}: no frames (recorded with --frames-every 0)")
        step = part["position/step"][()]
        n = _visible(step)
        out = {"step": step[:n], "time": part["position/time"][:n],
               "species": [_decode(s) for s in part["species"][()]]}
        names = [("position", "position"), ("force_approx", "force_approx"),
                 ("force_reference", "force_reference"), ("box", "box/edges"),
                 ("record", "record")] + [("velocity", "velocity")] * ("velocity" in part)
        for key, name in names:
            v = part[name]["value"]
            if v.shape[0] < n:      # damaged, or a writer's extents not all flushed yet
                raise _ReadFailure(f"{path}: {name} has {v.shape[0]} frames, step has {n}")
            out[key] = v[:n]
    return out


# ----------------------------------------------------------------------------- probe files
def write_probe(path, parameters: dict, epsilon, natoms, source, arrays: dict) -> Path:
    """A probe file (lammps_adv.experiments.probe): /h5md, /parameters (attrs), /probe:

        epsilon                       float64 [E]        A^2 (per atom if distortion per-atom)
        natoms                        int64   [C]
        source                        bytes   [C]        where configuration c came from
        independent_unit              bytes   [C]        the melt-quenched glass (or crystal,
                                                         trajectory) it descends from: what
                                                         the report's intervals resample
        temperature                   float64 [C]        K of the MD run it came from (NaN:
                                                         unknown)
        cos_adversarial               float64 [C]        cos(theta) at R0 (aligned energies)
                                                         = energy_error_sign * cos_force_error
        abs_cos_adversarial           float64 [C]        |cos(theta)| (= |cos_force_error|
                                                         unless dE = 0; no energy zero in it)
        energy_error_sign             float64 [C]        sign of E_acc - E_app,aligned (+1/-1/0)
        cos_force_error               float64 [C]        cos(F_app - F_acc, F_app) at R0
        force_error_ratio             float64 [C]        |F_app - F_acc| / |F_app| (3N vectors;
                                                         0 if both vanish, inf if only F_app)
        force_error_norm              float64 [C]        |F_app - F_acc| over the 3N vector (eV/A)
        random_abs_cos_expected       float64 [C]        sqrt(2 / (pi 3N)): |cos| of a direction
                                                         with no information about F_app
        random_abs_cos_measured       float64 [C]        mean over the R random directions of
                                                         |cos(direction, F_app)| (NaN: R = 0)
        energy_error                  float64 [C]        E_acc - E_app,aligned at R0 (eV)
        energy_reference              float64 [C]        E_acc at R0 (eV)
        energy_approx_raw             float64 [C]        E_app at R0 before alignment (eV)
        alignment_offset              float64 [C]        sum_s n_s shift_s added to E_app (eV)
        error_adversarial             float64 [C, E]     E_acc - E_app,aligned (eV) after the
                                                         ascent along A
        max_displacement_adversarial  float64 [C, E]     largest |dr_i| of that configuration (A)
        min_distance_adversarial      float64 [C, E]     its smallest interatomic distance (A;
                                                         inf: none within the flag range, the
                                                         largest closest_pair_threshold)
        closest_pair_adversarial      float64 [C, E, P]  its closest pair of each species pair
                                                         (A; inf: none within that range)
        flagged_adversarial           bool    [C, E]     a pair closer than its threshold, or
                                                         |error| > flag_error_eV_per_atom per
                                                         atom: kept out of the report's means
        error_random, max_displacement_random, min_distance_random, flagged_random
                                      [C, R, E]          the same along R random directions
        closest_pair_random           float64 [C, R, E, P]
        species_pairs                 bytes   [P]        the species pairs, "O-O", "O-Si", ...
        closest_pair_threshold        float64 [P]        flagging distance of each pair (A;
                                                         /parameters closest_pair_threshold_source
                                                         says how it was chosen)

    Written to a temporary file and renamed, so an old file stays whole until the new one is.
    """
    def fill(f):
        write_header(f)
        _write_params(f.create_group("parameters"), parameters, {})
        g = f.create_group("probe")
        g["epsilon"] = np.asarray(epsilon, dtype=np.float64)
        g["natoms"] = np.asarray(natoms, dtype=np.int64)
        g["source"] = np.array([str(s) for s in source], dtype=object).astype("S")
        for name, values in arrays.items():
            values = np.asarray(values)
            if name in PROBE_STRING_ARRAYS or values.dtype.kind in "USO":   # UTF-8 bytes
                g[name] = np.array([str(s).encode("utf-8") for s in values], dtype="S")
                continue
            g[name] = values if values.dtype == bool else values.astype(np.float64)
        for name, unit in PROBE_UNITS.items():
            if name in g:
                g[name].attrs["unit"] = unit

    return atomic_write_h5(path, fill, "probe file")


@contextmanager
def _group(path, name: str, what: str):
    """The top-level group ``name`` of a lammps-adv file, open for reading."""
    path = Path(path)
    with _reading(path) as f:
        if name not in f:
            raise FileFormatError(f"{path}: not a {what} (no /{name})")
        yield f[name]


def read_probe(path) -> dict:
    """The /probe arrays of a probe file by name (``source``, ``independent_unit`` as str)."""
    with _group(path, "probe", "probe file") as g:
        out = {k: g[k][()] for k in g}
    for name in PROBE_STRING_ARRAYS:
        if name in out:
            out[name] = np.array([_decode(s) for s in out[name]], dtype=str)
    return out


# ----------------------------------------------------------------------------- dataset files
def write_dataset(path, arrays: dict, attrs: dict) -> Path:
    """A dataset file. arrays: {"configs/natoms": ..., "atoms/positions": ..., "split/train":
    ...} (the names of DATASET_LAYOUT; optional ones may be missing or None); attrs:
    species (list), reference, created, generator (dict). Written atomically."""
    known = {name for name, *_ in DATASET_LAYOUT}
    unknown = sorted(set(arrays) - known)
    if unknown:
        raise ValueError(f"unknown dataset arrays {unknown}")

    def fill(f):
        f.attrs["format"] = DATASET_FORMAT
        f.attrs["version"] = DATASET_VERSION
        f.attrs["species"] = json.dumps(list(attrs.get("species", [])))
        f.attrs["reference"] = str(attrs.get("reference", "unknown"))
        f.attrs["created"] = str(attrs.get("created") or datetime.datetime.now(
            datetime.timezone.utc).isoformat())
        f.attrs["generator"] = json.dumps(attrs.get("generator", {}))
        for name, dt, required, unit in DATASET_LAYOUT:
            val = arrays.get(name)
            if val is None:
                if required:
                    raise ValueError(f"dataset array {name} is required")
                continue
            if dt == "str":       # fixed-length UTF-8 bytes (no global heap)
                data = [str(s).encode("utf-8") for s in val]
                width = max([1] + [len(b) for b in data])
                d = f.create_dataset(name, data=np.array(data, dtype=f"S{width}"))
            else:
                d = f.create_dataset(name, data=np.asarray(val, dtype=dt))
            if unit:
                d.attrs["unit"] = unit

    return atomic_write_h5(path, fill, "dataset file")


def read_dataset(path) -> tuple[dict, dict]:
    """(arrays, attrs) of a dataset file: arrays by DATASET_LAYOUT name (missing optional
    ones left out; ``configs/source`` as a list of str), attrs with species (list),
    reference, created, generator (dict). FileFormatError for a missing, foreign,
    incomplete or damaged file."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"dataset file not found: {path}")
    with _reading(path, ours=False) as f:
        if _decode(f.attrs.get("format")) != DATASET_FORMAT:
            raise FileFormatError(f"{path} is not a lammps-adv dataset "
                                  f"(no format={DATASET_FORMAT!r})")
        arrays = {}
        for name, dt, required, _ in DATASET_LAYOUT:
            if name not in f:
                if required:
                    raise FileFormatError(f"{path}: missing {name} (see docs/models.md for "
                                          "the layout)")
                continue
            val = f[name][()]
            arrays[name] = [_decode(s) if isinstance(s, bytes) else str(s) for s in val] \
                if dt == "str" else val
        try:
            attrs = {"species": json.loads(_decode(f.attrs["species"])),
                     "reference": str(_decode(f.attrs.get("reference", "unknown"))),
                     "created": str(_decode(f.attrs.get("created", ""))),
                     "generator": json.loads(_decode(f.attrs.get("generator", "{}")))}
        except (KeyError, ValueError) as exc:
            raise FileFormatError(f"{path}: bad dataset attributes ({_one_line(exc)})") from None
    return arrays, attrs


# ---------------------------------------------------------------------------- mitigation summaries
def write_mitigation(path, parameters: dict, strategies, seeds, labels_spent, measures: dict,
                     curves: dict, labels_per_round, per_run: dict,
                     eval_energy_per_atom, eval_kind=None, eval_max_force=None,
                     eval_n_atoms=None, duplicate_labels=None, outlier_labels=None,
                     label_key=None, label_outlier=None) -> Path:
    """The summary of a ``lammps-adv mitigate`` run: /h5md, /parameters (attrs), /mitigate:

        strategy                bytes   [S]
        seed                    int64   [K]
        labels_spent            int64   [S, K]     reference labels each run spent
        duplicate_labels        int64   [S, K]     labels of a configuration (config_key)
                                                   already in the base, validation or
                                                   evaluation set or labelled before in the run
        outlier_labels          int64   [S, K]     labels spent but not trained on (the
                                                   outlier rule, docs/mitigate.md)
        label_key               bytes   [S, K, B]  config_key of every label of each run, in
                                                   order ("" past labels_spent)
        label_outlier           int64   [S, K, B]  1 where that label is an outlier
        measures/<name>         float64 [S, K]     final measures (lammps_adv.experiments.measures)
        curves/<name>           float64 [S, K, R+1] the same after each round (0: base model)
        labels_per_round        int64   [R+1]      cumulative labels after each round
        per_run/<name>          float64 [S, K, C]  per evaluation configuration: cos,
                                                   abs_cos, energy_error_sign (of E_acc -
                                                   E_app), cos_force_error (c_F),
                                                   force_error_ratio, alignment_offset (eV
                                                   added to E_app; lammps_adv.experiments.
                                                   measures.per_configuration)
        per_run/relax_curve     float64 [S, K, T]  median |E_acc - E_app| (meV/atom) per
                                                   minimizer step of the recorded relaxations
        eval_energy_per_atom    float64 [C]        reference energy of each evaluation
                                                   configuration (eV/atom)
        eval_kind               bytes   [C]        "thermal" (MD) or "minimum" (relaxed with
                                                   the reference)
        eval_max_force          float64 [C]        largest per-atom reference force (eV/A)
        eval_n_atoms            int64   [C]        atoms (the random |cos| sqrt(2/(pi 3N)))

    eval_kind is one of lammps_adv.experiments.measures.KINDS ("thermal", "relax-start",
    "minimum", "md-end"); per_run also holds energy_error_per_atom (eV/atom) and
    force_sq_error (eV^2/A^2) in newer summaries. Written to a temporary file and renamed."""
    def fill(f):
        write_header(f)
        _write_params(f.create_group("parameters"), parameters, {})
        g = f.create_group("mitigate")
        g["strategy"] = np.array([str(s) for s in strategies], dtype=object).astype("S")
        g["seed"] = np.asarray(seeds, dtype=np.int64)
        g["labels_spent"] = np.asarray(labels_spent, dtype=np.int64)
        g["labels_per_round"] = np.asarray(labels_per_round, dtype=np.int64)
        g["eval_energy_per_atom"] = np.asarray(eval_energy_per_atom, dtype=np.float64)
        g["eval_energy_per_atom"].attrs["unit"] = ENERGY_UNIT
        if eval_kind is not None:
            g["eval_kind"] = np.array([str(k) for k in eval_kind], dtype=object).astype("S")
        if eval_max_force is not None:
            g["eval_max_force"] = np.asarray(eval_max_force, dtype=np.float64)
            g["eval_max_force"].attrs["unit"] = MITIGATION_UNITS["eval_max_force"]
        if eval_n_atoms is not None:
            g["eval_n_atoms"] = np.asarray(eval_n_atoms, dtype=np.int64)
        for name, values in (("duplicate_labels", duplicate_labels),
                             ("outlier_labels", outlier_labels), ("label_outlier", label_outlier)):
            if values is not None:
                g[name] = np.asarray(values, dtype=np.int64)
        if label_key is not None:
            g["label_key"] = np.array([str(k) for k in np.ravel(label_key)], dtype=object) \
                .astype("S").reshape(np.shape(label_key))
        for group, arrays in (("measures", measures), ("curves", curves), ("per_run", per_run)):
            sub = g.create_group(group)
            for name, values in arrays.items():
                sub[name] = np.asarray(values, dtype=np.float64)
                if name in MITIGATION_UNITS:
                    sub[name].attrs["unit"] = MITIGATION_UNITS[name]

    return atomic_write_h5(path, fill, "mitigation summary")


def read_mitigation(path) -> dict:
    """The /mitigate arrays of a summary (``strategy``, ``eval_kind`` as str, ``label_key``
    as an array of str; measures and curves as dicts). Summaries written before eval_kind
    existed lack eval_kind, eval_max_force and eval_n_atoms; before the label records,
    duplicate_labels, outlier_labels, label_key and label_outlier."""
    with _group(path, "mitigate", "mitigation summary") as g:
        out = {k: g[k][()] for k in ("seed", "labels_spent", "labels_per_round",
                                     "eval_energy_per_atom", "eval_max_force", "eval_n_atoms",
                                     "duplicate_labels", "outlier_labels", "label_outlier")
               if k in g}
        out["strategy"] = [_decode(s) for s in g["strategy"][()]]
        if "label_key" in g:
            out["label_key"] = np.vectorize(_decode, otypes=[object])(g["label_key"][()])
        if "eval_kind" in g:
            out["eval_kind"] = [_decode(s) for s in g["eval_kind"][()]]
        for group in ("measures", "curves", "per_run"):
            out[group] = {k: v[()] for k, v in g[group].items()}
    return out
