"""Every energy model behind one small interface: energy + forces of a configuration.

A spec string names the model (``lammps_adv.core.specs``, the one registry: grammar and
catalogue); ``get_calculator(spec)`` picks the backend that evaluates it
(``calculators.registry``):
  bks, bks:pppm, bks-dsf, lammps:FILE   a LAMMPS potential (lammps_adv.lammps.snippets), run
                                        in a private LAMMPS instance on the communicator
  torchscript:FILE.pt | torchscript:NAME
                                        a TorchScript model of the model contract (a file or
                                        a shipped model by name), evaluated in-process
                                        (PyTorch, float64); in LAMMPS the same spec runs
                                        through the plugin's pair_style torchscript
  xtb:GFN1 | xtb:GFN2[:accuracy=A][:etemp=K][:maxiter=N]
                                        GFN-xTB through tblite (rank 0), labels cached on
                                        disk (lammps_adv.io.label_cache)
  ase:MODULE:CLASS[:NAME=VALUE]...      any ASE calculator class with keyword arguments,
                                        e.g. ``ase:ase.calculators.lj:LennardJones:sigma=2.0``;
                                        ``get_calculator`` also takes an ASE calculator
                                        instance
  labels:FILE.h5                        energies and forces stored in a dataset file

The interface (``Calculator``), as ASE's calculators share theirs:

* ``evaluate(positions, cell, symbols=None, label=None) -> (energy_eV, forces_eV_per_A)``
  with positions [N, 3] (A, Cartesian, any origin) of one periodic cell whose edge vectors
  are the rows of ``cell``. ``symbols`` (element of every atom) is needed once, or whenever
  it changes; ``label`` names the configuration in error messages.
* Collective over the calculator's communicator: every rank calls it, inputs are read on
  rank 0, and the result is returned on every rank.
* Results are cached per configuration (symbols, cell and positions, bit for bit): asking
  again for the last configuration computes nothing.
* Every result is validated here, in ``_validated``, whatever the model: a finite energy,
  forces of shape [N, 3] that are all finite, returned as float64. A failure raises
  ``CalculatorError`` naming the model and the configuration.

The other way round, ``ase_calculator(spec)`` (``calculators.for_ase``) makes any of these
an ASE calculator (``atoms.calc = ...``) for ASE's optimizers and MD; ``Calculator.as_ase()``
does the same for a calculator in hand.

A backend implements one method, ``compute(positions, cell) -> (energy, forces)``, with
``self.symbols`` set. Backends that run on rank 0 only (TorchScript, ASE, stored labels)
keep ``collective = False``; LAMMPS runs on every rank of the communicator
(``collective = True``).
"""
from lammps_adv.calculators.base import Calculator  # noqa: F401
from lammps_adv.calculators.registry import get_calculator, spec_text  # noqa: F401


def ase_calculator(model, **kwargs):
    """A spec string or ``Calculator`` as an ASE calculator (``calculators.for_ase``)."""
    from lammps_adv.calculators.for_ase import LammpsAdvCalculator     # ASE when used
    return LammpsAdvCalculator(get_calculator(model), **kwargs)
