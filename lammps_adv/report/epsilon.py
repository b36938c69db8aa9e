"""The report's epsilon section: per probe file, |E_acc - E_app| along the adversarial
direction vs random directions, as a table with intervals and a figure, compared with the
study's table."""
from __future__ import annotations

import math
from pathlib import Path

from lammps_adv.core.summaries import epsilon_rows
from lammps_adv.report.figures import plot_epsilon
from lammps_adv.report.labels import alignment_of, pair_label
from lammps_adv.report.tables import with_ci, write_table


# the study's epsilon table (same units in both rows, presumably meV/atom), eps 0 .. 0.5 A^2
STUDY_EPSILON = {0.0: (5.1, 5.1), 0.1: (5.3, 15.4), 0.3: (5.9, 31.9), 0.5: (6.8, 42.0)}


def epsilon_table(rows: list[dict], study: bool) -> list[dict]:
    """The rows of the report's epsilon table (strings 'mean [95 % interval]')."""
    out = []
    for r in rows:
        row = {"epsilon (A^2)": f"{r['epsilon_A2']:g}",
               "adversarial": with_ci(r["adversarial_mean"], (r["adversarial_lo"], r["adversarial_hi"])),
               "random": with_ci(r["random_mean"], (r["random_lo"], r["random_hi"])),
               "increase adv.": with_ci(r["adversarial_increase"], r["adversarial_increase_ci"])
               if r["epsilon_A2"] else "-",
               "increase random": with_ci(r["random_increase"], r["random_increase_ci"])
               if r["epsilon_A2"] else "-",
               "ratio of increases": with_ci(r["ratio"], r["ratio_ci"]),
               "pushed into the core": f"{r['core_fraction']:.0%}"
               if math.isfinite(r["core_fraction"]) else "n/a"}
        if study:
            rnd, adv = STUDY_EPSILON.get(round(r["epsilon_A2"], 6), (None, None))
            row["study: adversarial / random"] = f"{adv} / {rnd}" if adv is not None else "-"
        out.append(row)
    return out


def study_sentence(rows: list[dict]) -> str:
    """One sentence comparing an epsilon table with the study's (mission: eps 0.1-0.5)."""
    ours = {round(r["epsilon_A2"], 6): r for r in rows}
    common = [e for e in (0.1, 0.3, 0.5) if e in ours]
    if not common:
        return "The study's epsilon values (0.1, 0.3, 0.5 A^2) are not among these."
    e = common[-1]
    r = ours[e]
    if not math.isfinite(r["ratio"]):
        lo = r["adversarial_increase_ci"][0]
        return (f"At epsilon = {e:g} A^2 the random directions did not raise the error "
                f"measurably (increase {with_ci(r['random_increase'], r['random_increase_ci'])}"
                f" meV/atom), so no ratio is given; the step along A raised it by "
                f"{with_ci(r['adversarial_increase'], r['adversarial_increase_ci'])} meV/atom "
                f"(study: {STUDY_EPSILON[e][1] - STUDY_EPSILON[0.0][1]:.1f} along A vs "
                f"{STUDY_EPSILON[e][0] - STUDY_EPSILON[0.0][0]:.1f} at random). "
                + ("As in the study, the adversarial direction is the worse one."
                   if lo > 0 else "Unlike the study, the step along A did not raise it either."))
    study_ratio = (STUDY_EPSILON[e][1] - STUDY_EPSILON[0.0][1]) / (STUDY_EPSILON[e][0] - STUDY_EPSILON[0.0][0])
    lo, hi = ours[e]["ratio_ci"]
    verdict = ("agrees with" if lo <= study_ratio <= hi else
               "is larger than" if lo > study_ratio else "is smaller than")
    return (f"At epsilon = {e:g} A^2 the study's adversarial step raised the error "
            f"{study_ratio:.0f}x more than a random one ({STUDY_EPSILON[0.0][1]} -> "
            f"{STUDY_EPSILON[e][1]} vs {STUDY_EPSILON[0.0][0]} -> {STUDY_EPSILON[e][0]}); ours "
            f"{with_ci(ours[e]['ratio'], ours[e]['ratio_ci'])} {verdict} it. "
            + ("As in the study, the adversarial direction is the worse one (interval above 1). "
               if lo > 1 else "Unlike the study, the interval does not exclude 1. ")
            + "Absolute errors differ: other models, and the study's 3000-atom cell took "
            "epsilon as a much smaller distortion per atom.")


def epsilon_section(res: dict, out: Path) -> list[str]:
    """Markdown lines, tables (CSV + Markdown) and figures of every probe file that has more
    than one epsilon (``res`` as ``lammps_adv.io.results.read_results`` returns it)."""
    lines = []
    for i, p in enumerate(res["probe"]):
        if len(p.data["epsilon"]) < 2:
            continue        # a cos(theta)-only probe (e.g. on stored labels): section 2 only
        rows = epsilon_rows(p)
        stem = out / f"epsilon_table_{i}"
        total = p.params.get("distortion", "total") == "total"
        write_table(epsilon_table(rows, study=total), stem)
        png = plot_epsilon(rows, stem.with_suffix(".png"), xlabel=(
            r"total distortion $\epsilon$ ($\AA^2$)" if total else
            r"distortion per atom $\epsilon$ ($\AA^2$)"))
        steps = int(p.params.get("ascent_steps", 1))
        lines += [f"## Error along the adversarial vs random directions ({pair_label(p.params)})", "",
                  f"{len(p.data['natoms'])} configurations ({p.path.name}), "
                  f"{p.data['error_random'].shape[1]} random directions each; distortion "
                  f"{'sum_i |dr_i|^2 = epsilon over the cell' if total else 'epsilon per atom'}; "
                  f"{'one step' if steps == 1 else f'{steps} steps of projected gradient ascent'}"
                  f" along A. |E_acc - E_app| in meV/atom. Alignment: "
                  f"{alignment_of(p.params)}.", "",
                  stem.with_suffix(".md").read_text(), ""]
        if total:
            lines += [study_sentence(rows), ""]
        lines += [f"![epsilon]({png.name})", ""]
    return lines
