"""HDF5 (H5MD 1.1 based) file of a recorded run: writer, crash recovery, reader helper.

Layout (the design.md contract, plus ``/stages``):

  /h5md                                    attrs version [1, 1]; groups author, creator
  /parameters                              attrs (approx, reference, units, every, ...),
                                           string datasets (deck, command_line, ...);
                                           /parameters/append_<k> for each --append session
  /observables/<name>/{step,time,value}    [T] int64 / float64 ps / float64; one row per
                                           record, shared by all observables (``step`` and
                                           ``time`` are hard links to one dataset each)
  /particles/all/species                   [N] element symbols (atom-ID order)
  /particles/all/{position,force_approx,force_reference}/{step,time,value [K,N,3]}
  /particles/all/box/edges/{step,time,value [K,3,3]}   rows = cell vectors a, b, c (A)
  /particles/all/record/{step,time,value [K]}          observable row of each frame
  /stages/{kind,command,first_step,first_row} [S]      one row per run/minimize command

Crash safety: the file is written in HDF5's SWMR mode (single writer, multiple readers):
every flush leaves a consistent file, so a writer killed with SIGKILL leaves every flushed
row intact. HDF5 marks a file open in SWMR-write mode in its superblock; after a crash plain
``h5py.File(path)`` refuses it ("file is already open for write") until the mark is cleared:
``recover(path)`` (or ``lammps-adv run --append``, or ``open_h5``) does that, like HDF5's
``h5clear -s``. Readers may also open it at once with ``h5py.File(path, "r", libver="latest",
swmr=True)``.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

H5MD_VERSION = (1, 1)
CREATOR = "lammps-adv"
COMMAND_LEN = 1024


class H5MDError(OSError):
    pass


# --------------------------------------------------------------------- superblock flags
def _lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 hashlittle, as HDF5 uses for metadata checksums."""
    M = 0xFFFFFFFF

    def rot(x, k):
        return ((x << k) | (x >> (32 - k))) & M

    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & M
    k = 0
    while length > 12:
        a = (a + int.from_bytes(data[k:k + 4], "little")) & M
        b = (b + int.from_bytes(data[k + 4:k + 8], "little")) & M
        c = (c + int.from_bytes(data[k + 8:k + 12], "little")) & M
        a = (a - c) & M; a ^= rot(c, 4); c = (c + b) & M
        b = (b - a) & M; b ^= rot(a, 6); a = (a + c) & M
        c = (c - b) & M; c ^= rot(b, 8); b = (b + a) & M
        a = (a - c) & M; a ^= rot(c, 16); c = (c + b) & M
        b = (b - a) & M; b ^= rot(a, 19); a = (a + c) & M
        c = (c - b) & M; c ^= rot(b, 4); b = (b + a) & M
        length -= 12
        k += 12
    if length == 0:
        return c
    tail = data[k:k + length] + b"\0" * (12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & M
    b = (b + int.from_bytes(tail[4:8], "little")) & M
    c = (c + int.from_bytes(tail[8:12], "little")) & M
    c ^= b; c = (c - rot(b, 14)) & M
    a ^= c; a = (a - rot(c, 11)) & M
    b ^= a; b = (b - rot(a, 25)) & M
    c ^= b; c = (c - rot(b, 16)) & M
    a ^= c; a = (a - rot(c, 4)) & M
    b ^= a; b = (b - rot(a, 14)) & M
    c ^= b; c = (c - rot(b, 24)) & M
    return c


_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def recover(path) -> bool:
    """Clear the 'open for write' marks a crashed writer left in the superblock (h5clear -s).

    Returns True if the file was changed. Only superblock versions 2 and 3 carry the marks;
    the checksum of the superblock is verified before anything is written.
    """
    path = Path(path)
    with open(path, "r+b") as fh:
        base = None
        for off in (0, 512, 1024, 2048, 4096, 8192):
            fh.seek(off)
            if fh.read(8) == _SIGNATURE:
                base = off
                break
        if base is None:
            raise H5MDError(f"{path}: not an HDF5 file")
        fh.seek(base)
        head = fh.read(12)
        version, size_off = head[8], head[9]
        if version not in (2, 3) or head[11] == 0:
            return False
        n = 12 + 4 * size_off
        fh.seek(base)
        block = bytearray(fh.read(n + 4))
        stored = struct.unpack("<I", block[n:n + 4])[0]
        if _lookup3(bytes(block[:n])) != stored:
            raise H5MDError(f"{path}: superblock checksum mismatch, file left as it is")
        block[11] = 0
        block[n:n + 4] = struct.pack("<I", _lookup3(bytes(block[:n])))
        fh.seek(base)
        fh.write(bytes(block))
    return True


def open_h5(path, mode: str = "r"):
    """h5py.File(path, mode), clearing a crashed writer's marks first when needed."""
    import h5py
    try:
        return h5py.File(path, mode, libver="latest") if mode != "r" else h5py.File(path, "r")
    except OSError as exc:
        if "already open for" not in str(exc):
            raise
    recover(path)
    return h5py.File(path, mode, libver="latest") if mode != "r" else h5py.File(path, "r")


# --------------------------------------------------------------------- writer
def write_header(f) -> None:
    """The /h5md group of every lammps-adv file: H5MD version, author, creator."""
    from lammps_adv import __version__
    h5 = f.create_group("h5md")
    h5.attrs["version"] = np.array(H5MD_VERSION, dtype=np.int32)
    h5.create_group("author").attrs["name"] = "lammps-adv user"
    cr = h5.create_group("creator")
    cr.attrs["name"] = CREATOR
    cr.attrs["version"] = __version__


def _str_dtype():
    import h5py
    return h5py.string_dtype("utf-8")


class H5MDWriter:
    """Rank-0 writer of one recorded run (see the module docstring for the layout).

    Rows and frames are buffered and written by ``flush()``; datasets are created before
    SWMR mode is switched on (``start``), so a file is complete from its first flush on.
    """

    def __init__(self, path, observables, attrs: dict | None = None, texts: dict | None = None,
                 append: bool = False):
        import h5py
        self.path = Path(path)
        self.observables = list(observables)
        self.append = append and self.path.exists()
        self.started = False
        self._rows = []          # (step, time, [values...])
        self._frames = []        # (step, time, row, pos, fa, fr, box)
        self._stages = []        # (kind, command, first_step, first_row)
        try:
            if self.append:
                try:
                    f = h5py.File(self.path, "r+", libver="latest")
                except OSError as exc:
                    if "already open for" not in str(exc):
                        raise
                    recover(self.path)
                    f = h5py.File(self.path, "r+", libver="latest")
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                f = h5py.File(self.path, "w", libver="latest")
        except (OSError, ValueError) as exc:
            raise H5MDError(f"cannot write output file {self.path}: {exc}") from None
        self.f = f
        try:
            if self.append:
                self._open_existing(attrs or {}, texts or {})
            else:
                self._create(attrs or {}, texts or {})
            f.flush()
            self._count_written()
        except Exception:
            f.close()
            raise

    # ---------------------------------------------------------------- layout
    def _create(self, attrs, texts):
        f = self.f
        write_header(f)
        self._write_params(f.create_group("parameters"), attrs, texts)
        obs = f.create_group("observables")
        step = time = None
        for name in self.observables:
            g = obs.create_group(name)
            if step is None:
                step = g.create_dataset("step", shape=(0,), maxshape=(None,), dtype="i8", chunks=(4096,))
                time = g.create_dataset("time", shape=(0,), maxshape=(None,), dtype="f8", chunks=(4096,))
                time.attrs["unit"] = "ps"
            else:
                g["step"] = step
                g["time"] = time
            g.create_dataset("value", shape=(0,), maxshape=(None,), dtype="f8", chunks=(4096,))
        st = f.create_group("stages")
        st.create_dataset("kind", shape=(0,), maxshape=(None,), dtype="S16", chunks=(256,))
        st.create_dataset("command", shape=(0,), maxshape=(None,), dtype=f"S{COMMAND_LEN}", chunks=(64,))
        st.create_dataset("first_step", shape=(0,), maxshape=(None,), dtype="i8", chunks=(256,))
        st.create_dataset("first_row", shape=(0,), maxshape=(None,), dtype="i8", chunks=(256,))

    def _open_existing(self, attrs, texts):
        f = self.f
        if "h5md" not in f or "observables" not in f:
            raise H5MDError(f"{self.path} is not a lammps-adv recording (no /h5md, /observables): "
                            "cannot --append to it")
        missing = [n for n in self.observables if n not in f["observables"]]
        if missing:
            raise H5MDError(f"{self.path}: observables {missing} missing, cannot --append")
        k = 1
        while f"append_{k}" in f["parameters"]:
            k += 1
        self._write_params(f["parameters"].create_group(f"append_{k}"), attrs, texts)

    @staticmethod
    def _write_params(g, attrs, texts):
        for key, val in attrs.items():
            if val is None:
                continue
            g.attrs[key] = val
        for key, val in texts.items():
            g.create_dataset(key, data=str(val), dtype=_str_dtype())

    @property
    def n_rows(self) -> int:
        return self._written_rows + len(self._rows)

    @property
    def n_stages(self) -> int:
        return self._written_stages + len(self._stages)

    def _count_written(self):
        self._written_rows = int(self.f["observables"][self.observables[0]]["value"].shape[0])
        self._written_stages = int(self.f["stages/kind"].shape[0])

    def start(self, species, frames: bool) -> None:
        """Create the per-particle datasets (N = len(species)) and switch SWMR on."""
        f = self.f
        n = len(species)
        part = f.require_group("particles").require_group("all")
        if "species" in part:
            old = [s.decode() if isinstance(s, bytes) else str(s) for s in part["species"][()]]
            if old != list(species):
                raise H5MDError(f"{self.path} holds a system of {len(old)} atoms "
                                f"({_summary(old)}); this run has {n} ({_summary(species)}): "
                                "cannot --append")
        else:
            part.create_dataset("species", data=np.array(species, dtype="S3"))
        if frames and "position" not in part:
            shared = None
            for name, shape, chunk in (("position", (n, 3), (1, n, 3)),
                                       ("force_approx", (n, 3), (1, n, 3)),
                                       ("force_reference", (n, 3), (1, n, 3)),
                                       ("box/edges", (3, 3), (16, 3, 3)),
                                       ("record", (), (1024,))):
                g = part.require_group(name)
                if shared is None:
                    shared = (g.create_dataset("step", shape=(0,), maxshape=(None,), dtype="i8", chunks=(1024,)),
                              g.create_dataset("time", shape=(0,), maxshape=(None,), dtype="f8", chunks=(1024,)))
                    shared[1].attrs["unit"] = "ps"
                else:
                    g["step"], g["time"] = shared
                dt = "i8" if name == "record" else "f8"
                g.create_dataset("value", shape=(0,) + shape, maxshape=(None,) + shape,
                                 dtype=dt, chunks=chunk)
            box = part["box"]
            box.attrs["dimension"] = 3
            box.attrs["boundary"] = np.array([b"periodic"] * 3)
        self.frames = "position" in part
        f.flush()
        f.swmr_mode = True
        self.started = True

    # ---------------------------------------------------------------- data
    def add_row(self, step: int, time: float, values: dict) -> int:
        """Buffer one row; returns its row index in the file."""
        row = self.n_rows
        self._rows.append((int(step), float(time), [float(values[n]) for n in self.observables]))
        return row

    def add_frame(self, step, time, row, positions, f_approx, f_reference, cell) -> None:
        if not self.frames:
            raise H5MDError("frames were not enabled when the file was started")
        self._frames.append((int(step), float(time), int(row),
                             np.array(positions, dtype=np.float64), np.array(f_approx, dtype=np.float64),
                             np.array(f_reference, dtype=np.float64), np.array(cell, dtype=np.float64)))

    def add_stage(self, kind: str, command: str, first_step: int) -> int:
        index = self.n_stages
        cmd = command.encode("utf-8")[:COMMAND_LEN]
        self._stages.append((kind.encode()[:16], cmd, int(first_step), self.n_rows))
        return index

    @property
    def pending(self) -> int:
        return len(self._rows) + len(self._frames)

    def flush(self) -> None:
        f = self.f
        if self._stages:
            st = f["stages"]
            n0 = st["kind"].shape[0]
            k = len(self._stages)
            for j, name in enumerate(("kind", "command", "first_step", "first_row")):
                d = st[name]
                d.resize((n0 + k,))
                d[n0:] = np.array([s[j] for s in self._stages], dtype=d.dtype)
            self._stages = []
        if self._rows:
            obs = f["observables"]
            first = obs[self.observables[0]]
            n0 = first["value"].shape[0]
            k = len(self._rows)
            steps = np.array([r[0] for r in self._rows], dtype=np.int64)
            times = np.array([r[1] for r in self._rows], dtype=np.float64)
            vals = np.array([r[2] for r in self._rows], dtype=np.float64)
            # values first, step/time last: a reader sees a row only once it is complete
            for j, name in enumerate(self.observables):
                d = obs[name]["value"]
                d.resize((n0 + k,))
                d[n0:] = vals[:, j]
            for name, data in (("time", times), ("step", steps)):
                d = first[name]
                d.resize((n0 + k,))
                d[n0:] = data
            self._rows = []
        if self._frames:
            part = f["particles/all"]
            n0 = part["position/value"].shape[0]
            k = len(self._frames)
            for j, name in ((3, "position"), (4, "force_approx"), (5, "force_reference"),
                            (6, "box/edges"), (2, "record")):
                d = part[name]["value"]
                d.resize((n0 + k,) + d.shape[1:])
                d[n0:] = np.array([fr[j] for fr in self._frames])
            for j, name in ((1, "time"), (0, "step")):
                d = part["position"][name]
                d.resize((n0 + k,))
                d[n0:] = np.array([fr[j] for fr in self._frames])
            self._frames = []
        f.flush()
        self._count_written()

    def close(self) -> None:
        if self.f is None:
            return
        try:
            self.flush()
        finally:
            self.f.close()
            self.f = None


def _summary(species) -> str:
    from collections import Counter
    return " ".join(f"{s}{c}" for s, c in sorted(Counter(species).items()))


# --------------------------------------------------------------------- reading
def read_observables(path) -> dict:
    """{name: value array, 'step': ..., 'time': ...} of a recording (recovering it if needed)."""
    with open_h5(path) as f:
        obs = f["observables"]
        names = list(obs)
        out = {"step": obs[names[0]]["step"][()], "time": obs[names[0]]["time"][()]}
        n = len(out["step"])
        for name in names:
            out[name] = obs[name]["value"][:n]
    return out
