"""The report's remedies section from a mitigation summary: verdicts on mean |cos(theta)| and
the sign fraction paired over seeds ("not resolved" below 5 seeds), never on the signed
mean; remedy 4 (X+forces against X) on relaxed minima vs thermal configurations; the table
by kind of evaluation configuration and the per-run label records; figures; tables
reproduced byte for byte."""
import numpy as np
import pytest

from lammps_adv.experiments.mitigate import CURVES, MEASURES
from lammps_adv.io import h5md
from lammps_adv.report import mitigation
from lammps_adv.report.build import build_report

STRATEGIES = ["baseline", "more-md", "more-md+forces", "step-f-acc"]
N_THERMAL, N_STARTS, N_MINIMA, N_ENDS = 8, 2, 2, 2


def _summary(path, n_seeds=6, forces_minima_abs_cos=1.0, strategies=STRATEGIES):
    """4 strategies x n_seeds; 8 thermal configurations, 2 relaxation starts, 2 relaxed
    minima and 2 md end points.

    baseline, more-md: |cos| 0.6 on thermal, signs mixed (+ on 6 of 8); more-md+forces:
    |cos| 0.2 on thermal; step-f-acc: |cos| 0.8 on thermal but every sign negative, so it
    lowers the signed mean while raising |cos|. On the minima |cos| = 1 (F_acc = 0) except
    for more-md+forces when ``forces_minima_abs_cos`` says otherwise. Energy errors per atom
    are 0.01 eV/atom + noise, force errors sum to 3 * 24 (eV/A)^2 per configuration (force
    RMSE 1 eV/A)."""
    rng = np.random.default_rng(1)
    n_cfg = N_THERMAL + N_STARTS + N_MINIMA + N_ENDS
    kinds = (["thermal"] * N_THERMAL + ["relax-start"] * N_STARTS + ["minimum"] * N_MINIMA
             + ["md-end"] * N_ENDS)
    thermal = np.array(kinds) != "minimum"
    abs_cos = np.empty((4, n_seeds, n_cfg))
    for i, level in enumerate((0.6, 0.6, 0.2, 0.8)):
        abs_cos[i] = level + 0.02 * rng.normal(size=(n_seeds, n_cfg))
    abs_cos[:, :, ~thermal] = 1.0 - 0.001 * rng.random((4, n_seeds, N_MINIMA))
    abs_cos[2][:, ~thermal] = forces_minima_abs_cos
    sign = np.where(rng.random((4, n_seeds, n_cfg)) < 0.75, 1.0, -1.0)
    sign[3] = -1.0
    cos = sign * abs_cos
    th = np.array(kinds) == "thermal"
    measures = {m: rng.normal(size=(4, n_seeds)) for m in MEASURES}
    measures["abs_cos_mean"] = abs_cos[:, :, th].mean(axis=2)
    measures["abs_cos_over_random"] = measures["abs_cos_mean"] / 0.094
    measures["sign_fraction"] = (sign[:, :, th] > 0).mean(axis=2)
    measures["cos_mean"] = cos[:, :, th].mean(axis=2)
    measures["relax_growth"] = np.array([[3.0] * n_seeds, [2.95] * n_seeds, [1.5] * n_seeds,
                                         [3.0] * n_seeds]) + 0.05 * rng.normal(size=(4, n_seeds))
    energy_error = 0.01 + 0.001 * rng.normal(size=(4, n_seeds, n_cfg))
    outliers = np.zeros((4, n_seeds), dtype=int)
    outliers[3, 0] = 2
    h5md.write_mitigation(
        path, {"experiment": "mitigate", "approx_kind": "bp", "reference": "bks-dsf",
               "validation": "/somewhere/validation.h5",
               "settings": '{"outlier_energy": 0.5, "outlier_force": 30.0, '
                           '"force_weight": 0.001, "md_ends": null, "md_steps": 300, '
                           '"md_temperature": 1500.0, "driver_seed": 99}'},
        strategies, list(range(n_seeds)), labels_spent=np.array([[0] * n_seeds] + [[16] * n_seeds] * 3),
        measures=measures, curves={m: rng.random((4, n_seeds, 3)) for m in CURVES},
        labels_per_round=[0, 8, 16],
        per_run={"cos": cos, "abs_cos": abs_cos, "energy_error_sign": sign,
                 "cos_force_error": abs_cos, "force_error_ratio": np.ones_like(cos),
                 "alignment_offset": np.zeros_like(cos), "energy_error_per_atom": energy_error,
                 "force_sq_error": np.full_like(cos, 3 * 24.0),
                 "relax_curve": rng.random((4, n_seeds, 6))},
        eval_energy_per_atom=np.linspace(-15.0, -14.0, n_cfg), eval_kind=kinds,
        eval_max_force=np.where(np.array(kinds) == "minimum", 9e-4, 2.0),
        eval_n_atoms=np.full(n_cfg, 24), duplicate_labels=np.zeros((4, n_seeds), dtype=int),
        outlier_labels=outliers,
        label_key=np.full((4, n_seeds, 16), "k", dtype=object),
        label_outlier=np.zeros((4, n_seeds, 16), dtype=int))
    return path


def test_verdicts_are_on_abs_cos_not_the_signed_mean(tmp_path):
    d = h5md.read_mitigation(_summary(tmp_path / "m.h5"))
    assert d["eval_kind"].count("minimum") == N_MINIMA
    # step-f-acc lowers the signed mean and raises |cos|: the verdict follows |cos|
    assert mitigation.paired(d, "cos_mean", "step-f-acc", "baseline")["mean"] < -0.5
    assert mitigation.strategy_verdict(d, "abs_cos_mean", "step-f-acc") == "higher than both"
    assert mitigation.strategy_verdict(d, "abs_cos_mean", "more-md+forces") == "lower than both"
    assert mitigation.strategy_verdict(d, "sign_fraction", "step-f-acc") == "lower than both"
    c = mitigation.paired(d, "abs_cos_mean", "more-md+forces", "more-md")
    assert c["seeds"] == 6 and c["verdict"] == "lower" and c["ci"][1] < 0
    assert len(c["per_seed"]) == 6 and (c["per_seed"] < -0.3).all()
    text = "\n".join(mitigation.verdicts(d))
    line = next(ln for ln in text.splitlines() if ln.startswith("**mean |cos(theta)|**"))
    assert "(6 seeds): lower |cos| than both baseline and more-md" in line
    assert line.index("more-md+forces (") < line.index("Higher than both") \
        < line.index("step-f-acc (")


def test_fewer_than_five_seeds_is_not_resolved(tmp_path):
    d = h5md.read_mitigation(_summary(tmp_path / "m.h5", n_seeds=3))
    assert mitigation.paired(d, "abs_cos_mean", "more-md+forces", "baseline")["verdict"] \
        == "not resolved"
    assert mitigation.strategy_verdict(d, "abs_cos_mean", "more-md+forces") \
        == "not resolved (3 seeds < 5)"
    line = mitigation.verdicts(d)[0]
    assert line.startswith("**mean |cos(theta)|**: not resolved: 3 seeds, fewer than the 5")
    per_seed = mitigation.paired(d, "abs_cos_mean", "more-md+forces", "baseline")["per_seed"]
    assert f"more-md+forces (per seed {per_seed[0]:+.3g}, " in line
    assert "not resolved: 3 seeds, fewer than 5" in mitigation.remedy4(d)
    rows = mitigation.table_rows(d)
    assert rows[0]["mean abs cos(theta)"].endswith("[not resolved]")


def test_remedy4_on_minima_vs_thermal(tmp_path):
    d = h5md.read_mitigation(_summary(tmp_path / "m.h5"))
    text = mitigation.remedy4(d)
    assert "**more-md+forces** against **more-md**" in text
    assert "minimum (2, largest reference force 0.0009 eV/A): " in text
    th = np.array(d["eval_kind"]) == "thermal"
    levels = [d["per_run"]["abs_cos"][i][:, th].mean() for i in (2, 1)]   # +forces, more-md
    assert f"thermal (8): {levels[0]:.3g} vs {levels[1]:.3g} (" in text and "md-end (2): " in text
    # |cos| on the minima is 1 - 0.001 x uniform for both: 1 by construction, said so
    assert "The study's statement holds here (6 seeds), at the minima by construction" in text
    assert "Other kinds: relax-start lower, md-end lower." in text
    lower = h5md.read_mitigation(_summary(tmp_path / "m2.h5", forces_minima_abs_cos=0.3))
    assert "does not hold here (6 seeds): force training lowers |cos| on the minima" in \
        mitigation.remedy4(lower)
    # a summary from before the +forces pairs: forces against baseline
    old = h5md.read_mitigation(_summary(tmp_path / "m3.h5", strategies=[
        "baseline", "more-md", "forces", "step-f-acc"]))
    assert "**forces** against **baseline**" in mitigation.remedy4(old)
    del d["eval_kind"]
    assert "not resolved: the evaluation set has no relaxed minima" in mitigation.remedy4(d)


def test_table_by_kind_and_runs(tmp_path):
    d = h5md.read_mitigation(_summary(tmp_path / "m.h5"))
    rows = mitigation.kind_rows(d)
    assert [r["kind"] for r in rows[::4]] == ["thermal", "relax-start", "minimum", "md-end"]
    assert [r["configurations"] for r in rows[::4]] == [8, 2, 2, 2]
    first = rows[0]
    assert first["force RMSE (eV/A)"].startswith("1 [1, 1]")
    raw = float(first["energy RMSE (meV/atom)"].split()[0])
    removed = float(first["energy RMSE, offset removed (meV/atom)"].split()[0])
    assert 9.5 < raw < 10.5 and removed < 1.5      # a 10 meV/atom offset, 1 meV/atom noise
    runs = mitigation.run_rows(d)
    assert len(runs) == 4 * 6
    odd = next(r for r in runs if r["strategy"] == "step-f-acc" and r["seed"] == 0)
    assert (odd["labels spent"], odd["outliers (not trained on)"], odd["labels trained on"]) \
        == (16, 2, 14)
    table = mitigation.table_rows(d)
    assert (table[3]["labels"], table[3]["duplicate labels"],
            table[3]["outliers (not trained on)"]) == ("16", 0, 2)


def test_remedies_section(tmp_path):
    summary = _summary(tmp_path / "mitigate.h5")
    text = build_report([summary], tmp_path / "r1").read_text()
    assert "## Remedies compared on equal budgets (bp approximating bks-dsf)" in text
    assert "| more-md+forces | 16 | 0 | 0 |" in text and "| baseline | 0 | 0 | 0 |" in text
    assert "random |cos| sqrt(2/(pi 3N)) = 0.094" in text
    assert "Energy zero: raw energies" in text
    assert "every training early-stops on validation.h5 and refits no energy shift" in text
    assert "/somewhere" not in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| more-md+forces | 16 |"))
    assert row.endswith("| lower than both | not established |")
    assert "| mean abs cos(theta) | more-md+forces | baseline | 6 |" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("**relaxation error growth**"))
    assert "lower growth than both baseline and more-md" in line and "more-md+forces (-1.5" in line
    assert "| md-end | 2 | step-f-acc |" in text and "| step-f-acc | 0 | 16 | 0 | 2 | 14 |" in text
    for png in ("mitigation_cos_hist_0.png", "mitigation_relax_0.png", "mitigation_labels_0.png"):
        assert (tmp_path / "r1" / png).stat().st_size > 1000
    again = build_report([summary], tmp_path / "r2").read_text()
    assert again.replace("r2", "r1") == text
    tables = sorted(p.name for p in (tmp_path / "r1").glob("mitigation_*.[cm][sd]*"))
    assert len(tables) == 8                     # table, verdicts, kinds, runs: .csv and .md
    for name in tables:                         # the analysis reproduces them byte for byte
        assert (tmp_path / "r2" / name).read_bytes() == (tmp_path / "r1" / name).read_bytes()


def test_paired_difference_needs_five_finite_seeds():
    c = mitigation.paired_difference([-1.0, -1.1, -0.9, np.nan, -1.0, -1.05], range(6))
    assert c["seeds"] == 5 and c["verdict"] == "lower"
    c = mitigation.paired_difference([-1.0, 1.0, -1.0, 1.0, -1.0], range(5))
    assert c["verdict"] == "no resolved difference"
    with pytest.raises(ValueError):
        mitigation.paired_difference([1.0, 2.0], range(3))


def test_summary_written_before_the_decomposition_still_reports(tmp_path):
    """An older summary (signed cos only, no eval_kind): the report says what it lacks."""
    rng = np.random.default_rng(0)
    old = ("energy_rmse_meV_per_atom", "force_rmse_eV_per_A", "cos_mean",
           "cos_fraction_positive", "cos_energy_correlation", "probe_excess", "relax_growth")
    path = h5md.write_mitigation(
        tmp_path / "old.h5", {"experiment": "mitigate", "approx_kind": "bp"}, STRATEGIES[:3],
        [0, 1], labels_spent=np.zeros((3, 2)), measures={m: rng.random((3, 2)) for m in old},
        curves={"energy_rmse_meV_per_atom": rng.random((3, 2, 2)), "cos_mean": rng.random((3, 2, 2))},
        labels_per_round=[0, 4], per_run={"cos": rng.random((3, 2, 5)),
                                          "relax_curve": rng.random((3, 2, 4))},
        eval_energy_per_atom=rng.random(5))
    text = build_report([path], tmp_path / "r").read_text()
    assert "**mean |cos(theta)|**: not in this summary" in text
    assert "random |cos| sqrt(2/(pi 3N)) = n/a" in text
    assert "Remedy 4 (training on forces): not resolved: the summary has no per-configuration" in text
