"""Result files as the report and the experiments read them: one :class:`Result` (its
/parameters attributes and its arrays) per HDF5 file.

Files are read only through the readers of ``lammps_adv.io.h5md`` (which owns the format).
Files that are not ours (no `/h5md` group with creator "lammps-adv") or that are
truncated/corrupt are skipped with one warning naming the file; the rest is read.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lammps_adv.io import h5md
from lammps_adv.io.schema import RESULT_SUFFIXES
from lammps_adv.core.errors import LammpsAdvError


class SkippedFile(UserWarning):
    pass


_formatwarning = warnings.formatwarning


def _format_skipped(message, category, filename, lineno, line=None):
    """A skipped file is one line on stderr (no source line of this module)."""
    if isinstance(category, type) and issubclass(category, SkippedFile):
        return f"lammps-adv: warning: {message}\n"
    return _formatwarning(message, category, filename, lineno, line)


warnings.formatwarning = _format_skipped


# ------------------------------------------------------------------ reading
@dataclass
class Result:
    """One HDF5 file: its /parameters attributes and its arrays (by name)."""
    path: Path
    params: dict
    data: dict = field(default_factory=dict)


def read_files(paths, reader) -> list[Result]:
    """Apply ``reader(path) -> dict of arrays`` to each file; skip bad ones with a warning."""
    results = []
    for path in sorted(Path(p) for p in paths):
        try:
            params = h5md.read_parameters(path, texts=False)
            data = reader(path)
        except (LammpsAdvError, ValueError, KeyError, OSError) as exc:
            msg = " ".join(str(exc).split()).removeprefix(f"{path}: ")
            warnings.warn(f"skipping {path}: {msg}", SkippedFile, stacklevel=2)
            continue
        results.append(Result(path, params, data))
    return results


def observables(path) -> dict:
    """All /observables/<name>/value arrays of a recorded run, plus 'step' and 'time'."""
    return h5md.read_observables(path)


def probe_arrays(path) -> dict:
    """Arrays of a probe file (see lammps_adv.io.h5md.write_probe)."""
    return h5md.read_probe(path)


def read_results(paths) -> dict[str, list[Result]]:
    """Read every file and sort it by experiment: 'probe', 'relax', 'run' (a recording) or
    'mitigate' (a summary of remedies)."""
    paths = sorted(set(Path(p) for p in paths))
    kinds = {p: experiment_of(p) for p in paths}
    probes = read_files([p for p in paths if kinds[p] == "probe"], probe_arrays)
    mitigations = read_files([p for p in paths if kinds[p] == "mitigate"], h5md.read_mitigation)
    recs = read_files([p for p in paths if kinds[p] not in ("probe", "mitigate")], recording)
    out = {"probe": probes, "relax": [], "run": [], "mitigate": mitigations}
    for r in recs:
        out["relax" if r.params.get("experiment") == "relax" else "run"].append(r)
    return out


def experiment_of(path: Path) -> str | None:
    """The /parameters 'experiment' attribute, or None (read errors are reported later)."""
    try:
        return h5md.read_parameters(path, texts=False).get("experiment")
    except (LammpsAdvError, OSError, ValueError, KeyError):
        return None


def recording(path) -> dict:
    """A recorded run (MD or relaxation): its observables and each row's stage kind."""
    data = observables(path)
    data["stage_kind"] = np.array(h5md.read_stages(path)["kind"], dtype=str)
    return data

def find_h5(items) -> list[Path]:
    """HDF5 files named, or found (recursively) in the folders named. Of a folder holding a
    mitigation summary (``mitigate.h5``) only the summary counts: the rest are the run's
    training sets, models' probes and relaxations."""
    out = []
    for item in map(Path, items):
        if item.is_dir():
            runs = [p.parent for p in item.rglob("mitigate.h5")]
            out += sorted(p for p in item.rglob("*") if p.suffix in RESULT_SUFFIXES
                          and not any(r in p.parents for r in runs))
            out += sorted(r / "mitigate.h5" for r in runs)
        elif item.exists():
            out.append(item)
        else:
            raise FileNotFoundError(f"no such file or folder: {item}")
    return out
