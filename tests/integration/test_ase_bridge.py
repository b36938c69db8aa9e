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


def _strained(atoms, eps):
    out = atoms.copy()
    out.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
    return out


@pytest.mark.parametrize("spec", ["bks-dsf", "torchscript:bp_bks_dsf"])
def test_stress_is_the_strain_derivative_of_the_energy(rattled, spec):
    """ASE's stress (Voigt, (1/V) dE/d(strain)) of a LAMMPS potential and of a TorchScript
    model equals the fourth-order central difference of the energy under symmetric strains
    (xx, yz): its truncation error, h^4 times the fifth strain derivative, stays far below the
    tolerance for any smooth model (a second-order difference missed it by 2e-8 eV/A^3 for
    one shipped BP, error proportional to h^2)."""
    from ase.stress import voigt_6_to_full_3x3_stress
    atoms = rattled.copy()
    atoms.calc = ase_calculator(spec)
    assert "stress" in atoms.calc.implemented_properties
    sigma = voigt_6_to_full_3x3_stress(atoms.get_stress())
    h, volume = 1e-5, atoms.get_volume()
    for i, j in ((0, 0), (1, 2)):
        eps = np.zeros((3, 3))
        eps[i, j] = eps[j, i] = h / 2 if i != j else h
        e = {}
        for k in (2, 1, -1, -2):
            a = _strained(atoms, k * eps)
            a.calc = atoms.calc
            e[k] = a.get_potential_energy()
        # dE = V sum_ij sigma_ij eps_ij = V sigma_ij h for either strain
        fd = (8 * (e[1] - e[-1]) - (e[2] - e[-2])) / (12 * h * volume)
        assert sigma[i, j] == pytest.approx(fd, rel=1e-5, abs=1e-8), (i, j)
    # the same numbers as the model's own evaluation, through the Calculator interface
    e, f, s = get_calculator(spec).evaluate(atoms.get_positions(wrap=True), atoms.cell[:],
                                            symbols=atoms.get_chemical_symbols(), stress=True)
    np.testing.assert_allclose(s, sigma, rtol=1e-12, atol=1e-14)


def test_stress_of_an_ase_calculator_and_of_a_backend_without_it(rattled):
    own = LennardJones(sigma=2.0, epsilon=0.01, rc=5.0)
    expected = rattled.copy()
    expected.calc = own
    calc = get_calculator(LennardJones(sigma=2.0, epsilon=0.01, rc=5.0))
    _, _, s = calc.evaluate(rattled.positions, rattled.cell[:],
                            symbols=rattled.get_chemical_symbols(), stress=True)
    np.testing.assert_allclose(s, expected.get_stress(voigt=False), rtol=1e-10, atol=1e-14)
    # an ASE calculator without stress: one clear error
    class NoStress(LennardJones):
        implemented_properties = ["energy", "free_energy", "forces"]
    with pytest.raises(CalculatorError, match="NoStress does not compute the stress"):
        get_calculator(NoStress()).evaluate(rattled.positions, rattled.cell[:],
                                            symbols=rattled.get_chemical_symbols(), stress=True)


def test_a_lammps_potential_takes_any_cell_orientation(rattled):
    """LAMMPS needs a lower-triangular cell; an ASE user's cell may point anywhere: the
    calculator rotates into LAMMPS' frame and the forces and stress back."""
    from scipy.spatial.transform import Rotation
    rot = Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix()
    calc = get_calculator("bks-dsf")
    names = rattled.get_chemical_symbols()
    e0, f0, s0 = calc.evaluate(rattled.positions, rattled.cell[:], symbols=names, stress=True)
    e1, f1, s1 = calc.evaluate(rattled.positions @ rot.T, rattled.cell[:] @ rot.T,
                               symbols=names, stress=True)
    assert e1 == pytest.approx(e0, abs=1e-9)
    np.testing.assert_allclose(f1, f0 @ rot.T, atol=1e-9)
    np.testing.assert_allclose(s1, rot @ s0 @ rot.T, atol=1e-10)
    left = rattled.cell[:] * [[1], [1], [-1]]
    with pytest.raises(CalculatorError, match="left-handed"):
        calc.evaluate(rattled.positions, left, symbols=names)


def test_ase_instances_in_the_probe_and_the_recorder(rattled, tmp_path):
    """An ASE calculator instance is a reference of the Python API's probe and recording;
    files name it by module and class."""
    from conftest import REPO
    from lammps_adv.experiments.probe import probe
    from lammps_adv.io.h5md import read_observables, read_parameters
    from lammps_adv.lammps.structures import write_lammps_data
    from lammps_adv.recorder import run_deck
    lj = LennardJones(sigma=2.0, epsilon=0.01, rc=5.0)
    own = rattled.copy()
    own.calc = LennardJones(sigma=2.0, epsilon=0.01, rc=5.0)
    got = probe([(rattled.positions, rattled.cell[:], rattled.get_chemical_symbols(), "q")],
                "bks-dsf", lj, out=None, epsilons=(0.0,), n_random=0, align="none",
                progress=False)
    assert got["parameters"]["reference"] == "ase:ase.calculators.lj:LennardJones"
    assert got["energy_reference"][0] == pytest.approx(own.get_potential_energy(), rel=1e-12)
    data = write_lammps_data(tmp_path / "q.data", rattled)
    out = tmp_path / "lj.h5md"
    rows = run_deck(REPO / "tests" / "decks" / "nvt_short.in", lj, out=out, every=10,
                    variables={"data": data, "pot": REPO / "potentials" / "bks_dsf.lmp"},
                    progress=False)
    assert rows == 3
    assert read_parameters(out)["reference"] == "ase:ase.calculators.lj:LennardJones"
    assert np.isfinite(read_observables(out)["cos_adversarial"]).all()
