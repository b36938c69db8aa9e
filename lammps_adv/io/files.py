"""Safe output files: the writer's lock, disk reservation, atomic replacement, superblock
repair of a file left open by a killed writer (and the sha256 of a file).

* ``WriterLock(path)``: an exclusive ``flock`` on a sidecar file ``.<name>.lock`` next to
  the output (holding pid, host, start time and command line) for a writer's whole life;
  ``lock_path`` names that file, ``lock_holder`` tells whether a live writer holds it.
* ``reserve_space`` / ``open_reserved``: allocate (``posix_fallocate``) more disk than a
  write can use before HDF5 writes a byte, so a full disk or a file size limit fails first,
  with the file as it was.
* ``atomic_write_h5``: a new HDF5 file written next to its target and renamed over it
  (readers never see a half-written file); ``check_writable`` fails before any work when
  an output cannot be written.
* ``recover``: clear the "open for write" marks a killed SWMR writer left in an HDF5
  superblock (like HDF5's ``h5clear -s``), checksum verified.
* ``file_sha256``: hex sha256 of a file's bytes (provenance of model and data files).

The layout of the files themselves is lammps_adv.io.schema's; their writers and readers
are lammps_adv.io.h5md's.
"""
from __future__ import annotations

import datetime
import errno as _errno
import fcntl
import hashlib
import json
import os
import re
import socket
import struct
import sys
from pathlib import Path

from lammps_adv.core.errors import FileFormatError, one_line


def _h5py():
    import h5py
    return h5py


def _one_line(exc) -> str:
    return one_line(exc, limit=240)


def error_reason(exc) -> str:
    """'No space left on device (errno 28)' for an OSError or an HDF5 write failure."""
    code = getattr(exc, "errno", None)
    if not isinstance(code, int):
        m = re.search(r"errno = (\d+)", str(exc))
        code = int(m.group(1)) if m else None
    if code:
        return f"{os.strerror(code)} (errno {code})"
    return _one_line(exc)


# ----------------------------------------------------------------------------- superblock flags
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
    the checksum of the superblock is verified before anything is written. Do not call it
    on a file a writer is writing (``lock_holder(path)`` tells).
    """
    path = Path(path)
    try:
        with open(path, "r+b") as fh:
            base = None
            for off in (0, 512, 1024, 2048, 4096, 8192):
                fh.seek(off)
                if fh.read(8) == _SIGNATURE:
                    base = off
                    break
            if base is None:
                raise FileFormatError(f"{path}: not an HDF5 file")
            fh.seek(base)
            head = fh.read(12)
            if len(head) < 12:
                raise FileFormatError(f"{path}: truncated HDF5 superblock")
            version, size_off = head[8], head[9]
            if version not in (2, 3) or head[11] == 0:
                return False
            n = 12 + 4 * size_off
            fh.seek(base)
            block = bytearray(fh.read(n + 4))
            if len(block) < n + 4:
                raise FileFormatError(f"{path}: truncated HDF5 superblock")
            stored = struct.unpack("<I", block[n:n + 4])[0]
            if _lookup3(bytes(block[:n])) != stored:
                raise FileFormatError(f"{path}: superblock checksum mismatch, file left as it is")
            block[11] = 0
            block[n:n + 4] = struct.pack("<I", _lookup3(bytes(block[:n])))
            fh.seek(base)
            fh.write(bytes(block))
    except OSError as exc:
        if isinstance(exc, FileFormatError):
            raise
        raise FileFormatError(f"cannot recover {path}: {error_reason(exc)}") from None
    return True


# ----------------------------------------------------------------------------- the writer's lock
def lock_path(path) -> Path:
    """The sidecar lock file of an output file: ``.<name>.lock`` in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def _holder_text(info: dict | None) -> str:
    if not info:
        return "another process"
    text = f"pid {info.get('pid', '?')} on host {info.get('host', '?')}"
    if info.get("since"):
        text += f" since {info['since']}"
    if info.get("command"):
        text += f" ({info['command']})"
    return text


def _read_holder(lock) -> dict | None:
    try:
        with open(lock, "rb") as fh:
            return json.loads(fh.read(65536).decode("utf-8", "replace") or "null")
    except (OSError, ValueError):
        return None


def lock_holder(path) -> dict | None:
    """Holder info (pid, host, since, command) of a live writer of ``path``, else None.

    A lock file whose pid is gone on this host is stale (a killed writer); a holder on
    another host counts as live."""
    info = _read_holder(lock_path(path))
    if not info:
        return None
    if info.get("host") != socket.gethostname():
        return info
    try:
        os.kill(int(info.get("pid", -1)), 0)
    except ProcessLookupError:
        return None
    except (PermissionError, ValueError, OverflowError):
        return info
    return info


class WriterLock:
    """Exclusive ``flock`` on ``.<name>.lock`` for the life of a writer.

    A second writer (any process) gets a FileFormatError naming the holder. A lock file left
    by a killed writer holds no flock and is taken over. ``release()`` removes the file."""

    def __init__(self, target):
        self.target = Path(target)
        self.path = lock_path(target)
        self.fd = None
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise FileFormatError(f"cannot write output file {self.target}: cannot create "
                                      f"its lock file {self.path}: {error_reason(exc)}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (_errno.EWOULDBLOCK, _errno.EAGAIN, _errno.EACCES):
                    raise FileFormatError(f"{self.target} is being written by "
                                          f"{_holder_text(_read_holder(self.path))}") from None
                raise FileFormatError(f"cannot lock {self.path}: {error_reason(exc)}") from None
            # a writer that was closing may have removed the file we opened: lock the new one
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "since": datetime.datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "command": " ".join(sys.argv)}
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(info).encode(), 0)
            except OSError as exc:
                self.fd = fd
                self.release()
                raise FileFormatError(f"cannot write output file {self.target}: cannot write "
                                      f"its lock file {self.path}: {error_reason(exc)}") from None
            self.fd = fd
            return
        raise FileFormatError(f"cannot lock {self.path}: it keeps being replaced")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None

    def __del__(self):
        try:
            self.release()
        except Exception:  # noqa: BLE001 (interpreter shutdown)
            pass


# ----------------------------------------------------------------------------- disk reservation
def reserve_space(path, nbytes: int) -> int:
    """Make the file ``nbytes`` longer on disk, blocks allocated (HDF5 allocates at its end
    and truncates what it did not use when it closes the file): a full disk or a file size
    limit fails here, with OSError, before HDF5 writes a byte. Returns the size before."""
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        try:
            os.posix_fallocate(fd, size, int(nbytes))
        except OSError:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise
    finally:
        os.close(fd)
    return size


def open_swmr_write(path):
    """h5py.File of an existing file, opened read-write with SWMR-write access in one call
    (H5F_ACC_SWMR_WRITE), HDF5 file locks off (the writer's lock is its sidecar file). At
    no moment is the file open for plain writing, the state in which SWMR readers are
    refused ("not already open for SWMR writing"): a reader that opens with
    ``h5py.File(path, "r", libver="latest", swmr=True)`` succeeds whether the writer has the
    file open or not. HDF5 2.0 (h5py >= 3.16) lets it create groups and datasets too."""
    h5py = _h5py()
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    fapl.set_file_locking(False, True)
    fid = h5py.h5f.open(os.fsencode(str(path)), h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE,
                        fapl=fapl)
    return h5py.File(fid)


def open_reserved(path, size: int):
    """``open_swmr_write(path)`` after reserve_space; if HDF5 cannot open it, the reserved
    space is given back (the file is left as it was)."""
    try:
        return open_swmr_write(path)
    except BaseException:
        try:
            os.truncate(path, size)
        except OSError:
            pass
        raise


# ----------------------------------------------------------------------------- atomic replacement
def atomic_write_h5(path, fill, what: str = "output file") -> Path:
    """Write a new HDF5 file with ``fill(f)`` into a temporary file next to ``path`` and
    rename it over ``path`` (readers never see a half-written file)."""
    h5py = _h5py()
    path = Path(path)
    if path.is_dir():
        raise FileFormatError(f"cannot write {what} {path}: it is a directory")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(tmp, "w", libver="latest", locking=False) as f:
            fill(f)
        os.replace(tmp, path)
    except FileFormatError:
        unlink_quietly(tmp)
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        unlink_quietly(tmp)
        raise FileFormatError(f"cannot write {what} {path}: {error_reason(exc)}") from None
    except BaseException:
        unlink_quietly(tmp)
        raise
    return path


def unlink_quietly(p) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def check_writable(path, what: str = "output file") -> Path:
    """Fail early (before any work) when ``path`` cannot be written: its folder is made if
    needed and a probe file is created and removed there; the file itself is not touched."""
    path = Path(path)
    if path.is_dir():
        raise FileFormatError(f"cannot write {what} {path}: it is a directory")
    for folder in path.parents:           # the nearest existing ancestor must be a folder
        if folder.exists():
            if not folder.is_dir():
                raise FileFormatError(f"cannot write {what} {path}: {folder} is a file, not a "
                                      "folder")
            break
    probe = path.with_name(f".{path.name}.{os.getpid()}.check")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb"):
            pass
    except OSError as exc:
        raise FileFormatError(f"cannot write {what} {path}: {error_reason(exc)}") from None
    finally:
        unlink_quietly(probe)
    return path


def refuse_existing(paths) -> None:
    """FileExistsError naming the first of ``paths`` that exists (an experiment's outputs,
    before any work; ``overwrite=True`` / --overwrite replaces them)."""
    there = [Path(p) for p in paths if Path(p).exists()]
    if there:
        raise FileExistsError(f"{there[0]} exists ({len(there)} of the output files do): "
                              "give --overwrite to replace them")


def remove_earlier_outputs(folder, stem_glob: str) -> list:
    """Delete the recordings of an earlier run in ``folder`` named ``stem_glob`` with any
    result suffix (.h5, .hdf5, .h5md): with --overwrite a folder holds this run's recordings
    only, where a rerun with fewer configurations, or one from before the .h5md names, would
    leave files that a report counts with the new ones. Other files stay. Returns the paths
    removed."""
    from lammps_adv.io.schema import RESULT_SUFFIXES
    folder = Path(folder)
    gone = sorted(p for suffix in RESULT_SUFFIXES for p in folder.glob(stem_glob + suffix)
                  if p.is_file())
    for p in gone:
        p.unlink()
    return gone


# ----------------------------------------------------------------------------- hashes
def file_sha256(path) -> str:
    """Hex sha256 of the bytes of a file (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
