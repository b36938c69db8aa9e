"""How the remedies pick configurations (lammps_adv.experiments.strategies): exactly n per
round, along the direction each names, without calling the reference, never the same start
or reserve configuration twice in a run."""
import dataclasses

import numpy as np
import pytest

from lammps_adv.core import adversarial
from lammps_adv.calculators import get_calculator
from lammps_adv.experiments import strategies as st
from lammps_adv.lammps.structures import quartz


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


def _fresh(src):
    """The sources as a new strategy run sees them (nothing taken yet)."""
    return dataclasses.replace(src, taken=0, start_order=None, starts_taken=0, seen=set())


def test_every_strategy_picks_exactly_n(sources):
    shared = _fresh(sources)
    for name in st.STRATEGIES:
        rng = np.random.default_rng(0)
        picked = st.pick(name, _fresh(sources) if name not in ("more-md", "more-md+forces")
                         else shared, 2, rng)
        assert len(picked) == (0 if name == "baseline" else 2), name
        for pos, cell, names, source in picked:
            assert pos.shape == (9, 3) and len(names) == 9 and isinstance(source, str)
    assert shared.taken == 4                        # the more-md pair used the reserve in turn
    with pytest.raises(ValueError, match="reserve of thermal configurations is exhausted"):
        st.pick("more-md", shared, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown strategy"):
        st.pick("newton", sources, 1, np.random.default_rng(0))


def test_starts_and_reserve_are_drawn_without_replacement(sources):
    """Over the rounds of one run every start is used once, then the starts run out (until
    the run appends one of its labels); the reserve is taken in the run's order and skips
    configurations already seen."""
    src = _fresh(sources)
    rng = np.random.default_rng(2)
    labels = [c[3] for n in (1, 2) for c in st.pick("step-f-acc", src, n, rng)]
    starts = [lab.split("+")[0] for lab in labels]
    assert sorted(starts) == sorted(s["source"] for s in sources.starts)
    with pytest.raises(ValueError, match="3 start configurations are exhausted"):
        st.pick("step-f-acc", src, 1, rng)
    # a label of the run appended as a start (a base set smaller than the budget): used once
    src.starts = list(src.starts) + [dict(sources.starts[0], source="labelled")]
    (_, _, _, label), = st.pick("step-f-acc", src, 1, rng)
    assert label.startswith("labelled+F_acc")
    with pytest.raises(ValueError, match="4 start configurations are exhausted"):
        st.pick("step-f-acc", src, 1, rng)
    src = _fresh(sources)
    src.order = np.array([4, 3, 2, 1, 0])
    src.seen = {st.key_of(sources.reserve[3])}
    picked = st.pick("more-md", src, 2, rng) + st.pick("more-md", src, 1, rng)
    assert [c[3] for c in picked] == ["c14", "c12", "c11"]      # c13 is already seen
    keys = [st.key_of(c) for c in picked]
    assert len(set(keys)) == 3


def test_strategy_names_resolve_to_the_canonical_order():
    assert st.canonical(["adversarial+forces", "forces", "baseline", "adversarial"]) == (
        "baseline", "more-md+forces", "adversarial", "adversarial+forces")
    with pytest.raises(ValueError, match="unknown strategies newton"):
        st.canonical(["newton"])


@pytest.mark.parametrize("name", ["adversarial", "step-f-app", "step-f-acc"])
def test_displacements_follow_the_named_direction(sources, name):
    (pos, cell, names, source), = st.pick(name, _fresh(sources), 1, np.random.default_rng(3))
    start = next(s for s in sources.starts if source.startswith(s["source"] + "+"))
    e_app, f_app = sources.model.evaluate(start["positions"], cell, symbols=names)
    direction = {"adversarial": adversarial.adversarial_direction(e_app, start["energy"], f_app,
                                                                  start["forces"]),
                 "step-f-app": f_app, "step-f-acc": start["forces"]}[name]
    dr = pos - start["positions"]
    # per-atom epsilon; a step into the repulsive core is halved and says so in the label
    factor = float(source.split("(step x")[1].split(":")[0]) if "(step x" in source else 1.0
    assert np.sum(dr * dr) == pytest.approx(0.01 * 9 * factor ** 2)
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
    (pos, cell, names, source), = st.pick("uncertainty", _fresh(sources), 1,
                                          np.random.default_rng(5))
    start = next(s for s in sources.starts if source.startswith(s["source"] + "+"))

    def spread(x):
        e = [m.evaluate(x, cell, symbols=names)[0] for m in [sources.model] + sources.committee]
        return np.var(e)
    assert spread(pos) > spread(start["positions"])
    assert np.sum((pos - start["positions"]) ** 2) <= 0.01 * 9 * (1 + 1e-12)


def test_a_step_into_the_repulsive_core_is_halved_until_outside():
    # one atom's force points at its neighbour 2 A away: the full step (1.5 A) would leave
    # them 0.5 A apart; halved once they are 1.25 A apart, outside the 1.2 A core
    cell = np.diag([12.0, 12.0, 12.0])
    pos = np.array([[2.0, 2.0, 2.0], [4.0, 2.0, 2.0], [8.0, 8.0, 8.0]])
    forces = np.zeros((3, 3))
    forces[0] = [1.0, 0.0, 0.0]
    start = {"positions": pos, "cell": cell, "names": ["Si", "O", "O"], "energy": -1.0,
             "forces": forces, "source": "toy"}
    src = st.Sources(model=None, starts=[start], reserve=[], epsilon=1.5 ** 2,
                     distortion="total")
    (x, _, _, label), = st.step_f_acc(src, 1, np.random.default_rng(0))
    assert np.linalg.norm(x[1] - x[0]) == pytest.approx(1.25)
    assert "step x0.5: core" in label
    # a step that stays outside the core is left alone
    src.epsilon = 0.5 ** 2
    (x, _, _, label), = st.step_f_acc(_fresh(src), 1, np.random.default_rng(0))
    assert np.linalg.norm(x[1] - x[0]) == pytest.approx(1.5) and "core" not in label
