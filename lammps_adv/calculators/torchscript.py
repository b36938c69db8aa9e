"""Backend: a TorchScript model of the model contract, evaluated in-process (PyTorch)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from lammps_adv.calculators.base import Calculator
from lammps_adv.core.errors import CalculatorError, one_line
from lammps_adv.io.files import file_sha256
from lammps_adv.lammps.elements import normalize_symbol
from lammps_adv.models.export import plain_execution
from lammps_adv.models.graph import periodic_graph
from lammps_adv.plugin.kernels import load_kernels


class TorchScriptCalculator(Calculator):
    """A TorchScript model of the model contract (docs/plugin.md), evaluated in-process on rank 0.

    The periodic graph is built with ``lammps_adv.models.graph.periodic_graph`` (images within
    the receptive field; edges centred on images too when receptive_field > cutoff); the
    energy is the sum of the per-atom energies of the N cell atoms; forces are the negative
    gradient with respect to all positions, images folded back onto their atoms. A model that
    also exports ``energies_periodic(positions, species, edges, n, image_of)`` (the graph
    network) is called through it: images take their cell atom's state, so only edges
    centred on cell atoms within the cutoff are needed.
    """

    def __init__(self, path, comm=None):
        super().__init__(comm)
        self.path = Path(path).resolve()
        self.spec = f"torchscript:{path}"
        if not self.path.is_file():
            raise CalculatorError(f"TorchScript model not found: {self.path}")
        load_kernels()          # the model may call torch.ops.lammps_adv.*
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                model = torch.jit.load(str(self.path), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
            raise CalculatorError(f"cannot load TorchScript model {self.path}: "
                                  f"{one_line(exc)}") from None
        for attr in ("cutoff", "species"):
            if not hasattr(model, attr):
                raise CalculatorError(f"TorchScript model {self.path.name} lacks attribute "
                                      f"{attr!r} (see the model contract in docs/plugin.md)")
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.is_floating_point() and t.dtype != torch.float64:
                raise CalculatorError(f"TorchScript model {self.path.name}: parameter or buffer "
                                      f"{name} is {t.dtype}, the contract needs float64")
        self.model = model
        self.cutoff = float(model.cutoff)
        self.receptive_field = float(getattr(model, "receptive_field", self.cutoff))
        self.periodic = hasattr(model, "energies_periodic")     # the graph network's shortcut
        if not (self.cutoff > 0 and np.isfinite(self.cutoff)):
            raise CalculatorError(f"TorchScript model {self.path.name}: cutoff {self.cutoff} A")
        self.species = tuple(normalize_symbol(s) or s for s in model.species)
        self.description = f"TorchScript model {self.path.name}"

    def hashes(self) -> dict:
        return {str(self.path): file_sha256(self.path)}

    def compute(self, positions, cell):
        n = len(positions)
        # with energies_periodic images take their cell atom's state: images within the
        # cutoff and edges centred on cell atoms are all it needs
        halo = self.cutoff if self.periodic else max(self.receptive_field, self.cutoff)
        ext, image_of, edges = periodic_graph(positions, cell, self.cutoff, halo=halo,
                                              ghost_edges=halo > self.cutoff)
        spec_idx = np.array([self.species.index(s) for s in self.symbols], dtype=np.int64)
        x = torch.tensor(ext, dtype=torch.float64, requires_grad=True)
        args = (x, torch.from_numpy(spec_idx[image_of]),
                torch.from_numpy(np.ascontiguousarray(edges, dtype=np.int64)), n)
        with plain_execution():
            if self.periodic:
                e_atoms = self.model.energies_periodic(
                    *args, torch.from_numpy(np.ascontiguousarray(image_of, dtype=np.int64)))
            else:
                e_atoms = self.model(*args)
        self._check_energies(e_atoms, n, len(ext))
        energy = e_atoms[:n].sum()
        (grad,) = torch.autograd.grad(energy, x)
        forces = np.zeros((n, 3))
        np.add.at(forces, image_of, -grad.detach().numpy())
        return energy.detach().numpy(), forces

    def _check_energies(self, e_atoms, n, n_positions):
        """One float64 energy per cell atom (energies_periodic) or, the contract as the plugin
        checks it, per position given (cell atoms and their images)."""
        if self.periodic:
            if not isinstance(e_atoms, torch.Tensor) or tuple(e_atoms.shape) != (n,) or \
                    e_atoms.dtype != torch.float64:
                raise CalculatorError(f"{self.spec}: energies_periodic must return one float64 "
                                      f"energy per cell atom, shape [{n}]")
            return
        if not isinstance(e_atoms, torch.Tensor) or tuple(e_atoms.shape) != (n_positions,):
            shape = list(e_atoms.shape) if isinstance(e_atoms, torch.Tensor) else type(e_atoms).__name__
            raise CalculatorError(f"{self.spec}: model output has shape {shape} for {n_positions} "
                                  f"positions ({n} in the cell); the contract is one energy per "
                                  f"position, shape [{n_positions}]")
        if e_atoms.dtype != torch.float64:
            raise CalculatorError(f"{self.spec}: model output has dtype {e_atoms.dtype}, the "
                                  "contract needs float64")
