"""The TorchScript model contract (docs/plugin.md) in Python: its one checker, its one loader
and its one evaluator, agreeing with what ``pair_style torchscript`` checks and computes.

    m = load("model.pt")                          # read and checked (check_contract)
    out = evaluate(model, positions, cell, species_names)        # {"energy", "forces"}
    out = evaluate(model, positions, cell, names, ("energy", "forces", "stress", "energies"))
    out = evaluate_atoms(model, atoms)            # ase.Atoms

``model`` is a contract module (eager or TorchScript) or the path of an exported ``.pt``.
The input is built by ``periodic_graph``: cell atoms first, then periodic images within the
model's ``receptive_field``; edges within ``cutoff`` (also those centred on images when
receptive_field > cutoff). A model that exports ``energies_periodic`` (the graph network) is
called through it, as the plugin does on one rank: images take their cell atom's state, so
images within the cutoff and edges centred on cell atoms are all it needs. The images are
written as ``positions[image_of] + offsets`` so that autograd folds their forces back onto
the cell atoms. Units: eV, A, eV/A; stress in eV/A^3 with ASE's sign convention
(stress = (1/V) dE/d(strain); positive under tension).

``energy_and_forces`` is the model call itself (contract input -> forward or
energies_periodic -> output checked -> energy sum -> autograd forces); ``evaluate`` and the
trainer's batched ``predict`` both run it.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch

from lammps_adv.core.errors import ModelError
from lammps_adv.models.integrity import CHECKSUM_FILE, archive_problem, checksum_problem
from lammps_adv.models.graph import periodic_graph

PROPERTIES = ("energy", "forces", "stress", "energies")


def plain_execution():
    """Context for calling TorchScript models: the graph executor's optimisations off.

    Its symbolic differentiation splits the backward of softplus into five elementwise
    passes over [edges, width], where eager autograd uses one kernel: the graph network's
    energy + forces take about 8 % less time without it (bench/bench_model_paths.py), and
    no run is spent profiling. Same numbers to rounding. The LAMMPS plugin calls its models
    the same way."""
    return torch.jit.optimized_execution(False)


# ---------------------------------------------------------------------------- the checker
def _number(model, name: str, where: str) -> float:
    """A float attribute as the plugin reads it: a float or an int (not a bool)."""
    value = getattr(model, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelError(f"{where}: attribute '{name}' must be a float, not "
                         f"{type(value).__name__}")
    return float(value)


def check_contract(model, where: str = "model") -> None:
    """The checks of pair_style torchscript at ``pair_coeff`` (its ``load_model``), in its
    order; ModelError naming the first problem. ``where`` names the model in the message."""
    needs = "the model contract needs cutoff: float and species: List[str]; see docs/plugin.md"
    if not hasattr(model, "cutoff"):
        raise ModelError(f"{where} lacks attribute 'cutoff' ({needs})")
    cutoff = _number(model, "cutoff", where)
    if not (cutoff > 0 and math.isfinite(cutoff)):
        raise ModelError(f"{where} has an invalid cutoff {cutoff} (it must be > 0 and finite)")
    if hasattr(model, "receptive_field"):
        rf = _number(model, "receptive_field", where)
        if not (math.isfinite(rf) and rf >= cutoff):
            raise ModelError(f"{where}: receptive_field {rf} must be >= cutoff {cutoff}")
    if not hasattr(model, "species"):
        raise ModelError(f"{where} lacks attribute 'species' ({needs})")
    species = model.species
    if not (isinstance(species, list) and species and all(isinstance(s, str) for s in species)):
        raise ModelError(f"{where}: attribute 'species' must be a non-empty List[str]")
    forward = getattr(model, "forward", None)
    if forward is None or getattr(forward, "__func__", None) is torch.nn.Module.forward:
        raise ModelError(f"{where} has no forward() method")
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.is_floating_point() and t.dtype != torch.float64:
            raise ModelError(f"{where}: parameter or buffer {name} is {t.dtype}, the contract "
                             "needs float64 (call model.double() before export)")


def load(path: str | Path) -> torch.jit.ScriptModule:
    """Read an exported model (TorchScript), check the contract, evaluation mode; ModelError
    for a missing, foreign or non-conforming file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"TorchScript model not found: {path}")
    problem = archive_problem(path)
    if problem:
        raise ModelError(f"TorchScript model {path} is corrupt: {problem}")
    extra = {CHECKSUM_FILE: ""}
    try:
        with warnings.catch_warnings():     # torch 2.13 marks TorchScript deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            m = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds, with pages of text
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load TorchScript model {path}: not a TorchScript model "
                         f"archive (export with torch.jit.script(model).save(path)): "
                         f"{first}") from None
    check_contract(m, f"TorchScript model {path}")
    stored = extra[CHECKSUM_FILE]
    problem = checksum_problem(m, stored.decode() if isinstance(stored, bytes) else stored)
    if problem:
        raise ModelError(f"TorchScript model {path} is corrupt: {problem}")
    m.eval()
    return m


def _check_output(e, n_local: int, n_positions: int, periodic: bool) -> None:
    """What the model returned, checked as the plugin checks it: a float64 tensor with one
    energy per position given (forward) or per cell atom (energies_periodic)."""
    if not isinstance(e, torch.Tensor):
        raise ModelError(f"model returned {type(e).__name__} instead of a Tensor of per-atom "
                         "energies")
    if e.dtype != torch.float64:
        raise ModelError(f"model output has dtype {e.dtype}, the contract needs float64")
    if periodic:
        if tuple(e.shape) != (n_local,):
            raise ModelError(f"energies_periodic output has shape {list(e.shape)}, it needs "
                             f"[{n_local}] (one energy per cell atom)")
    elif tuple(e.shape) != (n_positions,):
        raise ModelError(f"model output has shape {list(e.shape)} for {n_positions} positions "
                         f"({n_local} in the cell); the contract needs [{n_positions}] (one "
                         "energy per position)")


# ---------------------------------------------------------------------------- the input
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


def has_periodic_call(model) -> bool:
    """Whether the model exports ``energies_periodic`` (images take their cell atom's state)."""
    return hasattr(model, "energies_periodic")


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


# ---------------------------------------------------------------------------- the model call
class ModelOutput(NamedTuple):
    energies: torch.Tensor            # [n] energies of the cell atoms (eV)
    energy: torch.Tensor              # scalar, or [n_configs] with batch (eV)
    forces: torch.Tensor | None       # [n, 3] on the cell atoms (eV/A), when asked
    strain_gradient: torch.Tensor | None   # [3, 3] dE/d(strain) (eV), when asked


def energy_and_forces(model, positions, inp: PeriodicInput, periodic: bool,
                      forces: bool = True, stress: bool = False, batch=None,
                      n_configs: int = 1, create_graph: bool = False) -> ModelOutput:
    """The model call of the contract, as the plugin makes it, on ``inp``.

    ``positions`` [n, 3] of the cell atoms become the leaf of autograd; the model gets
    ``positions[image_of] + offsets`` (with stress: times a symmetric strain around the
    identity) and is called through ``energies_periodic`` when ``periodic``, else
    ``forward``; its output is checked; the energy is the sum over the cell atoms (per
    configuration when ``batch`` [n] gives each atom's configuration, for several
    configurations in one input); forces = -dE/dpositions (``create_graph`` keeps their graph,
    for a force loss). The model's training mode is the caller's."""
    pos = torch.as_tensor(positions, dtype=torch.float64)
    if forces:
        pos = pos.detach().requires_grad_(True)
    image_of = torch.from_numpy(inp.image_of)
    ext = pos[image_of] + torch.from_numpy(inp.offsets)
    strain = None
    if stress:
        strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
        ext = ext @ (torch.eye(3, dtype=torch.float64) + 0.5 * (strain + strain.T))
    species = torch.from_numpy(inp.species)[image_of]
    edges = torch.from_numpy(inp.edge_index)
    with plain_execution():
        if periodic:
            e = model.energies_periodic(ext, species, edges, inp.n, image_of)
        else:
            e = model(ext, species, edges, inp.n)
        _check_output(e, inp.n, len(image_of), periodic)
        e = e[:inp.n]
        energy = e.sum() if batch is None else \
            torch.zeros(n_configs, dtype=e.dtype).index_add(0, batch, e)
        wrt = ([pos] if forces else []) + ([strain] if stress else [])
        grads = torch.autograd.grad([energy.sum()], wrt, create_graph=create_graph) \
            if wrt else []
    f = -grads[0] if forces else None
    return ModelOutput(e, energy, f, grads[-1] if stress else None)


def _as_model(model):
    return load(model) if isinstance(model, (str, Path)) else model


def evaluate(model, positions, cell, species_names, properties=("energy", "forces"),
             periodic: bool = True) -> dict:
    """Properties of a periodic configuration, a dict in the order asked: "energy" (eV),
    "forces" [N, 3] (eV/A), "stress" [3, 3] (eV/A^3, ASE sign), "energies" [N] (eV per atom)
    (``e, f = evaluate(...).values()``).
    periodic=False calls ``forward`` on the graph with images even when the model has
    ``energies_periodic`` (as ``pair_style torchscript periodic no``). The model is
    evaluated in evaluation mode; ModelError when its output breaks the contract."""
    unknown = sorted(set(properties) - set(PROPERTIES))
    if unknown:
        raise ValueError(f"unknown properties {', '.join(unknown)}; known: {', '.join(PROPERTIES)}")
    model = _as_model(model)
    periodic = periodic and has_periodic_call(model)
    inp = periodic_input(model, positions, cell, species_names, local_only=periodic)
    was = model.training
    if was:
        model.eval()
    try:
        out = energy_and_forces(model, np.asarray(positions, dtype=np.float64), inp, periodic,
                                forces="forces" in properties, stress="stress" in properties)
    finally:
        if was:
            model.train()
    result = {"energy": float(out.energy.detach())}
    if out.forces is not None:
        result["forces"] = out.forces.detach().numpy()
    if out.strain_gradient is not None:
        volume = abs(float(np.linalg.det(np.asarray(cell, dtype=np.float64))))
        result["stress"] = out.strain_gradient.detach().numpy() / volume
    if "energies" in properties:
        result["energies"] = out.energies.detach().numpy().copy()
    return {k: result[k] for k in properties}


def evaluate_atoms(model, atoms, properties=("energy", "forces"), periodic: bool = True) -> dict:
    """``evaluate`` on an ase.Atoms (positions, cell, chemical symbols)."""
    return evaluate(model, atoms.get_positions(), atoms.cell.array,
                    atoms.get_chemical_symbols(), properties, periodic)
