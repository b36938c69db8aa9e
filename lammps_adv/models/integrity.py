"""Integrity of a model file, checked by every load (``models.contract.load``) as
pair_style torchscript checks it (lammps_adv/plugin/model_integrity.cpp): the CRC-32 of
every member of the zip archive, which ``torch.jit.load`` does not check, and the checksum
of the parameters and buffers that ``models.export`` stores in the archive as the extra
file ``parameters.crc32``. Models exported elsewhere have no checksum and load as they are.
"""
from __future__ import annotations

import warnings
import zipfile
import zlib
from pathlib import Path

import torch

CHECKSUM_FILE = "parameters.crc32"


def parameter_checksum(module) -> str:
    """'crc32:xxxxxxxx' over the parameters and buffers in name order: each name (UTF-8),
    then the tensor's bytes (contiguous, on the CPU)."""
    tensors = dict(module.named_parameters())
    tensors.update(module.named_buffers())
    crc = 0
    for name in sorted(tensors):
        crc = zlib.crc32(name.encode(), crc)
        t = tensors[name].detach().cpu().contiguous().reshape(-1)
        crc = zlib.crc32(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"", crc)
    return f"crc32:{crc:08x}"


def save(module: torch.jit.ScriptModule, path: str | Path, extra_files: dict | None = None) -> Path:
    """Write a scripted module to ``path`` with its parameters' checksum (and any other
    extra files): how every model the project exports is written."""
    extra = {**(extra_files or {}), CHECKSUM_FILE: parameter_checksum(module)}
    with warnings.catch_warnings():     # torch 2.13 marks TorchScript deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(module, str(path), _extra_files=extra)
    return Path(path)


def archive_problem(path: str | Path) -> str | None:
    """None when every member of the zip archive matches its CRC-32 (or the file is no zip
    archive: loading names that); else what does not, on one line."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile:
        return None
    except (OSError, EOFError, ValueError) as exc:     # truncated inside a member, ...
        return f"the archive cannot be read ({exc})"
    if bad is not None:
        return f"member {bad} fails its CRC-32 check (the file is corrupt)"
    return None


def checksum_problem(module, stored: str) -> str | None:
    """None when no checksum was stored or it matches the module's; else the mismatch."""
    if not stored:
        return None
    found = parameter_checksum(module)
    if found != stored:
        return (f"its parameters' checksum {found} differs from the {stored} stored at "
                "export")
    return None
