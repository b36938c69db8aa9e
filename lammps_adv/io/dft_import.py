"""Units of imported DFT data: declared, converted to metal units, and checked.

Public DFT sets come as extxyz (energies, forces, stress or virial in the comment line and
columns) or as VASP output (OUTCAR, vasprun.xml). ASE converts VASP's own units (kB stress)
but takes extxyz numbers as they stand, and files from other codes often hold Hartree,
Rydberg or kcal/mol. So the importer asks for the units of the file (or reads them from the
frame's info: ``energy_unit``, ``force_unit``/``forces_unit``, ``stress_unit``), converts to
eV, eV/A and eV/A^3, and refuses numbers no silica DFT calculation gives in those units
(forces above ``MAX_FORCE``, stress above ``MAX_STRESS``): most often a file in another unit.
"""
from __future__ import annotations

import numpy as np

from lammps_adv.core.errors import DatasetError

# value in eV, eV/A, eV/A^3 of one unit (CODATA values as ASE has them)
def _tables():
    from ase import units as u
    energy = {"eV": 1.0, "meV": 1e-3, "Hartree": u.Hartree, "Ha": u.Hartree,
              "Ry": u.Rydberg, "kcal/mol": u.kcal / u.mol, "kJ/mol": u.kJ / u.mol}
    force = {"eV/A": 1.0, "eV/Ang": 1.0, "meV/A": 1e-3, "Hartree/Bohr": u.Hartree / u.Bohr,
             "Ha/Bohr": u.Hartree / u.Bohr, "Ry/Bohr": u.Rydberg / u.Bohr,
             "eV/Bohr": 1.0 / u.Bohr, "kcal/mol/A": u.kcal / u.mol, "kJ/mol/A": u.kJ / u.mol}
    stress = {"eV/A^3": 1.0, "eV/Ang^3": 1.0, "GPa": u.GPa, "kbar": 0.1 * u.GPa,
              "kB": 0.1 * u.GPa, "bar": 1e-4 * u.GPa, "Hartree/Bohr^3": u.Hartree / u.Bohr ** 3}
    return {"energy": energy, "force": force, "stress": stress}


DEFAULTS = {"energy": "eV", "force": "eV/A", "stress": "eV/A^3"}
INFO_KEYS = {"energy": ("energy_unit",), "force": ("force_unit", "forces_unit"),
             "stress": ("stress_unit", "virial_unit")}
MAX_FORCE = 100.0        # eV/A: hot liquid silica stays far below; 1 Hartree/Bohr = 51 eV/A
MAX_STRESS = 5.0         # eV/A^3 = 800 GPa


def unit_names() -> dict:
    return {k: list(v) for k, v in _tables().items()}


def factor(kind: str, unit: str) -> float:
    table = _tables()[kind]
    if unit not in table:
        raise DatasetError(f"unknown {kind} unit {unit!r}; known: {', '.join(table)}")
    return table[unit]


def file_units(frames_info: list[dict], given: dict, path) -> dict:
    """The units of a file: those given (options), else declared in every frame's info,
    else metal units. A declaration that disagrees with an option, or between frames, is
    an error."""
    units = {}
    for kind, default in DEFAULTS.items():
        declared = {str(info[k]) for info in frames_info for k in INFO_KEYS[kind] if k in info}
        if len(declared) > 1:
            raise DatasetError(f"{path}: frames declare different {kind} units "
                               f"({', '.join(sorted(declared))})")
        option = given.get(kind)
        if option and declared and option not in declared:
            raise DatasetError(f"{path} declares {kind} unit {declared.pop()!r}, the option says "
                               f"{option!r}")
        units[kind] = option or (declared.pop() if declared else default)
        factor(kind, units[kind])           # an unknown unit fails here, before any work
    return units


def convert_and_check(frame: dict, units: dict, where: str) -> dict:
    """Frame with energy, forces, stress in eV, eV/A, eV/A^3; implausible values refused."""
    out = dict(frame)
    out["energy"] = float(frame["energy"]) * factor("energy", units["energy"])
    if frame.get("forces") is not None:
        out["forces"] = np.asarray(frame["forces"], float) * factor("force", units["force"])
        fmax = float(np.sqrt((out["forces"] ** 2).sum(axis=1)).max()) if len(out["forces"]) else 0.0
        if fmax > MAX_FORCE:
            raise DatasetError(f"{where}: a force of {fmax:.4g} eV/A (read as "
                               f"{units['force']}) is implausible for DFT silica; is the file in "
                               "another unit? give it with --force-unit")
    if frame.get("stress") is not None:
        out["stress"] = np.asarray(frame["stress"], float) * factor("stress", units["stress"])
        smax = float(np.abs(out["stress"]).max())
        if smax > MAX_STRESS:
            raise DatasetError(f"{where}: a stress of {smax:.4g} eV/A^3 ({smax * 160.2:.4g} GPa, "
                               f"read as {units['stress']}) is implausible; is the file in kbar "
                               "or GPa? give it with --stress-unit")
    natoms = len(frame["positions"])
    if natoms and abs(out["energy"]) / natoms > 1e5:
        raise DatasetError(f"{where}: {out['energy'] / natoms:.4g} eV/atom is implausible; give "
                           "the file's energy unit with --energy-unit")
    return out
