"""Probe modes: --distortion total|per-atom, --ascent-steps K, the geometry of every
displaced configuration (largest displacement, closest pair per species pair, flags), the
decomposition of cos(theta) per configuration."""
import math

import numpy as np
import pytest

from conftest import BIN
from lammps_adv.core import adversarial
from lammps_adv.io import h5md
from lammps_adv.calculators import get_calculator
from lammps_adv.experiments.probe import probe
from lammps_adv.lammps.structures import min_pair_distance, quartz


def _rattled_quartz(n, cells, amplitude, seed):
    """n alpha-quartz supercells (cells: repeats), rattled by ``amplitude`` A, as
    (positions, cell, names, source) configurations."""
    out = []
    for k in range(n):
        atoms = quartz(*cells)
        atoms.rattle(amplitude, seed=seed + k)
        out.append((atoms.get_positions(), atoms.cell.array, atoms.get_chemical_symbols(),
                    f"q{k}"))
    return out


@pytest.fixture(scope="module")
def configs():
    return _rattled_quartz(3, (1, 1, 1), 0.04, seed=10)


def _evaluate(configs, c, alignment_offset=0.0):
    pos, cell, names, _ = configs[c]
    with get_calculator("bks-dsf") as app, get_calculator("bks") as acc:
        def at(x, what=""):
            (ea, fa), (er, fr) = (m.evaluate(x, cell, symbols=names) for m in (app, acc))
            return ea + alignment_offset, fa, er, fr
        yield at


def test_one_ascent_step_is_the_one_shot_step_and_more_steps_climb(configs):
    pos, cell, names, _ = configs[0]
    for at in _evaluate(configs, 0, alignment_offset=-56.7):
        first = at(pos)

        def ascend(eps, steps):
            x, (ea, _, er, _), n = adversarial.ascend(
                lambda x, k: at(x), lambda s: adversarial.adversarial_direction(
                    s[0], s[2], s[1], s[3]), pos, first, eps, steps)
            return x, er - ea, n
        x1, err1, n1 = ascend(0.2, 1)
        e_app, f_app, e_acc, f_acc = first
        one_shot = adversarial.displace_adversarial(pos, e_app, e_acc, f_app, f_acc, 0.2)
        np.testing.assert_allclose(x1, one_shot, atol=1e-12)
        ea, _, er, _ = at(one_shot)
        assert n1 == 1 and err1 == pytest.approx(er - ea, abs=1e-12)
        x4, err4, n4 = ascend(0.2, 4)
        assert n4 == 4 and np.sum((x4 - pos) ** 2) <= 0.2 * (1 + 1e-12)      # inside the ball
        assert err4 ** 2 >= err1 ** 2 * 0.999           # ascent does not do worse here
        x0, err0, n0 = ascend(0.0, 3)
        assert n0 == 0 and np.array_equal(x0, pos) and err0 == e_acc - e_app


def test_per_atom_distortion_and_geometry_of_displaced_configurations(configs, tmp_path):
    total = probe(configs, "bks-dsf", "bks", tmp_path / "t.h5", epsilons=(0.0, 0.05),
                  n_random=2, progress=False, ascent_steps=2)
    per_atom = probe(configs, "bks-dsf", "bks", tmp_path / "p.h5", epsilons=(0.0, 0.05 / 9),
                     n_random=2, progress=False, ascent_steps=2, distortion="per-atom")
    t, p = h5md.read_probe(total), h5md.read_probe(per_atom)
    params = h5md.read_parameters(per_atom, texts=False)
    assert params["distortion"] == "per-atom" and params["ascent_steps"] == 2
    # 9 atoms: epsilon 0.05/9 per atom is the same distortion as 0.05 in total
    for key in ("error_adversarial", "error_random", "min_distance_random",
                "max_displacement_adversarial"):
        np.testing.assert_allclose(t[key], p[key], rtol=1e-9, atol=1e-12, err_msg=key)
    # the geometry recorded is that of the displaced configuration: recompute one of them
    pos, cell, *_ = configs[1]
    rand = adversarial.random_direction(pos.shape, seed=0 + 1000 * 1 + 1)
    x = adversarial.displace(pos, rand, 0.05)
    assert t["min_distance_random"][1, 1, 1] == pytest.approx(min_pair_distance(x, cell))
    assert t["max_displacement_random"][1, 1, 1] == pytest.approx(
        np.linalg.norm(x - pos, axis=1).max())
    assert np.all(t["max_displacement_adversarial"][:, 0] == 0)
    assert np.all(t["max_displacement_adversarial"][:, 1] <= math.sqrt(0.05) + 1e-12)
    assert np.all(t["min_distance_adversarial"][:, 0] == [min_pair_distance(c[0], c[1])
                                                          for c in configs])


def test_collapsed_pairs_are_flagged_and_left_out_of_the_means(configs, tmp_path):
    """A large distortion of a 9-atom cell pushes atoms into each other: those displaced
    configurations are flagged (closest pair below 0.9 x that of the undisplaced ones, or
    an error above 1 eV/atom), counted, and kept out of the report's means; impossible
    options are one-line errors."""
    from lammps_adv.core.summaries import epsilon_rows, flagged_rows
    from lammps_adv.io.results import probe_arrays, read_files
    from lammps_adv.lammps.structures import closest_pairs
    out = probe(configs, "bks-dsf", "bks", tmp_path / "c.h5", epsilons=(0.0, 0.05, 4.0),
                n_random=1, progress=False)
    (res,) = read_files([out], probe_arrays)
    d = res.data
    assert d["species_pairs"].tolist() == ["O-O", "O-Si", "Si-Si"]
    start = [closest_pairs(c[0], c[1], c[2]) for c in configs]
    expect = [0.9 * min(s[p] for s in start) for p in ("O-O", "O-Si", "Si-Si")]
    np.testing.assert_allclose(d["closest_pair_threshold"], expect, rtol=1e-12)
    assert "undisplaced probe configurations" in res.params["closest_pair_threshold_source"]
    assert "core_adversarial" not in d and "core_distance_A" not in res.params
    for kind in ("adversarial", "random"):
        close = np.any(d[f"closest_pair_{kind}"] < d["closest_pair_threshold"], axis=-1)
        big = np.abs(d[f"error_{kind}"]) / 9 > 1.0
        assert np.array_equal(d[f"flagged_{kind}"], close | big), kind
        np.testing.assert_array_equal(d[f"min_distance_{kind}"], d[f"closest_pair_{kind}"].min(-1))
    # the undisplaced and slightly displaced configurations stay; at 4 A^2 pairs collapse
    assert not d["flagged_adversarial"][:, :2].any() and not d["flagged_random"][..., :2].any()
    collapsed = d["flagged_random"][:, 0, 2]
    assert collapsed.any() and np.any(d["closest_pair_random"][:, 0, 2] < expect)
    rows = epsilon_rows(res)
    r = rows[2]
    assert r["flagged_random"] == int(collapsed.sum())
    assert r["flagged_adversarial"] == int(d["flagged_adversarial"][:, 2].sum())
    for kind, error, keep in (("random", d["error_random"][:, 0, 2], ~collapsed),
                              ("adversarial", d["error_adversarial"][:, 2],
                               ~d["flagged_adversarial"][:, 2])):
        if keep.any():
            assert r[f"{kind}_mean"] == pytest.approx(1000 / 9 * np.abs(error[keep]).mean())
        else:
            assert math.isnan(r[f"{kind}_mean"])
    assert len(flagged_rows(res)) == r["flagged_adversarial"] + r["flagged_random"]
    import subprocess

    from ase.io import write
    write(tmp_path / "q.xyz", quartz(1, 1, 1))
    for args, message in ((["--ascent-steps", "0"], "--ascent-steps must be >= 1"),
                          (["--distortion", "atom"], "invalid choice: 'atom'"),
                          (["--epsilon", "-1"], "must be >= 0")):
        r = subprocess.run([str(BIN / "lammps-adv"), "probe", str(tmp_path / "q.xyz"),
                            "--approx", "bks-dsf", "--reference", "bks", *args],
                           capture_output=True, text=True)
        assert r.returncode == 2 and message in r.stderr, r.stderr


def test_probe_file_holds_the_decomposition_and_random_references(tmp_path):
    """A 36-atom quartz cell: cos = sign * c_F, |cos|, |F_app - F_acc| and the random |cos|
    references agree with the models' forces recomputed here."""
    cs = _rattled_quartz(2, (2, 2, 1), 0.05, seed=30)
    out = probe(cs, "bks-dsf", "bks", tmp_path / "d.h5", epsilons=(0.0, 0.02), n_random=2,
                seed=5, progress=False)
    d = h5md.read_probe(out)
    assert d["closest_pair_adversarial"].shape == (2, 2, 3)
    assert d["closest_pair_random"].shape == (2, 2, 2, 3)
    np.testing.assert_allclose(d["cos_adversarial"],
                               d["energy_error_sign"] * d["cos_force_error"], atol=1e-12)
    np.testing.assert_array_equal(d["abs_cos_adversarial"], np.abs(d["cos_adversarial"]))
    np.testing.assert_array_equal(d["energy_error_sign"], np.sign(d["energy_error"]))
    np.testing.assert_allclose(d["random_abs_cos_expected"], math.sqrt(2 / (math.pi * 108)))
    with get_calculator("bks-dsf") as app, get_calculator("bks") as acc:
        for c, (pos, cell, names, _) in enumerate(cs):
            (_, fa), (_, fr) = (m.evaluate(pos, cell, symbols=names) for m in (app, acc))
            diff = (fa - fr).ravel()
            assert d["force_error_norm"][c] == pytest.approx(np.linalg.norm(diff), rel=1e-9)
            assert d["force_error_ratio"][c] == pytest.approx(
                np.linalg.norm(diff) / np.linalg.norm(fa), rel=1e-9)
            assert d["cos_force_error"][c] == pytest.approx(
                adversarial.cosine(diff, fa), abs=1e-9)
            measured = np.mean([abs(adversarial.cosine(adversarial.random_direction(
                pos.shape, seed=5 + 1000 * c + r), fa)) for r in range(2)])
            assert d["random_abs_cos_measured"][c] == pytest.approx(measured, rel=1e-12)
    none = h5md.read_probe(probe(cs[:1], "bks-dsf", "bks", tmp_path / "n.h5", epsilons=(0.0,),
                                 n_random=0, align="none", progress=False))
    assert np.isnan(none["random_abs_cos_measured"]).all()
    # out=None: the same arrays in memory, no file
    mem = probe(cs, "bks-dsf", "bks", None, epsilons=(0.0, 0.02), n_random=2, seed=5,
                progress=False)
    assert set(d) <= set(mem) and mem["parameters"]["experiment"] == "probe"
    for name, value in d.items():
        np.testing.assert_array_equal(mem[name], value, err_msg=name)
