"""Reference labels kept on disk, keyed by configuration and reference settings.

An expensive reference (GFN-xTB: seconds per configuration) should never compute the same
label twice: not on a rerun, not in a second experiment, not after an interruption. Every
label it computes is stored here, and looked up before computing.

Layout (one folder per reference settings, one small file per label):

    ROOT/<settings id>/settings.json        the reference settings, as the calculator states
                                            them (method, accuracy, code version, ...)
    ROOT/<settings id>/<k[:2]>/<k>.npz      one label: energy (eV), forces (eV/A), and the
                                            configuration itself (symbols, cell, positions, A)

``<settings id>`` hashes the settings (JSON, sorted keys); ``<k>`` is
``lammps_adv.core.configuration.config_key`` (bit-exact symbols, cell and positions). A label file is written
to a temporary name and renamed into place, so a crash or ``kill -9`` leaves either the
whole label or none: labelling resumes from what is there. Several processes (MPI ranks,
separate runs) may share a folder: they write different files, or the same bits.

ROOT: ``LAMMPS_ADV_LABEL_CACHE`` if set (``off`` disables the cache), else
``$XDG_CACHE_HOME/lammps-adv/labels`` (``~/.cache/lammps-adv/labels``).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ENV = "LAMMPS_ADV_LABEL_CACHE"
OFF = ("off", "none", "no", "0")


def default_root() -> Path | None:
    """The cache folder of this environment (None: disabled by LAMMPS_ADV_LABEL_CACHE=off)."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in OFF or not value.strip() else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lammps-adv" / "labels"


def settings_id(settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class LabelCache:
    """Labels of one reference (``settings``) under ``root``; counts hits, misses, writes."""

    def __init__(self, root, settings: dict):
        self.root = Path(root)
        self.settings = dict(settings)
        self.folder = self.root / settings_id(self.settings)
        self.hits = self.misses = self.stored = 0
        self._ready = False

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def get(self, key: str, symbols, positions, cell):
        """(energy, forces) stored for this configuration, or None. A file that cannot be
        read or holds another configuration (damaged) counts as a miss and is rewritten."""
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as z:
                same = (list(z["symbols"]) == list(symbols)
                        and np.array_equal(z["cell"], cell)
                        and np.array_equal(z["positions"], positions))
                label = (float(z["energy"]), np.array(z["forces"], dtype=np.float64))
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            same = False
        if not same:
            self.misses += 1
            return None
        self.hits += 1
        return label

    def put(self, key: str, symbols, positions, cell, energy: float, forces) -> Path:
        path = self._path(key)
        if not self._ready:
            self.folder.mkdir(parents=True, exist_ok=True)
            meta = self.folder / "settings.json"
            if not meta.exists():
                _atomic_write(meta, lambda fh: fh.write(
                    json.dumps(self.settings, indent=1, sort_keys=True).encode()))
            self._ready = True
        path.parent.mkdir(exist_ok=True)
        _atomic_write(path, lambda fh: np.savez(
            fh, energy=np.float64(energy), forces=np.asarray(forces, dtype=np.float64),
            symbols=np.array(list(symbols)), cell=np.asarray(cell, dtype=np.float64),
            positions=np.asarray(positions, dtype=np.float64)))
        self.stored += 1
        return path

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*/*.npz")) if self.folder.is_dir() else 0


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: all or nothing."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
