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

A fit on the very configurations it is applied to has zero mean error by construction, so
the sign of the energy error (and of cos(theta)) is partly decided by the fit; with no more
configurations than independent shift combinations it absorbs the whole error (cos = 0,
A = 0). ``fit`` refuses that case, and every alignment carries its ``source`` (recorded as
``alignment_source``) so a result says whether it was fitted on itself, on an independent
file, or given by the user. The rule (docs/alignment.md): models trained on the reference
itself are compared raw (``none``); pairs of different origin are aligned from an
independent set of configurations.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from lammps_adv.core.errors import AlignmentError

MODES = ("none", "per-species")
# alignment_source of an alignment fitted on the configurations it is applied to (the
# default of probe and relax): the report says its sign statistics are conditioned on it
SELF_FITTED = "fitted on the configurations of this experiment"
GIVEN = "given by the user"
UNRECORDED = "not recorded (file written before alignment_source existed)"


def self_fitted(n_configs: int) -> str:
    """The alignment_source of a fit on the experiment's own ``n_configs`` configurations."""
    return f"{SELF_FITTED} ({n_configs} configurations)"


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise AlignmentError(f"--align must be one of {', '.join(MODES)}, not {mode!r}")


@dataclass(frozen=True)
class Alignment:
    mode: str = "none"                                  # none | per-species
    shifts: dict = field(default_factory=dict)          # species -> eV
    note: str = ""                                      # how the shifts were obtained
    source: str = "none"                                # where from (alignment_source)

    @property
    def is_self_fitted(self) -> bool:
        """Fitted on the configurations it is applied to: sign statistics depend on it."""
        return self.source.startswith(SELF_FITTED)

    def same_shifts(self, other: "Alignment", tol: float = 1e-9) -> bool:
        """Same mode and the same shifts within ``tol`` eV per atom: the same energies."""
        return (self.mode == other.mode and set(self.shifts) == set(other.shifts)
                and all(abs(v - other.shifts[k]) <= tol for k, v in self.shifts.items()))

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
        """What /parameters records: alignment (mode), alignment_shifts_eV (JSON),
        alignment_note, alignment_source."""
        return {"alignment": self.mode,
                "alignment_shifts_eV": json.dumps(self.shifts, sort_keys=True),
                "alignment_note": self.note, "alignment_source": self.source}

    def describe(self) -> str:
        if self.mode == "none":
            return "none (raw energies)"
        shifts = ", ".join(f"{s} {v:+.6f} eV" for s, v in sorted(self.shifts.items()))
        how = "; ".join(t for t in (self.note, f"source: {self.source}") if t)
        return f"{self.mode}: {shifts} ({how})"


NONE = Alignment()


def fit(symbol_lists, e_app, e_acc, source: str | None = None) -> Alignment:
    """Per-species shifts by least squares: E_acc - E_app ~ sum_s n_s shift_s (eV).

    source: where the configurations come from (alignment_source; default: the
    experiment's own configurations). Refused when the configurations are no more than the
    independent shift combinations their compositions determine: the fit would then match
    every energy exactly and leave no error to measure."""
    e_app, e_acc = np.asarray(e_app, float), np.asarray(e_acc, float)
    if len(symbol_lists) == 0 or len(symbol_lists) != len(e_app) or e_app.shape != e_acc.shape:
        raise AlignmentError("alignment needs one energy pair per configuration, and at "
                             "least one configuration")
    n = len(e_app)
    check_fit(symbol_lists, source or self_fitted(n))
    species, counts, rank = _compositions(symbol_lists)
    shifts = np.linalg.lstsq(counts, e_acc - e_app, rcond=None)[0]
    note = f"least squares on {n} configurations"
    if rank < len(species):
        note += (f"; compositions determine only {rank} combination(s) of the "
                 f"{len(species)} shifts: minimum-norm solution")
    return Alignment("per-species", {s: float(v) for s, v in zip(species, shifts)}, note,
                     source or self_fitted(n))


def _compositions(symbol_lists):
    """Species (sorted), atoms of each per configuration [C, S], and the matrix's rank."""
    species = sorted({s for symbols in symbol_lists for s in symbols})
    counts = np.array([[Counter(symbols)[s] for s in species] for symbols in symbol_lists],
                      dtype=float).reshape(len(symbol_lists), len(species))
    return species, counts, int(np.linalg.matrix_rank(counts)) if counts.size else 0


def check_fit(symbol_lists, source: str | None = None) -> None:
    """Refuse a per-species fit on these compositions that leaves no degree of freedom
    (configurations <= independent shift combinations): known before any energy is
    computed, so experiments call it first."""
    n, rank = len(symbol_lists), _compositions(symbol_lists)[2]
    if n <= rank:
        raise AlignmentError(
            f"per-species alignment {source or self_fitted(n)}: {n} configuration(s) for "
            f"{rank} independent shift combination(s) leave no degree of freedom (the fit "
            f"would absorb the whole energy error: cos(theta) = 0, A = 0); use --align none, "
            f"or --align-from FILE with more configurations than that (an independent "
            f"reference-labelled set)")


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
    return Alignment("per-species", shifts, "", GIVEN)


def from_attrs(attrs) -> Alignment:
    """The alignment a lammps-adv output recorded in /parameters (NONE if it has none)."""
    def text(key, default):
        value = attrs.get(key, default)
        return value.decode() if isinstance(value, bytes) else str(value)
    mode = text("alignment", "none")
    shifts = json.loads(text("alignment_shifts_eV", "{}") or "{}")
    return Alignment(mode, {str(k): float(v) for k, v in shifts.items()},
                     text("alignment_note", ""),
                     text("alignment_source", "none" if mode == "none" else UNRECORDED))
