"""Evaluate any contract model on a periodic configuration in Python.

    energy, forces = evaluate(model, positions, cell, species_names)
    energy, forces, stress = evaluate(model, positions, cell, species_names, stress=True)
    energy, forces = evaluate_atoms(model, atoms)          # ase.Atoms

``model`` is a contract module (eager or TorchScript) or the path of an exported ``.pt``.
The input is built by ``periodic_graph``: cell atoms first, then periodic images within the
model's ``receptive_field``; edges within ``cutoff`` (also those centred on images when
receptive_field > cutoff). The images are written as ``positions[image_of] + offsets`` so
that autograd folds their forces back onto the cell atoms. Units: eV, A, eV/A; stress in
eV/A^3 with ASE's sign convention (stress = (1/V) dE/d(strain); positive under tension).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from lammps_adv.models.export import plain_execution
from lammps_adv.models.graph import periodic_graph


@dataclass
class PeriodicInput:
    """One configuration in contract form; ``ext = positions[image_of] + offsets``."""
    n: int                    # atoms of the cell (the local atoms)
    image_of: np.ndarray      # int64 [M], M >= n; image_of[:n] = arange(n)
    offsets: np.ndarray       # float64 [M, 3]
    edge_index: np.ndarray    # int64 [2, E]
    species: np.ndarray       # int64 [n], indices into model.species


def model_species(model) -> list[str]:
    return [str(s) for s in model.species]


def species_indices(species: Sequence[str], names) -> np.ndarray:
    """Indices into ``species`` of each name in ``names``; ValueError for unknown names."""
    species = list(species)
    names = [str(s) for s in names]
    lookup = {s: i for i, s in enumerate(species)}
    unknown = sorted(set(names) - set(lookup))
    if unknown:
        raise ValueError(f"unknown species {', '.join(unknown)} (the model knows "
                         f"{', '.join(species)})")
    return np.array([lookup[s] for s in names], dtype=np.int64)


def periodic_input(model, positions, cell, species_names,
                   local_only: bool = False) -> PeriodicInput:
    """Contract input of a periodic configuration. local_only: images within the cutoff
    and edges centred on cell atoms only (for a model's ``energies_periodic``)."""
    pos = np.asarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"positions must be [N, 3], got shape {pos.shape}")
    if cell.shape != (3, 3):
        raise ValueError(f"cell must be 3x3 (rows a, b, c), got shape {cell.shape}")
    if abs(np.linalg.det(cell)) < 1e-9:
        raise ValueError("cell is singular (zero volume); a periodic cell is needed")
    if len(species_names) != len(pos):
        raise ValueError(f"{len(species_names)} species names for {len(pos)} positions")
    sp = species_indices(model_species(model), species_names)
    cutoff = float(model.cutoff)
    rf = float(getattr(model, "receptive_field", cutoff))
    if local_only:
        rf = cutoff
    ext, image_of, edges = periodic_graph(pos, cell, cutoff, halo=rf,
                                          ghost_edges=rf > cutoff + 1e-12)
    offsets = ext - pos[image_of]
    return PeriodicInput(len(pos), image_of.astype(np.int64), offsets,
                         edges.astype(np.int64), sp)


def _as_model(model):
    if isinstance(model, (str, Path)):
        from lammps_adv.models.export import load
        return load(model)
    return model


def evaluate(model, positions, cell, species_names, stress: bool = False):
    """Energy (eV) and forces [N, 3] (eV/A) of a periodic configuration; with stress=True
    also the stress [3, 3] (eV/A^3). The model is evaluated in evaluation mode."""
    model = _as_model(model)
    inp = periodic_input(model, positions, cell, species_names)
    pos = torch.tensor(np.asarray(positions, dtype=np.float64), requires_grad=True)
    strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=stress)
    deform = torch.eye(3, dtype=torch.float64) + 0.5 * (strain + strain.T)
    image_of = torch.from_numpy(inp.image_of)
    ext = (pos[image_of] + torch.from_numpy(inp.offsets)) @ deform
    species_ext = torch.from_numpy(inp.species)[image_of]
    was = model.training
    model.eval()
    try:
        with plain_execution():
            e = model(ext, species_ext, torch.from_numpy(inp.edge_index), inp.n)
            energy = e[:inp.n].sum()
            wrt = [pos, strain] if stress else [pos]
            grads = torch.autograd.grad([energy], wrt)
    finally:
        model.train(was)
    forces = -grads[0].detach().numpy()
    if not stress:
        return float(energy.detach()), forces
    volume = abs(float(np.linalg.det(np.asarray(cell, dtype=np.float64))))
    return float(energy.detach()), forces, grads[1].detach().numpy() / volume


def evaluate_atoms(model, atoms, stress: bool = False):
    """``evaluate`` on an ase.Atoms (positions, cell, chemical symbols)."""
    return evaluate(model, atoms.get_positions(), atoms.cell.array,
                    atoms.get_chemical_symbols(), stress=stress)
