"""Provenance of a recording: what goes into ``/parameters`` (settings, versions, the deck,
hashes of every file it names), so that a file says how it was made."""
from __future__ import annotations

import json
import time
from pathlib import Path

from lammps_adv import __version__
from lammps_adv.io.files import file_sha256
from lammps_adv.io.schema import PARAMETER_UNITS
from lammps_adv.io.schema import RECORDING_TEXTS as TEXTS   # stored as string datasets
from lammps_adv.recorder.deck import logical_commands

TEXT_STYLES = ("index", "string", "getenv", "loop", "world", "universe", "uloop")


def file_hashes(text: str, variables: dict | None = None) -> dict:
    """sha256 of every existing file a deck names (tokens and -var values)."""
    cands = set()
    for _, _, words in logical_commands(text):
        cands.update(w for w in words[1:] if "$" not in w)
    for vals in (variables or {}).values():
        cands.update(str(v) for v in (vals if isinstance(vals, (list, tuple)) else [vals]))
    return _hash_files(cands)


def variable_file_hashes(lmp, text: str) -> dict:
    """sha256 of every existing file named by the value of a deck's variables, as LAMMPS
    evaluated them (``${potentials_dir}/bks.lmp`` is known only then)."""
    # text styles only: evaluating an equal-style variable may call computes, which are
    # collective, and this runs on rank 0 alone
    names = {words[1] for _, _, words in logical_commands(text)
             if len(words) > 2 and words[0] == "variable" and words[2] in TEXT_STYLES}
    values = set()
    for name in names:
        try:
            value = lmp.extract_variable(name)
        except Exception:  # noqa: BLE001 - a variable LAMMPS cannot evaluate names no file
            continue
        if isinstance(value, str):
            values.add(value)
    return _hash_files(values)


def _hash_files(cands) -> dict:
    out = {}
    for c in sorted(cands):
        p = Path(c)
        try:
            if len(c) < 4096 and p.is_file() and p.stat().st_size < (1 << 30):
                out[str(p)] = file_sha256(p)
        except OSError:
            continue
    return out


def recording_parameters(calculator, provenance: dict, **settings) -> tuple[dict, dict]:
    """(attributes, texts) of a recording's /parameters at its start."""
    attrs = {"reference": calculator.spec, "reference_description": calculator.description,
             "units": "metal", **settings, "lammps_adv_version": __version__,
             "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
             **PARAMETER_UNITS}
    for key in ("variables", "seeds"):
        if key in provenance:
            attrs[key] = json.dumps(provenance[key], sort_keys=True)
    # any other scalar provenance (an experiment's settings) goes in as attributes
    for key, val in provenance.items():
        if key not in attrs and key not in TEXTS and isinstance(val, (str, int, float, bool)):
            attrs[key] = val
    texts = {k: provenance[k] for k in TEXTS if provenance.get(k) is not None}
    return attrs, texts


def run_parameters(lmp, calculator, provenance: dict, approx, species_source, n_atoms) -> dict:
    """Attributes known once the first record exists: the driving model, file hashes."""
    hashes = {**calculator.hashes(), **provenance.get("file_hashes", {})}
    if provenance.get("deck"):
        hashes.update(variable_file_hashes(lmp, provenance["deck"]))
    pair = lmp.extract_global("pair_style") or ""
    ksp = lmp.extract_global("kspace_style") or ""
    approx = approx or f"lammps: pair_style {pair}" + (f", kspace_style {ksp}" if ksp else "")
    return {"approx": approx, "approx_pair_style": pair, "approx_kspace_style": ksp,
            "model_hashes": json.dumps(hashes, sort_keys=True),
            "species_source": species_source, "n_atoms": n_atoms}
