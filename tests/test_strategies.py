"""How the remedies pick configurations (lammps_adv.experiments.strategies): exactly n per
round, along the direction each names, without calling the reference."""
import numpy as np
import pytest

from lammps_adv import adversarial
from lammps_adv.calculators import get_calculator
from lammps_adv.experiments import strategies as st
from lammps_adv.structures import quartz


def _config(seed):
    atoms = quartz(1, 1, 1)
    atoms.rattle(0.05, seed=seed)
    return atoms.get_positions(), atoms.cell.array, atoms.get_chemical_symbols(), f"c{seed}"


@pytest.fixture(scope="module")
def sources():
    """bks-dsf plays the model, bks the reference (labels of the starts), and bks:pppm a
    second committee member."""
    with get_calculator("bks") as ref:
        starts = []
        for k in range(3):
            pos, cell, names, src = _config(k)
            e, f = ref.evaluate(pos, cell, symbols=names)
            starts.append({"positions": pos, "cell": cell, "names": names, "energy": e,
                           "forces": f, "source": src})
    model, other = get_calculator("bks-dsf"), get_calculator("bks")
    yield st.Sources(model=model, starts=starts, reserve=[_config(10 + k) for k in range(5)],
                     committee=[other], epsilon=0.01, distortion="per-atom")
    model.close()
    other.close()


def test_every_strategy_picks_exactly_n(sources):
    for name in st.STRATEGIES:
        rng = np.random.default_rng(0)
        picked = st.pick(name, sources, 2, rng)
        assert len(picked) == (0 if name == "baseline" else 2), name
        for pos, cell, names, source in picked:
            assert pos.shape == (9, 3) and len(names) == 9 and isinstance(source, str)
    assert sources.taken == 4                       # more-md and forces used the reserve in turn
    with pytest.raises(ValueError, match="reserve of thermal configurations is exhausted"):
        st.pick("more-md", sources, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown strategy"):
        st.pick("newton", sources, 1, np.random.default_rng(0))


@pytest.mark.parametrize("name", ["adversarial", "step-f-app", "step-f-acc"])
def test_displacements_follow_the_named_direction(sources, name):
    (pos, cell, names, source), = st.pick(name, sources, 1, np.random.default_rng(3))
    start = next(s for s in sources.starts if source.startswith(s["source"] + "+"))
    e_app, f_app = sources.model.evaluate(start["positions"], cell, symbols=names)
    direction = {"adversarial": adversarial.adversarial_direction(e_app, start["energy"], f_app,
                                                                  start["forces"]),
                 "step-f-app": f_app, "step-f-acc": start["forces"]}[name]
    dr = pos - start["positions"]
    assert np.sum(dr * dr) == pytest.approx(0.01 * 9)                 # per-atom epsilon
    assert adversarial.cosine(dr, direction) == pytest.approx(1.0, abs=1e-12)


def test_committee_variance_direction_is_its_gradient():
    """Two toy models E_m = sum a_m |r|^2: the formula equals finite differences."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3))
    amps = np.array([0.5, 1.3, 2.0])

    def variance(y):
        e = amps * np.sum(y * y)
        return np.mean((e - e.mean()) ** 2)
    g = st.committee_variance_direction(amps * np.sum(x * x), [-2 * a * x for a in amps])
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[idx] = 1e-6
        num[idx] = (variance(x + d) - variance(x - d)) / 2e-6
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


def test_uncertainty_climbs_the_committee_disagreement(sources):
    (pos, cell, names, source), = st.pick("uncertainty", sources, 1, np.random.default_rng(5))
    start = next(s for s in sources.starts if source.startswith(s["source"] + "+"))

    def spread(x):
        e = [m.evaluate(x, cell, symbols=names)[0] for m in [sources.model] + sources.committee]
        return np.var(e)
    assert spread(pos) > spread(start["positions"])
    assert np.sum((pos - start["positions"]) ** 2) <= 0.01 * 9 * (1 + 1e-12)
