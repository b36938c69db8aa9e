"""Relaxations without LAMMPS: the recorder's first-order change per row (minimum image,
measured from the start of the step), the per-temperature first-step summaries with their
"not resolved" below MIN_UNITS units, and the report's relaxation section."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from lammps_adv.core.adversarial import first_order_change
from lammps_adv.core.configuration import periodic_displacement
from lammps_adv.core.statistics import MIN_UNITS
from lammps_adv.core.summaries import relax_first_step, relax_start
from lammps_adv.io import h5md
from lammps_adv.recorder.sink import RecordSink
from lammps_adv.report.relaxation import relaxation_section

CELL = np.array([[5.0, 0.0, 0.0], [1.0, 6.0, 0.0], [0.0, 0.5, 7.0]])   # triclinic, rows


def test_periodic_displacement_takes_the_minimum_image():
    rng = np.random.default_rng(0)
    start = rng.random((4, 3)) @ CELL
    move = rng.normal(0.0, 0.2, (4, 3))
    wrapped = start + move
    wrapped[1] += CELL[0] - CELL[1]        # atom 1 crossed two walls, LAMMPS wrapped it
    assert np.allclose(periodic_displacement(start, wrapped, CELL), move, atol=1e-12)


def _record(stage, step, pos, f_app, f_acc, ev):
    return {"stage": stage, "step": step, "pos": pos, "f_app": f_app, "f_acc": f_acc,
            "cell": CELL, "e_app": -1.0, "e_acc": -1.1, "temperature": 0.0, "ev": ev,
            "time": 0.0, "dt": 0.001}


def test_sink_records_the_first_order_change_from_the_start_of_each_step(tmp_path):
    """Rows of a minimization with a line search (two trials at step 1) and then a second
    stage: every row of step s is predicted from the last row of step s - 1, with the true
    displacement although LAMMPS wrapped an atom; a stage's first row has no prediction."""
    rng = np.random.default_rng(1)
    n = 6
    true = [rng.random((n, 3)) @ CELL]
    for _ in range(4):
        true.append(true[-1] + rng.normal(0.0, 0.02, (n, 3)))
    recorded = [p.copy() for p in true]
    for p in recorded[2:]:
        p[0] += CELL[2]                    # atom 0 wrapped back into the box at step 1
    fa = [rng.normal(size=(n, 3)) for _ in range(5)]
    fr = [rng.normal(size=(n, 3)) for _ in range(5)]
    rows = [(0, 0), (0, 1), (0, 1), (0, 2), (1, 2)]          # (stage, step)
    out = tmp_path / "rec.h5"
    sink = RecordSink(out, {}, {}, "new", 1, 0, 100, 60.0, False)
    for k, (stage, step) in enumerate(rows):
        sink.add(_record(stage, step, recorded[k], fa[k], fr[k], k), "minimize", ["Si"] * n,
                 lambda: {"n_atoms": n})
    sink.close()
    got = h5md.read_observables(out)["first_order_change"]

    def change(a, b):                      # (F_app - F_acc)_a . (R_b - R_a)
        return float(np.sum((fa[a] - fr[a]) * (true[b] - true[a])))
    # 0 where a stage starts: nothing has moved yet
    np.testing.assert_allclose(got, [0.0, change(0, 1), change(0, 2), change(2, 3), 0.0],
                               rtol=1e-10)
    assert first_order_change(fa[0], fr[0], true[1] - true[0]) == pytest.approx(got[1])


def _relaxation(unit, temperature, cos0, rise, *, converged=True, steps=3, first_order=True,
                offset=0.0):
    """A result as read from a relaxation file: 4 minimizer steps of 10 atoms whose error
    rises by ``rise`` meV/atom over the first step (prediction 0.9 of it, when recorded)."""
    n = 10
    err = (np.array([2.0, 2.0 + rise, 2.5, 3.0]) + offset) * n / 1000.0          # eV
    data = {"step": np.array([0, 1, 2, 3]), "energy_error": err,
            "cos_adversarial": np.array([cos0, 0.1, 0.1, 0.1])}
    if first_order:
        data["first_order_change"] = np.array([0.0, 0.9 * (err[1] - err[0]), 0.0, 0.0])
    params = {"experiment": "relax", "n_atoms": n, "approx": "bks-dsf", "reference": "bks",
              "independent_unit": unit, "start_temperature_K": temperature,
              "converged": converged, "minimizer_steps": steps, "steps": 3,
              "fmax_eV_per_A": 1e-3, "final_fmax_eV_per_A": 5e-4 if converged else 0.2,
              "source": f"{unit}#0"}
    return SimpleNamespace(params=params, data=data, path=f"relax_{unit}.h5")


def test_relax_start_reads_the_first_step_against_its_prediction_and_the_end():
    r = _relaxation("g0", 1000.0, 0.3, 0.4)
    s = relax_start(r)
    assert s["rise"] == pytest.approx(0.4) and s["change_first"] == pytest.approx(0.4)
    assert s["predicted_first"] == pytest.approx(0.36)
    assert s["first_order_ratio"] == pytest.approx(1 / 0.9)
    assert s["drift"] == pytest.approx(1.0) and s["end_positive"] is True
    assert (s["group"], s["unit"], s["steps"], s["converged"]) == ("1000 K", "g0", 3, True)
    # negative errors: |error| falls while E_acc - E_app rises; the end is below zero
    neg = relax_start(_relaxation("g0", 1000.0, 0.3, 0.4, offset=-10.0))
    assert neg["rise"] == pytest.approx(-0.4) and neg["end_positive"] is False
    # files without the recorded prediction, convergence or temperature
    old = _relaxation("", math.nan, 0.3, 0.4, first_order=False)
    del old.params["converged"], old.params["start_temperature_K"]
    s = relax_start(old, "file.h5")
    assert math.isnan(s["first_order_ratio"]) and s["converged"] is None
    assert (s["group"], s["unit"]) == ("unknown", "file.h5")


def test_correlations_per_temperature_group_and_not_resolved_below_min_units():
    """Two temperature groups whose clusters sit apart: each group has its own correlation
    (perfect inside the 1000 K group, where the rise follows cos0); 6 units at 1000 K give
    intervals, 3 at 2000 K do not."""
    cool = [_relaxation(f"g{k}", 1000.0, 0.1 * k, 0.2 * k) for k in range(6)]
    hot = [_relaxation(f"h{k}", 2000.0, 0.5 + 0.1 * k, 5.0 - k, converged=k != 1)
           for k in range(3)]
    s = relax_first_step(hot + cool)
    assert list(s["groups"]) == ["1000 K", "2000 K"]
    g1, g2 = s["groups"]["1000 K"], s["groups"]["2000 K"]
    assert g1["spearman"] == pytest.approx(1.0) and g1["pearson"] == pytest.approx(1.0)
    assert g1["units"] == 6 >= MIN_UNITS and g1["resolved"]
    assert all(math.isfinite(v) for v in g1["first_order_ci"])
    assert g1["first_order_ratio"] == pytest.approx(1 / 0.9)
    assert g2["spearman"] == pytest.approx(-1.0) and not g2["resolved"]
    assert g2["converged"] == 2 and g2["convergence_known"] == 3
    assert s["n"] == 9 and list(s["points"]) == ["1000 K", "2000 K"]
    assert [len(x) for x, _ in s["points"].values()] == [6, 3]


def test_report_section_per_temperature_not_resolved_and_unconverged_named(tmp_path):
    cool = [_relaxation(f"g{k}", 1000.0, 0.1 * k, 0.2 * k) for k in range(6)]
    hot = [_relaxation(f"h{k}", 2000.0, 0.5 + 0.1 * k, 5.0 - k, converged=k != 1)
           for k in range(3)]
    for r in cool + hot:
        r.path = tmp_path / r.path
    text = "\n".join(relaxation_section({"relax": cool + hot}, tmp_path))
    first = (tmp_path / "relax_first_step_0.md").read_text().splitlines()
    row_1000 = next(line for line in first if line.startswith("| 1000 K"))
    row_2000 = next(line for line in first if line.startswith("| 2000 K"))
    assert "1.00 [" in row_1000 and "not resolved" not in row_1000
    assert row_2000.count("not resolved") == 3          # Spearman, Pearson, first-order ratio
    assert "No correlation pooled over the start temperatures" in text
    assert "Converged (max per-atom |F_app| <= 0.001 eV/A within 3 steps): 8 of 9." in text
    assert "Unconverged, stopped by the cap: `relax_h1.h5` (3 steps, max |F_app| 0.2 eV/A)." \
        in text
    end = (tmp_path / "relax_end_0.md").read_text()
    assert "| 2000 K | 3 (3) | 2 of 3 |" in end
    for png in ("relax_first_step_0.png", "relax_error_vs_step_0.png"):
        assert (tmp_path / png).stat().st_size > 1000
