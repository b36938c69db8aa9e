"""One spec, two backends: a shipped TorchScript model named by its bare name
(``torchscript:gnn_bks_dsf``) drives LAMMPS through the plugin (``LammpsSystem``) and is a
calculator in-process in PyTorch (``get_calculator``); both resolve the same file and give
the same energy and forces. The CLI lists shipped models and refuses, in one line, a spec
that cannot drive LAMMPS."""
import numpy as np
import pytest

from conftest import BIN, run_cmd
from lammps_adv.calculators import get_calculator
from lammps_adv.io.resources import shipped_model
from lammps_adv.lammps.structures import quartz, read_lammps_data
from lammps_adv.lammps.system import LammpsSystem


def rattled_quartz():
    atoms = quartz(2, 2, 2)                 # 72 atoms, triclinic (hexagonal) cell
    atoms.positions += np.random.default_rng(5).normal(0, 0.05, atoms.positions.shape)
    return atoms


@pytest.mark.parametrize("name", ["gnn_bks_dsf", "bp_bks_dsf"])
@pytest.mark.parametrize("structure", ["glass", "quartz"])
def test_plugin_and_in_process_agree_by_bare_name(name, structure, glass_192):
    atoms = read_lammps_data(glass_192) if structure == "glass" else rattled_quartz()
    spec = f"torchscript:{name}"
    with LammpsSystem(atoms, spec) as system:
        e_lmp, f_lmp = system.energy_forces()
        assert system.potential.description.startswith(f"TorchScript model {name}.pt")
    with get_calculator(spec) as calc:
        assert calc.spec == spec and list(calc.hashes()) == [str(shipped_model(name))]
        e_py, f_py = calc.evaluate(atoms.positions, atoms.cell.array,
                                   symbols=atoms.get_chemical_symbols(), label=structure)
    assert np.abs(f_py).max() > 0.1                  # real forces to compare
    assert e_lmp == pytest.approx(e_py, rel=1e-8)
    np.testing.assert_allclose(f_lmp, f_py, rtol=0, atol=1e-8 * np.abs(f_py).max())


def test_unknown_shipped_name_lists_the_shipped_ones(glass_192):
    from lammps_adv.core.errors import CalculatorError, PotentialError
    for build, error in ((lambda s: LammpsSystem(glass_192, s), PotentialError),
                         (get_calculator, CalculatorError)):
        with pytest.raises(error, match=r"no shipped model named 'gnn_typo'; shipped: .*gnn_bks_dsf"):
            build("torchscript:gnn_typo")


def test_cli_lists_shipped_models_and_refuses_a_reference_as_driver(glass_192, tmp_path):
    proc = run_cmd([BIN / "lammps-adv", "potentials"], cwd=tmp_path)
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert {"torchscript:gnn_bks_dsf", "torchscript:bp_bks_dsf", "torchscript:NAME",
            "xtb:GFN1", "ase:MODULE:CLASS", "labels:FILE.h5"} <= set(rows)
    assert "energies and forces" in rows["torchscript:gnn_bks_dsf"]
    proc = run_cmd([BIN / "lammps-adv", "energy", glass_192, "--potential", "xtb:GFN1"],
                   check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and "Traceback" not in proc.stderr
    assert "xtb:GFN1 cannot drive LAMMPS" in lines[0]
    proc = run_cmd([BIN / "lammps-adv", "energy", glass_192, "--potential",
                    "torchscript:gnn_bks_dsf"])
    assert "torchscript:gnn_bks_dsf: E = " in proc.stdout
