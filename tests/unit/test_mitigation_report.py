"""The report's remedies section from a mitigation summary: table with intervals, verdicts
against baseline and more-md, remedy 4, figures; reproducible."""
import numpy as np

from lammps_adv.report.build import build_report
from lammps_adv.io import h5md
from lammps_adv.experiments.mitigate import MEASURES


def _summary(path, forces_cos_low=0.6):
    """3 strategies x 4 seeds; 'forces' lowers cos(theta) on every configuration but the
    lowest-energy quarter (set by forces_cos_low)."""
    strategies, seeds, n_cfg = ["baseline", "more-md", "forces"], [0, 1, 2, 3], 8
    rng = np.random.default_rng(0)
    energy = np.linspace(-15.0, -14.0, n_cfg)                   # eV/atom; first 2 lowest
    cos = np.empty((3, 4, n_cfg))
    cos[0] = 0.5 + 0.01 * rng.normal(size=(4, n_cfg))
    cos[1] = 0.48 + 0.01 * rng.normal(size=(4, n_cfg))
    cos[2] = 0.1 + 0.01 * rng.normal(size=(4, n_cfg))
    cos[2][:, :2] = forces_cos_low
    measures = {m: rng.normal(size=(3, 4)) for m in MEASURES}
    measures["cos_mean"] = cos.mean(axis=2)
    measures["relax_growth"] = np.array([[3.0, 3.1, 2.9, 3.0], [2.9, 3.0, 3.1, 2.95],
                                         [1.5, 1.6, 1.4, 1.55]])
    h5md.write_mitigation(path, {"experiment": "mitigate", "approx_kind": "bp",
                                 "reference": "bks-dsf"}, strategies, seeds,
                          labels_spent=np.array([[0] * 4, [16] * 4, [16] * 4]), measures=measures,
                          curves={"energy_rmse_meV_per_atom": rng.random((3, 4, 3)),
                                  "cos_mean": rng.random((3, 4, 3))},
                          labels_per_round=[0, 8, 16],
                          per_run={"cos": cos, "relax_curve": rng.random((3, 4, 6))},
                          eval_energy_per_atom=energy)
    return path


def test_remedies_section(tmp_path):
    summary = _summary(tmp_path / "mitigate.h5")
    d = h5md.read_mitigation(summary)
    assert d["strategy"] == ["baseline", "more-md", "forces"] and d["per_run"]["cos"].shape == (3, 4, 8)
    report = build_report([summary], tmp_path / "r1")
    text = report.read_text()
    assert "## Remedies compared on equal budgets (bp approximating bks-dsf)" in text
    assert "| forces | 16 |" in text and "| baseline | 0 |" in text
    assert "**mean cos(theta)**: lower than both baseline and more-md" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("**relaxation error growth**"))
    assert "forces (-1.49 [" in line and "Not established: none" in line
    assert "the study's finding (lower except for the lowest-energy configurations) holds here" in text
    for png in ("mitigation_cos_hist_0.png", "mitigation_relax_0.png", "mitigation_labels_0.png"):
        assert (tmp_path / "r1" / png).stat().st_size > 1000
    again = build_report([summary], tmp_path / "r2").read_text()
    assert again.replace("r2", "r1") == text
    # force training that also lowers the lowest-energy configurations: the finding fails
    other = build_report([_summary(tmp_path / "m2.h5", forces_cos_low=0.1)],
                                  tmp_path / "r3").read_text()
    assert "does not hold here" in other
