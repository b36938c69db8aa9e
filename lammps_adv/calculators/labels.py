"""Backend: energies and forces stored in a dataset file (e.g. DFT labels)."""
from __future__ import annotations

from pathlib import Path

from lammps_adv.calculators.base import Calculator
from lammps_adv.core.configuration import config_key
from lammps_adv.core.errors import CalculatorError
from lammps_adv.io.dataset import load as load_dataset
from lammps_adv.io.files import file_sha256


class LabelsCalculator(Calculator):
    """Energies and forces stored in a dataset file, looked up by configuration (bit-exact
    symbols, cell and positions): experiments on stored (e.g. DFT) labels, no live model."""

    def __init__(self, path, comm=None):
        super().__init__(comm)
        self.path = Path(path)
        self.spec = f"labels:{path}"
        if not self.path.is_file():
            raise CalculatorError(f"label file not found: {self.path}")
        self._index = None
        self.description = f"stored labels of {self.path.name}"

    def hashes(self) -> dict:
        return {str(self.path.resolve()): file_sha256(self.path)}

    def _load(self):
        ds = load_dataset(self.path)
        if ds.forces is None:
            raise CalculatorError(f"{self.path} stores no forces: labels:FILE needs energies "
                                  "and forces")
        self._ds = ds
        gen = ds.attrs.get("generator") or {}
        labelled_by = ds.attrs.get("reference", "unknown")
        detail = gen.get("reference_description") if isinstance(gen, dict) else None
        self.description = (f"stored labels of {self.path.name}, labelled by {labelled_by}"
                            + (f" ({detail})" if detail else ""))
        self._index = {}
        for i in range(len(ds)):
            c = ds.config(i)
            self._index[config_key(c["names"], c["positions"], c["cell"])] = i
        self.species = tuple(ds.species)

    def setup(self, symbols) -> None:
        if self._index is None and self.rank == 0:
            self._load()
        super().setup(symbols)

    def compute(self, positions, cell):
        i = self._index.get(config_key(self.symbols, positions, cell))
        if i is None:
            raise CalculatorError(f"this configuration is not among the {len(self._index)} "
                                  f"stored in {self.path} (stored labels cover only those "
                                  "configurations, bit for bit: displaced or relaxed ones need "
                                  "a live reference; for cos(theta) alone run the probe with "
                                  "--epsilon 0 --random 0)")
        c = self._ds.config(i)
        return c["energy"], c["forces"]
