"""Datasets of configurations with reference energies, forces and stress, in HDF5.

Layout of a dataset file (format "lammps-adv-dataset", version 1; metal units):

    /                      attrs: format, version, species (names, JSON list), reference
                           (what labelled the data: a potential spec such as "bks-dsf", or
                           e.g. "DFT"), created (ISO time), generator (JSON: how it was made)
    /configs/natoms        int64   [C]        atoms per configuration
    /configs/offset        int64   [C]        first row of each configuration in /atoms
    /configs/cell          float64 [C, 3, 3]  rows = lattice vectors a, b, c (A)
    /configs/energy        float64 [C]        total energy (eV)
    /configs/stress        float64 [C, 3, 3]  optional; eV/A^3, ASE sign (= -virial/V,
                                              i.e. minus LAMMPS' pressure without kinetic part)
    /configs/temperature   float64 [C]        K of the MD run it came from (NaN if unknown)
    /configs/source        str     [C]        the trajectory and frame, e.g. "glass0-T1000#3",
                                              "quartz-T300#0", "file.xyz#3"
    /configs/unit          str     [C]        the independent unit it descends from: the
                                              melt-quenched glass or the crystal ("glass0",
                                              "quartz"; every temperature's run of glass0
                                              starts from the same glass), for imported files
                                              each frame its own ("file.xyz#3") unless the
                                              file says otherwise (extxyz info
                                              ``independent_unit``). Frames of one unit are
                                              correlated: statistics resample units, not
                                              frames. Older files without it: the text of
                                              source before "-T" or "#" (``unit_from_source``)
    /atoms/positions       float64 [A, 3]     A
    /atoms/species         int64   [A]        index into the species list
    /atoms/forces          float64 [A, 3]     optional; eV/A
    /split/train, /split/validation, /split/test   int64 indices into the configurations

The file is written and read by ``lammps_adv.io.h5md`` (``write_dataset`` / ``read_dataset``,
which also put H5MD-style ``unit`` attributes on the arrays); this module builds and checks
the arrays. Made by ``generate`` (LAMMPS MD of melt-quenched glass at several temperatures
and of alpha-quartz, driven by a catalogue potential and labelled through the calculator
interface of ``lammps_adv.calculators``, which validates every label) or
``import_ase`` (extxyz, VASP OUTCAR, anything ASE reads with energies), so that DFT data
can be used. ``import_ase`` refuses non-finite energies, forces, stress, positions or cells,
and ``Dataset.check_finite`` (called by training) refuses a file holding any.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from lammps_adv.core.errors import DatasetError
from lammps_adv.core.errors import FileFormatError, one_line
from lammps_adv.io import dft_import
from lammps_adv.io.h5md import read_dataset, write_dataset
from lammps_adv.io.schema import DATASET_SPLITS as SPLITS



@dataclass
class Dataset:
    species: list                       # names; atoms' species are indices into it
    natoms: np.ndarray
    cell: np.ndarray
    energy: np.ndarray
    positions: np.ndarray
    atom_species: np.ndarray
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    temperature: np.ndarray | None = None
    source: list | None = None
    unit: list | None = None            # independent unit of each configuration
    splits: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    path: str | None = None

    def __post_init__(self):
        self.natoms = np.asarray(self.natoms, dtype=np.int64)
        self.offset = np.concatenate([[0], np.cumsum(self.natoms)[:-1]]).astype(np.int64) \
            if len(self.natoms) else np.zeros(0, dtype=np.int64)
        C = len(self.natoms)
        if self.temperature is None:
            self.temperature = np.full(C, np.nan)
        if self.source is None:
            self.source = [""] * C
        units = self.unit if self.unit is not None else [""] * C
        self.unit = [str(u) or unit_from_source(s) for u, s in zip(units, self.source)]

    def __len__(self) -> int:
        return len(self.natoms)

    @property
    def has_forces(self) -> bool:
        return self.forces is not None

    @property
    def has_stress(self) -> bool:
        return self.stress is not None

    def atoms_slice(self, i: int) -> slice:
        return slice(int(self.offset[i]), int(self.offset[i] + self.natoms[i]))

    def config(self, i: int) -> dict:
        """Configuration i: positions, cell, species (indices), names, energy, forces, stress."""
        s = self.atoms_slice(i)
        sp = self.atom_species[s]
        return {"positions": self.positions[s], "cell": self.cell[i], "species": sp,
                "names": [self.species[k] for k in sp], "energy": float(self.energy[i]),
                "forces": None if self.forces is None else self.forces[s],
                "stress": None if self.stress is None else self.stress[i],
                "source": self.source[i], "unit": self.unit[i],
                "temperature": float(self.temperature[i])}

    def split(self, name: str) -> np.ndarray:
        """Indices of a split; a clear error when it is missing or empty."""
        if name not in self.splits:
            raise DatasetError(f"dataset {self.path or ''} has no {name!r} split "
                               f"(splits: {', '.join(self.splits) or 'none'})")
        idx = np.asarray(self.splits[name], dtype=np.int64)
        if len(idx) == 0:
            raise DatasetError(f"the {name!r} split of dataset {self.path or ''} is empty; "
                               "make the dataset with more configurations or other split "
                               "fractions (--split)")
        return idx

    def set_split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> None:
        self.splits = random_split(len(self), fractions, seed)

    def summary(self) -> str:
        srcs: dict[str, int] = {}
        for s in self.source:
            key = s.split("#")[0]
            srcs[key] = srcs.get(key, 0) + 1
        splits = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        e_pa = self.energy / np.maximum(self.natoms, 1)
        lines = [f"{len(self)} configurations, {int(self.natoms.sum())} atoms, species "
                 f"{', '.join(self.species)}, reference {self.attrs.get('reference', '?')}",
                 f"  labels: energy{', forces' if self.has_forces else ''}"
                 f"{', stress' if self.has_stress else ''}",
                 f"  energy per atom: {e_pa.min():.4f} .. {e_pa.max():.4f} eV",
                 f"  splits: {splits or 'none'}",
                 "  sources: " + ", ".join(f"{k} ({v})" for k, v in sorted(srcs.items())),
                 f"  independent units: {len(set(self.unit))} (glasses, crystals or files "
                 "the configurations descend from)"]
        return "\n".join(lines)

    def check_finite(self) -> None:
        """Refuse non-finite labels or geometry (NaN / inf energy, forces, stress,
        positions, cell), naming the file and the first bad configuration."""
        bad = None
        checks = [("energy", self.energy[:, None]), ("cell", self.cell.reshape(len(self), -1))]
        if self.stress is not None:
            checks.append(("stress", np.asarray(self.stress).reshape(len(self), -1)))
        for name, a in checks:
            rows = np.nonzero(~np.isfinite(a).all(axis=1))[0]
            if len(rows) and (bad is None or rows[0] < bad[0]):
                bad = (int(rows[0]), name)
        atom = [("positions", self.positions)] + ([("forces", self.forces)]
                                                 if self.forces is not None else [])
        for name, a in atom:
            rows = np.nonzero(~np.isfinite(np.asarray(a)).all(axis=1))[0]
            if len(rows):
                i = int(np.searchsorted(self.offset, rows[0], side="right") - 1)
                if bad is None or i < bad[0]:
                    bad = (i, name)
        if bad is None:
            return
        i, name = bad
        src = f" ({self.source[i]})" if self.source[i] else ""
        raise DatasetError(f"dataset {self.path or ''}: configuration {i}{src} has non-finite "
                           f"{name} ({_non_finite(self._label(i, name))}); fix or drop it "
                           "before training")

    def _label(self, i: int, name: str) -> np.ndarray:
        if name in ("positions", "forces"):
            return np.asarray(getattr(self, name))[self.atoms_slice(i)]
        return np.asarray(getattr(self, name))[i]

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | Path) -> Path:
        """Write the dataset file (layout and attributes: lammps_adv.io.h5md.write_dataset)."""
        arrays = {"configs/natoms": self.natoms, "configs/offset": self.offset,
                  "configs/cell": self.cell, "configs/energy": self.energy,
                  "configs/temperature": self.temperature, "configs/source": self.source,
                  "configs/unit": self.unit,
                  "configs/stress": self.stress, "atoms/positions": self.positions,
                  "atoms/species": self.atom_species, "atoms/forces": self.forces}
        for name in SPLITS:
            arrays[f"split/{name}"] = np.asarray(self.splits.get(name, []), dtype=np.int64)
        attrs = {"species": list(self.species),
                 "reference": self.attrs.get("reference", "unknown"),
                 "created": self.attrs.get("created"),
                 "generator": self.attrs.get("generator", {})}
        path = write_dataset(path, arrays, attrs)
        self.path = str(path)
        return path


def _non_finite(values) -> str:
    v = np.asarray(values, dtype=float).ravel()
    bad = v[~np.isfinite(v)]
    if len(bad) == 0:
        return "finite"
    return "NaN" if np.isnan(bad[0]) else ("inf" if bad[0] > 0 else "-inf")


def load(path: str | Path) -> Dataset:
    """Read a dataset file (clear errors for a missing, foreign or damaged file)."""
    path = Path(path)
    try:
        arrays, attrs = read_dataset(path)
    except FileFormatError as exc:
        raise DatasetError(str(exc)) from None
    ds = Dataset(
        species=attrs["species"],
        natoms=arrays["configs/natoms"], cell=arrays["configs/cell"],
        energy=arrays["configs/energy"], positions=arrays["atoms/positions"],
        atom_species=arrays["atoms/species"], forces=arrays.get("atoms/forces"),
        stress=arrays.get("configs/stress"), temperature=arrays.get("configs/temperature"),
        source=arrays.get("configs/source"), unit=arrays.get("configs/unit"),
        splits={k: arrays[f"split/{k}"] for k in SPLITS if f"split/{k}" in arrays},
        attrs={k: attrs[k] for k in ("reference", "created", "generator")},
        path=str(path))
    if len(ds.positions) != int(ds.natoms.sum()):
        raise DatasetError(f"{path}: {len(ds.positions)} atom rows for {int(ds.natoms.sum())} atoms")
    return ds


def frame_source(path, k: int) -> str:
    """How the project names frame k of a file (a dataset's configuration k, the k-th frame
    of a structure file): ``data.h5#3``, the file's name without its folder."""
    return f"{Path(path).name}#{int(k)}"


def unit_from_source(source: str) -> str:
    """The independent unit of a configuration of a file written before /configs/unit: its
    source up to "-T" (the run's temperature: "glass0-T1000#3" -> "glass0") or else up to
    "#" ("OUTCAR#2" -> "OUTCAR"); '' for an unknown source."""
    source = str(source)
    for mark in ("-T", "#"):
        if mark in source:
            return source.split(mark, 1)[0]
    return source


def random_split(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                 seed: int = 0) -> dict:
    """Random train/validation/test indices; validation and test get at least one
    configuration each when their fraction is > 0."""
    fr = [float(x) for x in fractions]
    if len(fr) != 3 or any(x < 0 for x in fr) or sum(fr) <= 0:
        raise DatasetError(f"split fractions must be three numbers >= 0 (train, validation, "
                           f"test), got {list(fractions)}")
    total = sum(fr)
    fr = [x / total for x in fr]
    n_val = max(1, int(round(n * fr[1]))) if fr[1] > 0 else 0
    n_test = max(1, int(round(n * fr[2]))) if fr[2] > 0 else 0
    n_train = n - n_val - n_test
    if fr[0] > 0 and n_train < 1:
        raise DatasetError(f"{n} configurations are too few for a train/validation/test split")
    perm = np.random.default_rng(seed).permutation(n)
    return {"train": np.sort(perm[:n_train]),
            "validation": np.sort(perm[n_train:n_train + n_val]),
            "test": np.sort(perm[n_train + n_val:])}


def from_frames(frames: list[dict], species: Sequence[str], attrs: dict,
                split: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> Dataset:
    """Dataset from a list of frames: dicts with positions, cell, names (or species
    indices), energy, optional forces / stress / temperature / source."""
    if not frames:
        raise DatasetError("no configurations to store")
    species = list(species)
    lookup = {s: i for i, s in enumerate(species)}
    sp_rows = []
    for k, fr in enumerate(frames):
        if "names" in fr:
            unknown = sorted(set(fr["names"]) - set(lookup))
            if unknown:
                raise DatasetError(f"unknown species {', '.join(unknown)} in "
                                   f"{fr.get('source', f'configuration {k}')} (known: "
                                   f"{', '.join(species)}; set them with --species)")
            sp_rows.append(np.array([lookup[s] for s in fr["names"]], dtype=np.int64))
        else:
            sp_rows.append(np.asarray(fr["species"], dtype=np.int64))
    has_f = all(fr.get("forces") is not None for fr in frames)
    has_s = all(fr.get("stress") is not None for fr in frames)
    ds = Dataset(
        species=species,
        natoms=[len(fr["positions"]) for fr in frames],
        cell=np.array([np.asarray(fr["cell"], dtype=np.float64) for fr in frames]),
        energy=np.array([float(fr["energy"]) for fr in frames]),
        positions=np.concatenate([np.asarray(fr["positions"], dtype=np.float64)
                                  for fr in frames]),
        atom_species=np.concatenate(sp_rows),
        forces=np.concatenate([np.asarray(fr["forces"], dtype=np.float64) for fr in frames])
        if has_f else None,
        stress=np.array([np.asarray(fr["stress"], dtype=np.float64) for fr in frames])
        if has_s else None,
        temperature=np.array([float(fr.get("temperature", np.nan)) for fr in frames]),
        source=[str(fr.get("source", "")) for fr in frames],
        unit=[str(fr.get("unit") or "") for fr in frames],
        attrs=dict(attrs))
    ds.set_split(split, seed)
    return ds


# ---------------------------------------------------------------------------- import (ASE)
ENERGY_KINDS = ("auto", "free_energy", "energy")


def read_ase_frames(path: str | Path, index: str = ":", fmt: str | None = None,
                    energy_kind: str = "auto") -> list[dict]:
    """Frames with energies (and forces / stress when present) from any file ASE reads:
    extxyz, VASP OUTCAR / vasprun.xml, ... Numbers as the file holds them (units:
    ``dft_import``); each frame keeps its ``info`` (unit declarations).

    energy_kind: which energy: ``free_energy`` (VASP's TOTEN, the one the forces are the
    gradient of), ``energy`` (VASP: extrapolated to zero smearing), or ``auto``: the free
    energy when the file has one, else the energy. A virial (extxyz ``virial``, same unit
    as the energy) becomes the stress -virial / V."""
    from ase.io import read
    if energy_kind not in ENERGY_KINDS:
        raise DatasetError(f"--energy must be one of {', '.join(ENERGY_KINDS)}, not {energy_kind!r}")
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"file not found: {path}")
    try:
        images = read(str(path), index=index, format=fmt)
    except Exception as exc:
        raise DatasetError(f"cannot read {path} with ASE: {one_line(exc)}") from exc
    if not isinstance(images, list):
        images = [images]
    frames = []
    for k, at in enumerate(images):
        calc = at.calc
        results = dict(calc.results) if calc is not None else {}
        order = {"auto": ("free_energy", "energy"), "free_energy": ("free_energy",),
                 "energy": ("energy",)}[energy_kind]
        found = [(name, results.get(name, at.info.get(name))) for name in order]
        found = [(name, v) for name, v in found if v is not None]
        if not found:
            raise DatasetError(f"{path} frame {k} has no {' or '.join(order)}; a dataset needs "
                               "energies")
        kind, energy = found[0]
        forces = results.get("forces", at.arrays.get("forces"))
        stress = results.get("stress", at.info.get("stress"))
        from_virial = False
        if stress is None and at.info.get("virial") is not None:
            stress = -np.asarray(at.info["virial"], dtype=np.float64).reshape(3, 3) / at.get_volume()
            from_virial = True
        if stress is not None:
            stress = np.asarray(stress, dtype=np.float64)
            if stress.shape == (6,):
                from ase.stress import voigt_6_to_full_3x3_stress
                stress = voigt_6_to_full_3x3_stress(stress)
            stress = stress.reshape(3, 3)
        if not all(at.pbc):
            raise DatasetError(f"{path} frame {k} is not periodic in all directions")
        for name, value in (("energy", energy), ("forces", forces), ("stress", stress),
                            ("positions", at.get_positions()), ("cell", at.cell.array)):
            if value is not None and not np.all(np.isfinite(np.asarray(value, dtype=float))):
                verb = {"energy": "is", "stress": "contains", "cell": "contains"}.get(name, "contain")
                raise DatasetError(f"frame {k} of {path}: {name} {verb} {_non_finite(value)}")
        frames.append({"positions": at.get_positions(), "cell": at.cell.array,
                       "names": at.get_chemical_symbols(), "energy": float(energy),
                       "energy_kind": kind,
                       "forces": None if forces is None else np.asarray(forces, float),
                       "stress": stress, "stress_from_virial": from_virial,
                       "info": dict(at.info), "source": frame_source(path, k),
                       # each frame its own independent unit unless the file names one
                       "unit": str(at.info.get("independent_unit") or frame_source(path, k))})
    return frames


def import_ase(paths: Sequence[str | Path], out: str | Path,
               species: Sequence[str] = ("Si", "O"), reference: str = "DFT",
               split: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
               index: str = ":", fmt: str | None = None, units: dict | None = None,
               energy_kind: str = "auto") -> Dataset:
    """Build a dataset file from extxyz / OUTCAR / vasprun.xml / ... files (through ASE).

    units: {"energy": ..., "force": ..., "stress": ...} of the files (``dft_import``;
    default: as each file declares, else eV, eV/A, eV/A^3), converted to metal
    units and checked for plausibility; recorded in the dataset's generator attribute."""
    frames, file_units = [], {}
    for p in paths:
        raw = read_ase_frames(p, index=index, fmt=fmt, energy_kind=energy_kind)
        u = dft_import.file_units([fr["info"] for fr in raw], units or {}, p)
        file_units[Path(p).name] = u
        for fr in raw:
            if fr["stress_from_virial"]:        # a virial carries the energy unit
                fr["stress"] = fr["stress"] * dft_import.factor("energy", u["energy"])
                fr = {**fr, "stress_from_virial": False}
                u_fr = {**u, "stress": "eV/A^3"}
            else:
                u_fr = u
            frames.append(dft_import.convert_and_check(fr, u_fr, f"{fr['source']}"))
    kinds = sorted({fr["energy_kind"] for fr in frames})
    ds = from_frames(frames, species, {"reference": reference, "generator": {
        "kind": "import", "files": [Path(p).name for p in paths], "index": index,
        "units_in_files": file_units, "energy": kinds, "stored_units": "eV, eV/A, eV/A^3",
        "split": list(split), "seed": seed}}, split=split, seed=seed)
    ds.save(out)
    return ds


def export_extxyz(ds: Dataset, path: str | Path, indices=None) -> Path:
    """Write configurations (with energies, forces, stress) to extxyz."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write
    images = []
    for i in (range(len(ds)) if indices is None else indices):
        c = ds.config(int(i))
        at = Atoms(c["names"], positions=c["positions"], cell=c["cell"], pbc=True)
        res = {"energy": c["energy"]}
        if c["forces"] is not None:
            res["forces"] = c["forces"]
        if c["stress"] is not None:
            res["stress"] = c["stress"]
        at.calc = SinglePointCalculator(at, **res)
        images.append(at)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write(str(path), images, format="extxyz")
    return path
