"""The main job (`make demo`, `lammps-adv demo`): the study at small scale.

Stages so far: a BKS silica glass by melt-quench in LAMMPS, its minimization, and the
energies of the glass and of alpha-quartz under both silica potentials of the catalogue.
"""
from __future__ import annotations

import time
from pathlib import Path

from lammps_adv.engine import is_root

SCALES = {  # atoms, melt ps, quench ps
    "small": (192, 5.0, 10.0),
    "full": (3000, 10.0, 20.0),
}


def _say(msg: str) -> None:
    if is_root():
        print(msg, flush=True)


class Stage:
    """Prints a numbered progress line and the stage's wall time."""

    def __init__(self, number: int, total: int, title: str):
        self.label = f"[{number}/{total}] {title}"

    def __enter__(self):
        _say(self.label + " ...")
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            _say(f"{self.label}: done in {time.perf_counter() - self.t0:.1f} s")


def run_demo(out: str | Path = "out/demo", scale: str = "small") -> Path:
    from lammps_adv.structures import amorphous, density, quartz
    from lammps_adv.system import LammpsSystem

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_atoms, melt_ps, quench_ps = SCALES[scale]
    total = 2
    with Stage(1, total, f"melt-quench a {n_atoms}-atom SiO2 glass with BKS (Ewald), "
                         f"{melt_ps:g} ps at 5000 K, {quench_ps:g} ps quench, minimize"):
        glass_file = out / "glass_bks.data"
        glass = amorphous(n_atoms, potential="bks", out=glass_file, melt_ps=melt_ps,
                          quench_ps=quench_ps)
        _say(f"      {glass_file}: {len(glass)} atoms, {density(glass):.3f} g/cm^3")
    with Stage(2, total, "energies of the glass and of alpha-quartz (eV/atom)"):
        q = quartz(3, 2, 3)
        for spec in ("bks", "bks-dsf"):
            with LammpsSystem(glass_file, spec) as s:
                e_glass = s.energy_forces()[0] / s.natoms
            with LammpsSystem(q, spec) as s:
                e_quartz = s.energy_forces()[0] / s.natoms
            _say(f"      {spec:8s} glass {e_glass:.5f}  quartz {e_quartz:.5f}  "
                 f"glass - quartz {1000 * (e_glass - e_quartz):.1f} meV/atom")
    _say(f"outputs in {out.resolve()}")
    return out
