"""Build, export (TorchScript) and load models under the model contract.

An exported file is a TorchScript module with ``cutoff: float``, ``species: List[str]``,
``receptive_field: float`` and ``forward(positions, species, edge_index, n_local)``; the
hyper-parameters travel with it as the string attribute ``hparams`` (JSON) and as the extra
file ``hparams.json`` inside the archive.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from lammps_adv.core.errors import ModelError  # noqa: F401 (raised here, re-exported)
from lammps_adv.io.files import file_sha256
from lammps_adv.io.model_card import card_paths, write_model_card
from lammps_adv.plugin.kernels import load_kernels

MODEL_KINDS = ("bp", "gnn")


def build_model(kind: str, **kwargs) -> torch.nn.Module:
    """A fresh eager model: kind 'bp' (BehlerParrinello) or 'gnn' (GraphNetwork)."""
    if kind == "bp":
        from lammps_adv.models.bp import BehlerParrinello
        kwargs.pop("kind", None)
        return BehlerParrinello(**kwargs)
    if kind == "gnn":
        from lammps_adv.models.gnn import GraphNetwork
        kwargs.pop("kind", None)
        return GraphNetwork(**kwargs)
    raise ModelError(f"unknown model kind {kind!r}; known: {', '.join(MODEL_KINDS)}")


def plain_execution():
    """Context for calling TorchScript models: the graph executor's optimisations off.

    Its symbolic differentiation splits the backward of softplus into five elementwise
    passes over [edges, width], where eager autograd uses one kernel: the graph network's
    energy + forces take about 8 % less time without it (bench/bench_model_paths.py), and
    no run is spent profiling. Same numbers to rounding. The LAMMPS plugin calls its models
    the same way."""
    return torch.jit.optimized_execution(False)


def model_from_hparams(hparams: str | dict) -> torch.nn.Module:
    hp = json.loads(hparams) if isinstance(hparams, str) else dict(hparams)
    return build_model(hp.pop("kind"), **hp)


def script(model: torch.nn.Module) -> torch.jit.ScriptModule:
    """TorchScript version of an eager model (in evaluation mode)."""
    was = model.training
    model.eval()
    try:
        with warnings.catch_warnings():   # torch 2.13 marks TorchScript deprecated; the
            warnings.simplefilter("ignore", DeprecationWarning)   # plugin needs it
            return torch.jit.script(model)
    finally:
        model.train(was)


def export(model: torch.nn.Module, path: str | Path) -> Path:
    """Script the model and save it to ``path``; returns the path."""
    path = Path(path)
    sm = script(model) if not isinstance(model, torch.jit.ScriptModule) else model
    check_contract(sm, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"hparams.json": getattr(sm, "hparams", "{}")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(sm, str(path), _extra_files=extra)
    return path


def load(path: str | Path) -> torch.jit.ScriptModule:
    """Load an exported model (TorchScript) and check the contract; clear errors."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    load_kernels()          # a model file may call torch.ops.lammps_adv.*
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            m = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError with pages of text
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path} is not a TorchScript model: {first}") from exc
    check_contract(m, str(path))
    m.eval()
    return m


def reexport(src: str | Path, dst: str | Path) -> Path:
    """Export the model in file ``src`` again with this version's code (same weights and
    hyper-parameters), e.g. a Behler-Parrinello file from before the fused kernel, which
    keeps its old (slower) code when loaded. Updates the model card next to ``dst``
    (``.card.json`` and ``.card.md``: file hash and size) when there is one."""
    old = load(src)
    model = model_from_hparams(old.hparams)
    model.load_state_dict(old.state_dict())
    out = export(model, dst)
    card = card_paths(out)[0]
    if card.is_file():
        info = json.loads(card.read_text())
        info.update(sha256=file_sha256(out), size_bytes=out.stat().st_size)
        write_model_card(out, info)
    return out


def check_contract(m, where: str = "model") -> None:
    for attr, typ in (("cutoff", float), ("species", list)):
        if not hasattr(m, attr):
            raise ModelError(f"{where}: the model has no attribute {attr!r} (model contract)")
        if not isinstance(getattr(m, attr), typ):
            raise ModelError(f"{where}: attribute {attr!r} must be a {typ.__name__}")
    if not m.cutoff > 0:
        raise ModelError(f"{where}: cutoff must be > 0, got {m.cutoff}")
    rf = getattr(m, "receptive_field", m.cutoff)
    if rf < m.cutoff:
        raise ModelError(f"{where}: receptive_field {rf} < cutoff {m.cutoff}")
