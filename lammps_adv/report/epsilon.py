"""The report's epsilon section: per probe file, |E_acc - E_app| along the adversarial
direction vs random directions, as a table with intervals and a figure, compared with the
study's table; the flagged displaced configurations (a pair pushed together, an eV-scale
error) counted in the table, kept out of its means and listed apart."""
from __future__ import annotations

import math
from pathlib import Path

from lammps_adv.core.statistics import MIN_UNITS
from lammps_adv.core.summaries import epsilon_rows, flagged_rows
from lammps_adv.report.figures import STUDY, plot_epsilon
from lammps_adv.report.labels import alignment_of, pair_label
from lammps_adv.report.tables import with_ci, with_ci_if_resolved, write_table


# the study's epsilon table (same units in both rows, presumably meV/atom), eps 0 .. 0.5 A^2
STUDY_EPSILON = {0.0: (5.1, 5.1), 0.1: (5.3, 15.4), 0.3: (5.9, 31.9), 0.5: (6.8, 42.0)}
FLAGGED_SHOWN = 20          # flagged configurations listed in report.md (all in the CSV)


def _span(lo_hi: tuple[float, float], fmt: str = "{:.3g}") -> str:
    """'0.1' or '0.05-0.07' (a value that varies over the configurations)."""
    lo, hi = (fmt.format(v) for v in lo_hi)
    return lo if lo == hi else f"{lo}-{hi}"


def epsilon_table(rows: list[dict], study: bool) -> list[dict]:
    """The rows of the report's epsilon table (strings 'mean [95 % interval]')."""
    out = []
    for r in rows:
        displaced = r["epsilon_A2"] != 0
        units_a, units_r = r["adversarial_units"], r["random_units"]
        row = {"sum dr^2 (A^2)": _span(r["epsilon_total_A2"]),
               "rms displacement per atom (A)": _span(r["rms_displacement_A"]),
               "adversarial": with_ci_if_resolved(
                   r["adversarial_mean"], (r["adversarial_lo"], r["adversarial_hi"]), units_a),
               "random": with_ci_if_resolved(
                   r["random_mean"], (r["random_lo"], r["random_hi"]), units_r),
               "increase adv.": with_ci_if_resolved(
                   r["adversarial_increase"], r["adversarial_increase_ci"], units_a)
               if displaced else "-",
               "increase random": with_ci_if_resolved(
                   r["random_increase"], r["random_increase_ci"], units_r)
               if displaced else "-",
               "ratio of increases": with_ci_if_resolved(
                   r["ratio"], r["ratio_ci"], r["increase_units"]),
               "increase / first-order prediction": with_ci_if_resolved(
                   r["first_order_ratio"], r["first_order_ratio_ci"], r["first_order_units"])
               if displaced else "-",
               "flagged (adv. / random)": f"{r['flagged_adversarial']} of "
               f"{r['n_configurations']} / {r['flagged_random']} of {r['n_random_draws']}",
               "independent units (adv. / random)": f"{units_a} / {units_r}"}
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
    if not math.isfinite(r["adversarial_increase"]):
        return (f"At epsilon = {e:g} A^2 every configuration displaced along A was flagged "
                "(listed below): nothing is left to compare with the study.")
    if r["increase_units"] < MIN_UNITS:
        return (f"At epsilon = {e:g} A^2 the step along A raised the error by "
                f"{r['adversarial_increase']:.3g} meV/atom and a random one by "
                f"{r['random_increase']:.3g} (study: {STUDY_EPSILON[e][1] - STUDY_EPSILON[0.0][1]:.1f}"
                f" vs {STUDY_EPSILON[e][0] - STUDY_EPSILON[0.0][0]:.1f}), over only "
                f"{r['increase_units']} independent unit{'' if r['increase_units'] == 1 else 's'}"
                ": not resolved, so no verdict against the study.")
    if not math.isfinite(r["ratio"]):
        lo = r["adversarial_increase_ci"][0]
        lowered = r["random_increase_ci"][1] < 0
        return (f"At epsilon = {e:g} A^2 the random directions "
                + ("lowered the error" if lowered else "did not raise the error measurably")
                + f" (increase {with_ci(r['random_increase'], r['random_increase_ci'])}"
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
        flagged = flagged_rows(p)
        stem = out / f"epsilon_table_{i}"
        total = p.params.get("distortion", "total") == "total"
        write_table(epsilon_table(rows, study=total), stem)
        units = max(r["adversarial_units"] for r in rows)
        note = (f"Mean over {len(p.data['natoms'])} configurations; error bars: 95 % cluster "
                f"bootstrap intervals over the {units} independent units (glasses, crystals "
                f"or trajectories), drawn only with at least {MIN_UNITS}. "
                + (f"Grey: {STUDY} (3000-atom silica glass)." if total else ""))
        png = plot_epsilon(rows, stem.with_suffix(".png"), xlabel=(
            r"total distortion $\epsilon$ ($\AA^2$)" if total else
            r"distortion per atom $\epsilon$ ($\AA^2$)"), title=pair_label(p.params),
            note=note, min_units=MIN_UNITS, study=STUDY_EPSILON if total else None)
        steps = int(p.params.get("ascent_steps", 1))
        lines += [f"## Error along the adversarial vs random directions ({pair_label(p.params)})", "",
                  f"{len(p.data['natoms'])} configurations ({p.path.name}), "
                  f"{p.data['error_random'].shape[1]} random directions each; distortion "
                  f"{'sum_i |dr_i|^2 = epsilon over the cell' if total else 'epsilon per atom'}; "
                  f"{'one step' if steps == 1 else f'{steps} steps of projected gradient ascent'}"
                  f" along A. |E_acc - E_app| in meV/atom. Alignment: "
                  f"{alignment_of(p.params)}.", "",
                  stem.with_suffix(".md").read_text(), ""]
        lines += [_table_notes(p, rows), ""]
        if total:
            lines += [study_sentence(rows), ""]
        lines += [f"![epsilon]({png.name})", ""]
        if flagged:
            lines += _flagged_lines(flagged, out / f"flagged_{i}")
    return lines


def _table_notes(p, rows: list[dict]) -> str:
    """What the table's columns are, and how many units stand behind its intervals."""
    units = max(r["adversarial_units"] for r in rows)
    resample = ("independent units (the probe file's independent_unit: the melt-quenched "
                "glasses)" if p.data.get("independent_unit") is not None
                else "configurations (the file records no independent units)")
    return (f"Intervals: 95 % cluster bootstrap over {resample}; {units} "
            f"unit{'' if units == 1 else 's'}"
            + (f", fewer than {MIN_UNITS}: intervals not resolved" if units < MIN_UNITS else "")
            + ". Flagged displaced configurations (a species pair closer than "
            f"{_recorded(p.params, 'closest_pair_factor')} x its closest pair seen, or "
            f"|E_acc - E_app| above {_recorded(p.params, 'flag_error_eV_per_atom')} eV/atom) "
            "are counted and left out of the means; thresholds: "
            f"{p.params.get('closest_pair_threshold_source', 'not recorded')}. Increase / "
            "first-order prediction: the increase along A over sqrt(sum dr^2) |F_app - F_acc| "
            "/ N, mean of the per-configuration ratios (1 while the error responds linearly).")


def _flagged_lines(flagged: list[dict], stem: Path) -> list[str]:
    """The flagged displaced configurations as a table (all in CSV; the first
    ``FLAGGED_SHOWN`` in report.md)."""
    rows = [{"source": f["source"], "epsilon (A^2)": f"{f['epsilon_A2']:g}",
             "direction": f["direction"], "species pair": f["species_pair"],
             "closest pair (A)": f"{f['closest_pair_A']:.3g}",
             "threshold (A)": f"{f['threshold_A']:.3g}",
             "error (meV/atom)": f"{f['error_meV_per_atom']:.4g}", "reason": f["reason"]}
            for f in flagged]
    _, md = write_table(rows, stem)
    table = md.read_text().splitlines()
    more = len(rows) - FLAGGED_SHOWN
    return (["### Flagged displaced configurations (left out of the means above)", "",
             f"{len(rows)} displaced configurations, each with the species pair closest to "
             "(or below) its threshold.", ""] + table[:2 + FLAGGED_SHOWN]
            + (["", f"... and {more} more in {stem.name}.csv."] if more > 0 else []) + [""])


def _recorded(params: dict, key: str) -> str:
    """A flag rule's number as the probe file recorded it (files before the flags: none)."""
    return f"{params[key]:g}" if key in params else "(not recorded)"
