"""The adversarial math (lammps_adv.core.adversarial): formulas, signs, zero cases, displacements."""
import math

import numpy as np
import pytest

from lammps_adv.core import adversarial as adv


def _forces(seed, n=7):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3)), rng.standard_normal((n, 3))


def test_direction_and_cosine_follow_the_definitions():
    fa, fr = _forces(1)
    e_app, e_acc = -10.0, -9.5
    a = adv.adversarial_direction(e_app, e_acc, fa, fr)
    np.testing.assert_allclose(a, 2 * 0.5 * (fa - fr))
    expect = float(a.ravel() @ fa.ravel()) / (np.linalg.norm(a) * np.linalg.norm(fa))
    assert adv.cos_adversarial(e_app, e_acc, fa, fr) == pytest.approx(expect, abs=1e-14)
    # the sign of the energy error flips A and cos
    assert adv.cos_adversarial(e_acc, e_app, fa, fr) == pytest.approx(-expect, abs=1e-14)
    m = adv.measures(e_app, e_acc, fa, fr)
    assert set(m) == set(adv.OBSERVABLES)
    assert m["cos_adversarial"] == pytest.approx(expect, abs=1e-14)
    assert m["energy_error"] == pytest.approx(0.5) and m["energy_error_per_atom"] == pytest.approx(0.5 / 7)
    d = fa - fr
    assert m["force_rmse"] == pytest.approx(math.sqrt(np.mean(d ** 2)))
    assert m["force_rmse"] == pytest.approx(adv.force_rmse(fa, fr))
    assert m["force_max_error"] == pytest.approx(np.linalg.norm(d, axis=1).max())
    assert m["force_cos"] == pytest.approx(adv.force_cos(fa, fr))
    assert m["force_cos"] == pytest.approx(float(fa.ravel() @ fr.ravel()) / np.linalg.norm(fa) / np.linalg.norm(fr))
    assert m["fnorm_approx"] == pytest.approx(np.linalg.norm(fa))
    assert m["fnorm_reference"] == pytest.approx(np.linalg.norm(fr))


@pytest.mark.parametrize("case", ["same", "zero_de", "zero_fapp", "all_zero", "zero_facc"])
def test_degenerate_cases_are_defined(case):
    fa, fr = _forces(2)
    e_app, e_acc = 1.0, 2.0
    if case == "same":
        fr, e_acc = fa.copy(), e_app
    elif case == "zero_de":
        e_acc = e_app
    elif case == "zero_fapp":
        fa = np.zeros_like(fa)
    elif case == "all_zero":
        fa, fr, e_app, e_acc = np.zeros((3, 3)), np.zeros((3, 3)), 0.0, 0.0
    elif case == "zero_facc":
        fr = np.zeros_like(fr)
    m = adv.measures(e_app, e_acc, fa, fr)
    ratio = m.pop("force_error_ratio")
    # |F_app - F_acc| / |F_app|: 0 when both vanish, inf when only F_app does
    if case in ("zero_fapp", "all_zero", "same"):
        assert ratio == (math.inf if case == "zero_fapp" else 0.0)
    else:
        assert ratio == pytest.approx(np.linalg.norm(fa - fr) / np.linalg.norm(fa))
    assert all(np.isfinite(v) for v in m.values()), m
    assert -1.0 <= m["cos_adversarial"] <= 1.0 and -1.0 <= m["force_cos"] <= 1.0
    if case in ("same", "zero_de", "zero_fapp", "all_zero"):
        assert m["cos_adversarial"] == 0.0
        assert adv.cos_adversarial(e_app, e_acc, fa, fr) == 0.0
    if case == "same":
        assert m["energy_error"] == 0.0 and m["force_rmse"] == 0.0 and m["force_max_error"] == 0.0
        assert m["force_cos"] == pytest.approx(1.0)
    if case == "zero_facc":
        # F_acc = 0: A is parallel to F_app, cos = sign(dE)
        assert m["cos_adversarial"] == pytest.approx(1.0) and m["force_cos"] == 0.0


def test_displacements_have_the_requested_total_distortion():
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 10, (12, 3))
    fa, fr = _forces(4, 12)
    for eps in (0.0, 0.1, 0.3, 0.5):
        new = adv.displace_adversarial(pos, -1.0, -0.7, fa, fr, eps)
        assert np.sum((new - pos) ** 2) == pytest.approx(eps, abs=1e-13)
        if eps:
            d = (new - pos).ravel()
            a = adv.adversarial_direction(-1.0, -0.7, fa, fr).ravel()
            assert adv.cosine(d, a) == pytest.approx(1.0)
        r1 = adv.displace_random(pos, eps, seed=11)
        r2 = adv.displace_random(pos, eps, seed=11)
        np.testing.assert_array_equal(r1, r2)                      # seeded
        assert np.sum((r1 - pos) ** 2) == pytest.approx(eps, abs=1e-13)
    assert not np.array_equal(adv.displace_random(pos, 0.1, 1), adv.displace_random(pos, 0.1, 2))
    # zero direction: no displacement; negative epsilon: an error
    np.testing.assert_array_equal(adv.displace(pos, np.zeros_like(pos), 0.3), pos)
    np.testing.assert_array_equal(adv.displace_adversarial(pos, 1.0, 1.0, fa, fr, 0.3), pos)
    with pytest.raises(ValueError, match="epsilon"):
        adv.displace(pos, fa, -0.1)


def test_adversarial_direction_raises_the_squared_error_fastest():
    """Toy models with analytic forces: a step along A raises (E_acc - E_app)^2 at first order
    by sqrt(eps) |A|, more than any random step of the same size."""
    rng = np.random.default_rng(5)
    pos = rng.uniform(-1, 1, (10, 3))
    k_app, k_acc = 1.0, 1.3

    def e_app(x):
        return 0.5 * k_app * np.sum(x ** 2) + 0.1 * np.sum(np.sin(x))

    def e_acc(x):
        return 0.5 * k_acc * np.sum(x ** 2)

    def loss(x):
        return (e_acc(x) - e_app(x)) ** 2

    f_app = -(k_app * pos + 0.1 * np.cos(pos))
    f_acc = -k_acc * pos
    a = adv.adversarial_direction(e_app(pos), e_acc(pos), f_app, f_acc)
    # A is the gradient of the loss (central finite difference)
    h = 1e-6
    grad = np.zeros_like(pos)
    for idx in np.ndindex(pos.shape):
        d = np.zeros_like(pos)
        d[idx] = h
        grad[idx] = (loss(pos + d) - loss(pos - d)) / (2 * h)
    np.testing.assert_allclose(a, grad, rtol=1e-6, atol=1e-8)
    eps = 1e-4
    up = loss(adv.displace_adversarial(pos, e_app(pos), e_acc(pos), f_app, f_acc, eps)) - loss(pos)
    for seed in range(20):
        assert up > loss(adv.displace_random(pos, eps, seed)) - loss(pos)


def test_measures_agree_with_the_single_functions_for_all_signs():
    """measures() (one pass, used by the recorder) equals the one-measure functions, for
    both signs of the energy error and of the force-difference projection."""
    import numpy as np
    from lammps_adv.core import adversarial as adv
    rng = np.random.default_rng(5)
    seen = set()
    for trial in range(40):
        f_app = rng.normal(size=(6, 3))
        f_acc = f_app * rng.uniform(0.5, 1.5) + rng.normal(scale=0.3, size=(6, 3))
        e_app, e_acc = rng.normal(), rng.normal()
        m = adv.measures(e_app, e_acc, f_app, f_acc)
        a = adv.adversarial_direction(e_app, e_acc, f_app, f_acc)
        direct = float((a * f_app).sum() / np.linalg.norm(a) / np.linalg.norm(f_app))
        assert m["cos_adversarial"] == pytest.approx(direct, abs=1e-12)
        assert m["cos_adversarial"] == pytest.approx(adv.cos_adversarial(e_app, e_acc, f_app, f_acc), abs=1e-12)
        seen.add((np.sign(e_acc - e_app), np.sign(direct)))
    assert len(seen) == 4       # all sign combinations were exercised


def test_decomposition_is_sign_times_force_error_cosine():
    """cos(theta) = sign(E_acc - E_app) * cos(F_app - F_acc, F_app) exactly, with |cos| =
    |c_F| and the sign fraction apart; measures() (the recorder's columns) agrees."""
    rng = np.random.default_rng(23)
    signs = set()
    for trial in range(500):
        n = int(rng.integers(1, 40))
        f_app = rng.normal(size=(n, 3)) * rng.uniform(0.01, 10)
        f_acc = f_app * rng.uniform(-1, 2) + rng.normal(scale=rng.uniform(0.01, 3), size=(n, 3))
        e_app, e_acc = rng.normal(scale=5), rng.normal(scale=5)
        d = adv.decomposition(e_app, e_acc, f_app, f_acc)
        assert d["cos_adversarial"] == pytest.approx(
            d["energy_error_sign"] * d["cos_force_error"], abs=1e-12)
        assert d["cos_adversarial"] == pytest.approx(
            adv.cos_adversarial(e_app, e_acc, f_app, f_acc), abs=1e-12)
        assert d["abs_cos_adversarial"] == abs(d["cos_adversarial"]) == abs(d["cos_force_error"])
        assert d["energy_error_sign"] == np.sign(e_acc - e_app)
        diff = (f_app - f_acc).ravel()
        c_f = diff @ f_app.ravel() / np.linalg.norm(diff) / np.linalg.norm(f_app)
        assert d["cos_force_error"] == pytest.approx(c_f, abs=1e-12)
        assert d["force_error_norm"] == pytest.approx(np.linalg.norm(diff), rel=1e-12)
        assert d["force_error_ratio"] == pytest.approx(
            np.linalg.norm(diff) / np.linalg.norm(f_app), rel=1e-12)
        m = adv.measures(e_app, e_acc, f_app, f_acc)
        for key in ("cos_adversarial", "abs_cos_adversarial", "energy_error_sign",
                    "cos_force_error", "force_error_ratio"):
            assert m[key] == d[key], key
        signs.add((d["energy_error_sign"], np.sign(d["cos_force_error"])))
    assert signs == {(1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)}
    zero = adv.decomposition(1.0, 1.0, f_app, f_acc)         # dE = 0: no sign, no cos
    assert zero["energy_error_sign"] == 0.0 and zero["cos_adversarial"] == 0.0
    assert zero["cos_force_error"] != 0.0 and zero["abs_cos_adversarial"] == 0.0


def test_first_order_change_predicts_the_error_change():
    """(F_app - F_acc) . dr is the first-order change of E_acc - E_app (toy analytic models)."""
    rng = np.random.default_rng(8)
    pos = rng.uniform(-1, 1, (8, 3))

    def e_app(x):
        return 0.5 * np.sum(x ** 2) + 0.2 * np.sum(np.sin(x))

    def e_acc(x):
        return 0.7 * np.sum(x ** 2)

    f_app, f_acc = -(pos + 0.2 * np.cos(pos)), -1.4 * pos
    for scale in (1e-3, 1e-4):
        dr = scale * rng.standard_normal(pos.shape)
        change = (e_acc(pos + dr) - e_app(pos + dr)) - (e_acc(pos) - e_app(pos))
        predicted = adv.first_order_change(f_app, f_acc, dr)
        assert abs(change - predicted) < 10 * scale ** 2 * pos.size      # second order left
        assert abs(predicted) > 100 * abs(change - predicted)
