"""``lammps-adv run``: an unmodified LAMMPS deck, recorded."""
from __future__ import annotations

from pathlib import Path

from lammps_adv.calculators import get_calculator
from lammps_adv.core.errors import RecorderError
from lammps_adv.io.resources import find_deck, shipped_decks
from lammps_adv.lammps.engine import open_lammps
from lammps_adv.recorder.provenance import file_hashes
from lammps_adv.recorder.recorder import Recorder


def run_deck(deck, reference, out="run.h5md", every: int = 1, frames_every: int = 100,
             variables: dict | None = None, species=None, append: bool = False,
             overwrite: bool = False, approx: str | None = None, flush_every: int = 100,
             flush_seconds: float = 5.0, progress: bool = True, screen: bool = False,
             log: str | None = None, command_line: str | None = None, alignment=None,
             comm=None) -> int:
    """Run an unmodified LAMMPS deck with recording (what ``lammps-adv run`` does).

    Returns the number of records written (on rank 0; 0 elsewhere).
    """
    found = find_deck(deck)
    if found is None:
        raise RecorderError(f"deck not found: {deck} (shipped decks, by name from any "
                            f"folder: {', '.join(shipped_decks())})")
    deck = found
    # as `lmp -var NAME VALUE...` takes them: strings (a Path, a number from Python too)
    variables = {name: [str(v) for v in vals] if isinstance(vals, (list, tuple)) else str(vals)
                 for name, vals in (variables or {}).items()}
    args = []
    for name, vals in variables.items():
        args += ["-var", name] + (vals if isinstance(vals, list) else [vals])
    text = deck.read_text()
    prov = {"deck": text, "deck_path": str(deck.resolve()), "command_line": command_line,
            "variables": variables,
            "seeds": {k: v for k, v in variables.items() if "seed" in k.lower()},
            "file_hashes": file_hashes(text, variables)}
    calculator = get_calculator(str(reference) if isinstance(reference, Path) else reference,
                                comm=comm)
    lmp = open_lammps(comm=comm, screen=screen, log=log, args=args)
    try:
        with Recorder(lmp, calculator, out=out, every=every, frames_every=frames_every,
                      flush_every=flush_every, flush_seconds=flush_seconds, append=append,
                      overwrite=overwrite, species=species, approx=approx, provenance=prov,
                      progress=progress, alignment=alignment, comm=comm) as rec:
            rec.file(deck)
        return rec.n_records
    finally:
        calculator.close()
        lmp.close()
