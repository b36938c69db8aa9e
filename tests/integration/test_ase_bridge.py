"""ASE both ways: ASE calculators as lammps-adv references (instances, classes with
arguments), and lammps-adv models driving ASE's optimizers and MD."""
import numpy as np
import pytest
from ase.calculators.lj import LennardJones

from lammps_adv.calculators import ase_calculator, get_calculator
from lammps_adv.core.errors import CalculatorError
from lammps_adv.lammps.structures import quartz

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit")


@pytest.fixture
def rattled():
    atoms = quartz(2, 2, 2)
    atoms.rattle(0.05, seed=1)
    return atoms


def test_ase_instances_and_classes_with_arguments_are_references(rattled):
    own = LennardJones(sigma=2.0, epsilon=0.01, rc=5.0)
    expected = rattled.copy()
    expected.calc = own
    e, f = expected.get_potential_energy(), expected.get_forces()
    args = (rattled.positions, rattled.cell[:])
    names = rattled.get_chemical_symbols()
    for model in (LennardJones(sigma=2.0, epsilon=0.01, rc=5.0),
                  "ase:ase.calculators.lj:LennardJones:sigma=2.0:epsilon=0.01:rc=5"):
        calc = get_calculator(model)
        energy, forces = calc.evaluate(*args, symbols=names)
        assert energy == pytest.approx(e, rel=1e-12) and np.allclose(forces, f, atol=1e-12)
        assert calc.spec.startswith("ase:ase.calculators.lj:LennardJones")


@pytest.mark.parametrize("spec", ["torchscript:gnn_bks_dsf", "bks-dsf"])
def test_a_lammps_adv_model_drives_ase_bfgs(rattled, spec):
    from ase.optimize import BFGS
    atoms = rattled.copy()
    atoms.calc = ase_calculator(spec)
    e0 = atoms.get_potential_energy()
    assert BFGS(atoms, logfile=None).run(fmax=0.01, steps=300)
    assert atoms.get_potential_energy() < e0 - 1.0          # the rattle relaxed away (eV)
    e, f = get_calculator(spec).evaluate(atoms.get_positions(wrap=True), atoms.cell[:],
                                         symbols=atoms.get_chemical_symbols())
    assert atoms.get_potential_energy() == pytest.approx(e, abs=1e-9)
    assert np.abs(atoms.get_forces() - f).max() < 1e-9
    assert np.linalg.norm(f, axis=1).max() < 0.01


def test_a_lammps_adv_model_drives_ase_md_conserving_energy(rattled):
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet
    atoms = rattled.copy()
    atoms.calc = get_calculator("bks-dsf").as_ase()
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    totals = []
    dyn = VelocityVerlet(atoms, 0.5 * units.fs)
    dyn.attach(lambda: totals.append(atoms.get_total_energy()), interval=5)
    dyn.run(100)
    kinetic = 1.5 * len(atoms) * units.kB * 300
    assert np.ptp(totals) < 0.02 * kinetic, (np.ptp(totals), kinetic)


def test_non_periodic_atoms_are_a_clear_error(rattled):
    atoms = rattled.copy()
    atoms.pbc = [True, True, False]
    atoms.calc = ase_calculator("bks-dsf")
    with pytest.raises(CalculatorError, match=r"bks-dsf through ASE needs a periodic cell"):
        atoms.get_potential_energy()


def test_lammps_adv_ase_is_the_name_ase_users_look_for(rattled):
    from lammps_adv.ase import LammpsAdvCalculator, ase_calculator
    calc = ase_calculator("bks-dsf")
    assert isinstance(calc, LammpsAdvCalculator)
    atoms = rattled.copy()
    atoms.calc = calc
    e, _ = get_calculator("bks-dsf").evaluate(atoms.positions, atoms.cell[:],
                                            symbols=atoms.get_chemical_symbols())
    assert atoms.get_potential_energy() == pytest.approx(e, abs=1e-10)
