"""The one registry of model specs: a spec string names a model; ``get_calculator`` builds
the calculator that evaluates it."""
from __future__ import annotations

import importlib

from lammps_adv.calculators.base import Calculator
from lammps_adv.core.errors import CalculatorError
from lammps_adv.lammps import snippets


def names() -> list[str]:
    out = [n for n in snippets.names() if not n.startswith("torchscript:")]
    return out + ["torchscript:FILE.pt", "xtb:GFN1", "xtb:GFN2", "ase:MODULE:CLASS",
                  "labels:FILE.h5"]


def get_calculator(spec, comm=None) -> Calculator:
    """The calculator named by a spec string (see the module docstring); a ``Calculator``
    is returned as it is."""
    if isinstance(spec, Calculator):
        return spec
    if not isinstance(spec, str) or not spec:
        raise CalculatorError(f"empty model spec; known: {', '.join(names())}")
    kind, _, rest = spec.partition(":")
    # backends are imported when named: torch, tblite and LAMMPS load only when used
    if kind == "torchscript":
        from lammps_adv.calculators.torchscript import TorchScriptCalculator
        return TorchScriptCalculator(rest, comm=comm)
    if kind == "labels":
        from lammps_adv.calculators.labels import LabelsCalculator
        return LabelsCalculator(rest, comm=comm)
    if kind == "xtb":
        from lammps_adv.calculators.xtb import XtbCalculator
        return XtbCalculator(spec, comm=comm)
    if kind == "ase":
        parts = spec.split(":")
        if len(parts) != 3:
            raise CalculatorError(f"ase calculator spec must be ase:MODULE:CLASS, got {spec!r}")
        try:
            cls = getattr(importlib.import_module(parts[1]), parts[2])
        except (ImportError, AttributeError) as exc:
            raise CalculatorError(f"cannot import ASE calculator {parts[1]}.{parts[2]}: "
                                  f"{exc}") from None
        from lammps_adv.calculators.ase import AseCalculator
        return AseCalculator(spec, cls, f"ASE calculator {parts[1]}.{parts[2]}", comm=comm)
    from lammps_adv.calculators.lammps import LammpsCalculator
    try:
        return LammpsCalculator(spec, comm=comm)
    except CalculatorError as exc:
        raise CalculatorError(f"unknown model spec {spec!r}; known: {', '.join(names())}"
                              if "unknown potential" in str(exc) else str(exc)) from None
