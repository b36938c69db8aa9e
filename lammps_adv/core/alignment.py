"""Energy alignment: the energy zero of two models compared configuration by configuration.

Two models of the same system may differ by a constant per atom of each species (different
charges, reference atoms, DFT pseudopotentials). Compared raw, that offset *is* the error,
and the sign of cos(theta) becomes the sign of the offset. Alignment adds per-species
shifts to the approximate energy:

    E_app,aligned = E_app + sum_s n_s shift_s        (eV; n_s atoms of species s)

Forces do not change. ``fit`` chooses the shifts by least squares over configurations
(minimising sum_c (E_acc,c - E_app,aligned,c)^2). When the compositions do not determine
every shift (all configurations SiO2: only 1 Si + 2 O shifts is known) the fit takes the
minimum-norm solution and says so in ``note``; the aligned energies are the same for any
solution, only the split between species is arbitrary.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from lammps_adv.core.errors import AlignmentError

MODES = ("none", "per-species")


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise AlignmentError(f"--align must be one of {', '.join(MODES)}, not {mode!r}")


@dataclass(frozen=True)
class Alignment:
    mode: str = "none"                                  # none | per-species
    shifts: dict = field(default_factory=dict)          # species -> eV
    note: str = ""                                      # how the shifts were obtained

    def offset(self, symbols) -> float:
        """sum_s n_s shift_s (eV) for a configuration with these atom symbols."""
        if not self.shifts:
            return 0.0
        counts = Counter(symbols)
        missing = sorted(set(counts) - set(self.shifts))
        if missing:
            raise AlignmentError(f"no alignment shift for {', '.join(missing)} (shifts known "
                                 f"for {', '.join(sorted(self.shifts)) or 'none'})")
        return float(sum(n * self.shifts[s] for s, n in counts.items()))

    def attrs(self) -> dict:
        """What /parameters records: alignment (mode), alignment_shifts_eV (JSON)."""
        return {"alignment": self.mode,
                "alignment_shifts_eV": json.dumps(self.shifts, sort_keys=True),
                "alignment_note": self.note}

    def describe(self) -> str:
        if self.mode == "none":
            return "none (raw energies)"
        shifts = ", ".join(f"{s} {v:+.6f} eV" for s, v in sorted(self.shifts.items()))
        return f"{self.mode}: {shifts}" + (f" ({self.note})" if self.note else "")


NONE = Alignment()


def fit(symbol_lists, e_app, e_acc) -> Alignment:
    """Per-species shifts by least squares: E_acc - E_app ~ sum_s n_s shift_s."""
    e_app, e_acc = np.asarray(e_app, float), np.asarray(e_acc, float)
    if len(symbol_lists) == 0 or len(symbol_lists) != len(e_app) or e_app.shape != e_acc.shape:
        raise AlignmentError("alignment needs one energy pair per configuration, and at "
                             "least one configuration")
    species = sorted({s for symbols in symbol_lists for s in symbols})
    counts = np.array([[Counter(symbols)[s] for s in species] for symbols in symbol_lists],
                      dtype=float)
    shifts, _, rank, _ = np.linalg.lstsq(counts, e_acc - e_app, rcond=None)
    note = f"least squares on {len(e_app)} configurations"
    if rank < len(species):
        note += (f"; compositions determine only {rank} combination(s) of the "
                 f"{len(species)} shifts: minimum-norm solution")
    return Alignment("per-species", {s: float(v) for s, v in zip(species, shifts)}, note)


def parse_shifts(text: str) -> Alignment:
    """``Si=-1.2,O=0.4`` (eV per atom) -> Alignment given by the user."""
    shifts = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            shifts[name.strip()] = float(value)
        except ValueError:
            raise AlignmentError(f"--align-shifts: expected SPECIES=EV[,SPECIES=EV...], got "
                                 f"{text!r}") from None
    if not all(np.isfinite(list(shifts.values()))):
        raise AlignmentError(f"--align-shifts: shifts must be finite, got {text!r}")
    return Alignment("per-species", shifts, "given by the user")


def from_attrs(attrs) -> Alignment:
    """The alignment a lammps-adv output recorded in /parameters (NONE if it has none)."""
    mode = attrs.get("alignment", "none")
    if isinstance(mode, bytes):
        mode = mode.decode()
    shifts = json.loads(attrs.get("alignment_shifts_eV", "{}") or "{}")
    return Alignment(str(mode), {str(k): float(v) for k, v in shifts.items()},
                     str(attrs.get("alignment_note", "")))
