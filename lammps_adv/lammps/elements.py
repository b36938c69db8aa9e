"""Chemical elements: symbols, and the element of each LAMMPS atom type.

The element of each atom type (``type_elements``) comes from its type label (``labelmap``
or a data file's "Atom Type Labels") when every type has a label that is an element
symbol, else from an explicit species list, else from the per-type masses. A species list
that contradicts the labels is an error, not silently ignored.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from lammps_adv.core.errors import CalculatorError
from lammps_adv.parallel.mpi import comm_of


def _chemical_symbols():
    from ase.data import chemical_symbols
    return chemical_symbols


def normalize_symbol(name: str) -> str | None:
    """'si' / 'SI' / 'Si' -> 'Si'; None if not an element symbol."""
    name = str(name).strip()
    if not name:
        return None
    cand = name[0].upper() + name[1:].lower()
    return cand if cand in _chemical_symbols()[1:] else None


def element_from_mass(mass: float, tol: float = 0.5) -> str | None:
    from ase.data import atomic_masses
    diff = np.abs(np.asarray(atomic_masses[1:]) - float(mass))
    i = int(np.argmin(diff))
    return _chemical_symbols()[i + 1] if diff[i] <= tol else None


LABELMAP_SINCE = 20220217      # LAMMPS with type labels (labelmap): 17 Feb 2022 and later


def can_label_types(lmp) -> bool:
    """Whether this LAMMPS instance can hold atom type labels: 17 Feb 2022 and later, and not
    with KOKKOS active (LAMMPS refuses label maps there, up to 2026 at least)."""
    return int(lmp.version()) >= LABELMAP_SINCE and lmp.extract_setting("kokkos_active") != 1


def type_labels(lmp, comm=None) -> dict[int, str]:
    """Atom type labels of a LAMMPS instance ({type: label}; empty when none are set, or
    when that LAMMPS instance cannot hold them)."""
    if not can_label_types(lmp):
        return {}
    comm = comm_of(lmp, comm)
    rank = comm.Get_rank()
    path = None
    if rank == 0:
        fd, path = tempfile.mkstemp(suffix=".labelmap")
        os.close(fd)
    path = comm.bcast(path, root=0)
    labels = {}
    try:
        lmp.command(f"labelmap write {path}")
        if rank == 0:
            for line in Path(path).read_text().splitlines():
                if line.startswith("labelmap atom"):
                    for m in re.finditer(r'(\d+)\s+(?:"""\s*(.*?)\s*"""|(\S+))',
                                         line[len("labelmap atom"):]):
                        labels[int(m.group(1))] = m.group(2) if m.group(2) is not None else m.group(3)
    finally:
        if rank == 0 and path and os.path.exists(path):
            os.unlink(path)
    return comm.bcast(labels, root=0)


def _species_list(species, ntypes) -> dict[int, str]:
    species = list(species)
    if len(species) != ntypes:
        raise CalculatorError(f"--species names {len(species)} elements ({' '.join(species)}) "
                              f"but the system has {ntypes} atom types")
    out = {}
    for t, s in enumerate(species, start=1):
        sym = normalize_symbol(s)
        if sym is None:
            raise CalculatorError(f"--species: {s!r} is not an element symbol")
        out[t] = sym
    return out


def type_elements(lmp, species=None, comm=None) -> tuple[dict[int, str], str]:
    """Element of every LAMMPS atom type: ({type: symbol}, source) with source one of
    'labels', 'species', 'masses'. Raises CalculatorError when it cannot be decided or
    when ``species`` contradicts the type labels."""
    ntypes = int(lmp.extract_global("ntypes"))
    labels = type_labels(lmp, comm)
    given = _species_list(species, ntypes) if species else None
    if labels and all(normalize_symbol(labels.get(t, "")) for t in range(1, ntypes + 1)):
        from_labels = {t: normalize_symbol(labels[t]) for t in range(1, ntypes + 1)}
        if given is not None and given != from_labels:
            shown = ", ".join(f"{t}={s}" for t, s in from_labels.items())
            raise CalculatorError(f"--species {' '.join(species)} contradicts the atom type "
                                  f"labels of the system ({shown}): drop --species or fix it")
        return from_labels, "labels"
    if given is not None:
        return given, "species"
    masses = lmp.numpy.extract_atom("mass")
    out = {}
    for t in range(1, ntypes + 1):
        m = float(masses[t]) if masses is not None else 0.0
        sym = element_from_mass(m)
        if sym is None:
            raise CalculatorError(f"cannot tell the element of atom type {t} (mass {m}): give "
                                  "type labels (labelmap) or --species")
        out[t] = sym
    return out, "masses"
