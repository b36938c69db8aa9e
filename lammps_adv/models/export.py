"""Build and export (TorchScript) models under the model contract.

An exported file is a TorchScript module with ``cutoff: float``, ``species: List[str]``,
``receptive_field: float`` and ``forward(positions, species, edge_index, n_local)``; the
hyper-parameters travel with it as the string attribute ``hparams`` (JSON) and as the extra
file ``hparams.json`` inside the archive, a checksum of its parameters and buffers as the
extra file ``parameters.crc32`` (``models.integrity``). Checking and loading a file: ``models.contract``.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from lammps_adv.core.errors import ModelError
from lammps_adv.io.files import file_sha256
from lammps_adv.io.model_card import card_paths, write_model_card
from lammps_adv.models.bp import BehlerParrinello
from lammps_adv.models.contract import check_contract, load
from lammps_adv.models.gnn import GraphNetwork
from lammps_adv.models.integrity import save

MODEL_KINDS = ("bp", "gnn")


def build_model(kind: str, **kwargs) -> torch.nn.Module:
    """A fresh eager model: kind 'bp' (BehlerParrinello) or 'gnn' (GraphNetwork)."""
    if kind == "bp":
        kwargs.pop("kind", None)
        return BehlerParrinello(**kwargs)
    if kind == "gnn":
        kwargs.pop("kind", None)
        return GraphNetwork(**kwargs)
    raise ModelError(f"unknown model kind {kind!r}; known: {', '.join(MODEL_KINDS)}")


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
    check_contract(sm, f"model {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(sm, path, {"hparams.json": getattr(sm, "hparams", "{}")})


KEEP = "keep"


def eager_copy(sm: torch.jit.ScriptModule, repulsion: dict | None | str = KEEP) -> torch.nn.Module:
    """The eager model with the weights of an exported one (``load``ed), e.g. to train on
    from a shipped file; ``repulsion`` as for ``reexport``."""
    hp = json.loads(sm.hparams)
    if repulsion != KEEP:
        hp["repulsion"] = repulsion
    model = model_from_hparams(hp)
    # a scripted module lists the baseline's (non-persistent) buffers in its state dict: they
    # come from the hyper-parameters instead
    model.load_state_dict({k: v for k, v in sm.state_dict().items()
                           if not k.startswith("repulsion.")})
    return model


def reexport(src: str | Path, dst: str | Path, repulsion: dict | None | str = KEEP) -> Path:
    """Export the model in file ``src`` again with this version's code (same weights and
    hyper-parameters), e.g. a Behler-Parrinello file from before the fused kernel, which
    keeps its old (slower) code when loaded. ``repulsion``: the repulsive baseline of the
    new file (``models.repulsion.baseline_hparams``; None: none; default: the source's).
    The network's weights are never changed. Updates the model card next to ``dst``
    (``.card.json`` and ``.card.md``: file hash, size, hyper-parameters) when there is one."""
    model = eager_copy(load(src), repulsion)
    hp = json.loads(model.hparams)
    out = export(model, dst)
    card = card_paths(out)[0]
    if card.is_file():
        info = json.loads(card.read_text())
        info.update(sha256=file_sha256(out), size_bytes=out.stat().st_size)
        info["model"] = {**info.get("model", {}), "repulsion": hp.get("repulsion")}
        write_model_card(out, info)
    return out
