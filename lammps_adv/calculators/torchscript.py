"""Backend: a TorchScript model of the model contract, evaluated in-process (PyTorch)."""
from __future__ import annotations

from pathlib import Path

from lammps_adv.calculators.base import Calculator
from lammps_adv.core.errors import CalculatorError, ModelError
from lammps_adv.io.files import file_sha256
from lammps_adv.lammps.elements import normalize_symbol
from lammps_adv.models.contract import evaluate, load


class TorchScriptCalculator(Calculator):
    """A TorchScript model of the model contract (docs/plugin.md), evaluated in-process on
    rank 0 by ``lammps_adv.models.contract``: loaded and checked by its ``load`` (the checks
    of the LAMMPS plugin), energy and forces from its ``evaluate`` (the periodic graph with
    images; ``energies_periodic`` when the model exports it, as the graph network does)."""

    def __init__(self, path, comm=None):
        super().__init__(comm)
        self.path = Path(path).resolve()
        self.spec = f"torchscript:{path}"
        try:
            self.model = load(self.path)
        except ModelError as exc:
            raise CalculatorError(str(exc)) from None
        # the element each model species stands for; an element's first species is used
        self.species = tuple(normalize_symbol(s) or s for s in self.model.species)
        self._model_name: dict[str, str] = {}
        for element, name in zip(self.species, self.model.species):
            self._model_name.setdefault(element, name)
        self.description = f"TorchScript model {self.path.name}"

    def hashes(self) -> dict:
        return {str(self.path): file_sha256(self.path)}

    def compute(self, positions, cell):
        names = [self._model_name[s] for s in self.symbols]
        out = evaluate(self.model, positions, cell, names)
        return out["energy"], out["forces"]

    def compute_stress(self, positions, cell):
        # a second model call, with the strain derivative (the energy path stays lean)
        names = [self._model_name[s] for s in self.symbols]
        return evaluate(self.model, positions, cell, names, ("stress",))["stress"]
