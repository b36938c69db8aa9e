"""Probe modes: --distortion total|per-atom, --ascent-steps K, the geometry of every
displaced configuration (largest displacement, closest pair, core flag)."""
import math

import numpy as np
import pytest

from conftest import BIN
from lammps_adv.core import adversarial
from lammps_adv.io import h5md
from lammps_adv.calculators import get_calculator
from lammps_adv.experiments.probe import probe
from lammps_adv.lammps.structures import min_pair_distance, quartz


@pytest.fixture(scope="module")
def configs():
    out = []
    for k in range(3):
        atoms = quartz(1, 1, 1)
        atoms.rattle(0.04, seed=10 + k)
        out.append((atoms.get_positions(), atoms.cell.array, atoms.get_chemical_symbols(),
                    f"q{k}"))
    return out


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


def test_core_flag_and_bad_options(configs, tmp_path):
    """A large distortion of a 9-atom cell pushes atoms into the repulsive core: the report
    counts it; impossible options are one-line errors."""
    from lammps_adv.core.summaries import epsilon_rows
    from lammps_adv.io.results import probe_arrays, read_files
    out = probe(configs, "bks-dsf", "bks", tmp_path / "c.h5", epsilons=(0.0, 4.0), n_random=1,
                progress=False)
    (res,) = read_files([out], probe_arrays)
    rows = epsilon_rows(res)
    near = res.data["min_distance_adversarial"][:, 1]
    assert np.array_equal(res.data["core_adversarial"][:, 1], near < 1.2)
    assert res.data["core_random"].dtype == bool
    assert rows[1]["core_fraction"] == pytest.approx(float((near < 1.2).mean()))
    assert rows[1]["core_fraction"] > 0 and rows[0]["core_fraction"] == 0
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
