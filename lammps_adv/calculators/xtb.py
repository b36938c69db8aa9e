"""Backend: GFN-xTB through tblite (rank 0), labels cached on disk."""
from __future__ import annotations

import numpy as np

from lammps_adv.calculators.base import Calculator
from lammps_adv.core.configuration import config_key
from lammps_adv.core.errors import CalculatorError, one_line
from lammps_adv.core.specs import ModelSpec
from lammps_adv.io.label_cache import LabelCache, default_root


# spec option (lammps_adv.core.specs.XTB_OPTIONS) -> setting, with its default
XTB_SETTINGS = {"accuracy": ("accuracy", 1.0), "etemp": ("electronic_temperature_K", 300.0),
                "maxiter": ("max_iterations", 250)}


class XtbCalculator(Calculator):
    """GFN-xTB through tblite's Python API (rank 0 of the communicator), 3D periodic.

    Spec: ``xtb:GFN1`` or ``xtb:GFN2``, optionally ``:accuracy=A`` (tblite's accuracy
    factor, lower is tighter; default 1), ``:etemp=K`` (electronic temperature, Fermi
    smearing, default 300 K), ``:maxiter=N`` (SCF iterations, default 250).

    Every configuration starts from a fresh SAD guess (tblite's ASE calculator restarts from
    the previous wavefunction instead): a label is then a function of the configuration
    alone, the same in any order and on any rank, which the label cache and the MPI
    labelling rely on. tblite treats a periodic cell at the Gamma point only (no k-point
    sampling), so small cells carry a finite-size error; ``settings`` and ``description``
    say so in every output. Labels are cached on disk (``label_cache``) unless ``cache`` is
    False; ``n_backend`` counts real tblite evaluations, ``n_cache_hits`` labels read back.
    """

    def __init__(self, model: ModelSpec, comm=None, cache=None):
        super().__init__(comm)
        method = f"{model.target}-xTB"          # the spec's grammar and options: core.specs
        opts = {key: model.options.get(name, default)
                for name, (key, default) in XTB_SETTINGS.items()}
        try:
            from importlib.metadata import version
            import tblite.interface  # noqa: F401
            tb_version = version("tblite")
        except ImportError:
            raise CalculatorError("xtb calculators need tblite: pip install "
                                  "'lammps-adv[xtb]'") from None
        self.spec = model.text
        self.settings = {"method": method, **opts, "charge": 0, "unpaired_electrons": 0,
                         "initial_guess": "SAD, fresh for every configuration",
                         "periodicity": "3D periodic cell",
                         "k_points": "Gamma point only (tblite has no k-point sampling)",
                         "code": f"tblite {tb_version}", "units": "eV, eV/A"}
        self.description = (f"{method} (tblite {tb_version}): accuracy {opts['accuracy']:g}, "
                            f"electronic temperature {opts['electronic_temperature_K']:g} K, "
                            f"at most {opts['max_iterations']} SCF iterations, neutral closed "
                            "shell, 3D periodic, Gamma point only")
        self.n_backend = self.n_cache_hits = 0
        self._cache_choice = cache
        self.cache = None

    def setup(self, symbols) -> None:
        super().setup(symbols)
        if self.cache is None and self._cache_choice is not False:
            root = default_root() if self._cache_choice in (None, True) else self._cache_choice
            if root is not None:
                self.cache = LabelCache(root, self.settings)

    def compute(self, positions, cell):
        key = config_key(self.symbols, positions, cell)
        if self.cache is not None:
            hit = self.cache.get(key, self.symbols, positions, cell)
            if hit is not None:
                self.n_cache_hits += 1
                return hit
        energy, forces = self.single_point(positions, cell)
        self.n_backend += 1
        if self.cache is not None:
            self.cache.put(key, self.symbols, positions, cell, energy, forces)
        return energy, forces

    def single_point(self, positions, cell):
        """tblite on one configuration: (energy eV, forces eV/A), nothing cached."""
        from ase.data import atomic_numbers
        from ase.units import Bohr, Hartree, kB      # the constants tblite's ASE calculator uses
        from tblite.interface import Calculator as TBCalculator
        s = self.settings
        numbers = np.array([atomic_numbers[x] for x in self.symbols], dtype=np.int32)
        try:
            calc = TBCalculator(s["method"], numbers, np.asarray(positions) / Bohr, 0, 0,
                                np.asarray(cell) / Bohr, np.array([True, True, True]))
            calc.set("accuracy", s["accuracy"])
            calc.set("temperature", s["electronic_temperature_K"] * kB / Hartree)
            calc.set("max-iter", s["max_iterations"])
            calc.set("verbosity", 0)
            res = calc.singlepoint()
        except RuntimeError as exc:       # e.g. SCF not converged
            raise CalculatorError(f"tblite: {one_line(exc)}") from None
        return (float(res["energy"]) * Hartree,
                -np.asarray(res["gradient"], dtype=np.float64) * (Hartree / Bohr))
