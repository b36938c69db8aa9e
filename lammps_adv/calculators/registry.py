"""The calculator backend of model specs: ``get_calculator`` picks the backend that evaluates
a spec parsed by the one registry (``lammps_adv.core.specs``).

  bks, bks:pppm, bks-dsf, lammps:FILE   LAMMPS (``LammpsCalculator``, the snippet catalogue)
  torchscript:FILE.pt | torchscript:NAME
                                        PyTorch in-process (``TorchScriptCalculator``)
  xtb:GFN1 | xtb:GFN2[:options]         tblite (``XtbCalculator``)
  ase:MODULE:CLASS[:NAME=VALUE]...      an ASE calculator (``AseCalculator``); an ASE
                                        calculator instance is taken as it is
  labels:FILE.h5                        stored labels (``LabelsCalculator``)

A TorchScript model has two backends: it drives LAMMPS through the plugin's ``pair_style
torchscript`` (``lammps_adv.lammps.snippets``), while as a calculator, evaluated on given
configurations, it runs in-process: no LAMMPS instance per model and no MPI collective.
Both evaluate the same model contract and agree to round-off
(tests/integration/test_spec_backends.py).
"""
from __future__ import annotations

import importlib

from lammps_adv.calculators.base import Calculator
from lammps_adv.core import specs
from lammps_adv.core.errors import CalculatorError, PotentialError
from lammps_adv.io.resources import shipped_model
from lammps_adv.lammps import snippets


def get_calculator(spec, comm=None) -> Calculator:
    """The calculator named by a spec string (see the module docstring); a ``Calculator``
    is returned as it is, and an ASE calculator instance (``LennardJones(sigma=2.0)``) is
    wrapped as a reference (rank 0 evaluates it)."""
    if isinstance(spec, Calculator):
        return spec
    if _is_ase_calculator(spec):
        from lammps_adv.calculators.ase import AseCalculator
        cls = type(spec)
        return AseCalculator(spec_text(spec), lambda: spec,
                             f"ASE calculator {cls.__module__}.{cls.__name__} (an instance)",
                             comm=comm)
    try:
        model = specs.parse(spec)
        path = specs.model_file(model, shipped_model) if model.kind == "torchscript" else None
    except PotentialError as exc:
        raise CalculatorError(str(exc)) from None
    # backends are imported when named: torch, tblite and LAMMPS load only when used
    if model.kind == "torchscript":
        from lammps_adv.calculators.torchscript import TorchScriptCalculator
        calc = TorchScriptCalculator(path, comm=comm)
        calc.spec = model.text           # a shipped model's bare name stays its name
        return calc
    if model.kind == "labels":
        from lammps_adv.calculators.labels import LabelsCalculator
        return LabelsCalculator(model.target, comm=comm)
    if model.kind == "xtb":
        from lammps_adv.calculators.xtb import XtbCalculator
        return XtbCalculator(model, comm=comm)
    if model.kind == "ase":
        module, cls_name = model.target, model.options["class"]
        try:
            cls = getattr(importlib.import_module(module), cls_name)
        except (ImportError, AttributeError) as exc:
            raise CalculatorError(f"cannot import ASE calculator {module}.{cls_name}: "
                                  f"{exc}") from None
        kwargs = dict(model.options.get("kwargs", {}))

        def build():
            try:
                return cls(**kwargs)
            except TypeError as exc:          # an argument the class does not take
                raise CalculatorError(f"cannot build ASE calculator {module}.{cls_name} with "
                                      f"{kwargs}: {exc}") from None
        from lammps_adv.calculators.ase import AseCalculator
        return AseCalculator(model.text, build, f"ASE calculator {module}.{cls_name}",
                             comm=comm)
    if model.kind in snippets.KINDS:
        from lammps_adv.calculators.lammps import LammpsCalculator
        return LammpsCalculator(model.text, comm=comm)
    raise CalculatorError(f"{model}: no calculator backend for kind {model.kind!r}")


def spec_text(model) -> str:
    """The spec string of a model given as a spec, a ``Calculator`` or an ASE calculator
    instance ("ase:MODULE:CLASS"): what files record as its name."""
    if isinstance(model, Calculator):
        return model.spec
    if _is_ase_calculator(model):
        return f"ase:{type(model).__module__}:{type(model).__name__}"
    return str(model)


def _is_ase_calculator(obj) -> bool:
    """An ASE calculator instance (without importing ASE when none was given)."""
    return not isinstance(obj, str) and callable(getattr(obj, "get_potential_energy", None)) \
        and callable(getattr(obj, "calculate", None))
