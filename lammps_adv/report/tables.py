"""The report's tables: rows written as CSV + Markdown, values with their 95 % intervals."""
from __future__ import annotations

import csv
import math
from pathlib import Path

from lammps_adv.core.statistics import MIN_UNITS


def with_ci(value: float, ci: tuple[float, float], fmt: str = "{:.3g}") -> str:
    """'12.3 [10.1, 14.2]' (a value and its 95 % interval) for tables."""
    if not math.isfinite(value):
        return "n/a"
    if not all(math.isfinite(c) for c in ci):
        return fmt.format(value)
    return f"{fmt.format(value)} [{fmt.format(ci[0])}, {fmt.format(ci[1])}]"


def with_ci_if_resolved(value: float, ci: tuple[float, float], units: int,
                        fmt: str = "{:.3g}", min_units: int = MIN_UNITS) -> str:
    """with_ci, or '12.3 [not resolved]' when fewer than ``min_units`` independent units
    (configurations, relaxations) stand behind the interval."""
    if units >= min_units or not math.isfinite(value):
        return with_ci(value, ci, fmt)
    return f"{fmt.format(value)} [not resolved]"


def write_table(rows: list[dict], stem: Path, floatfmt: str = "{:.6g}",
                markdown: bool = True) -> tuple[Path, Path | None]:
    """Write rows (dicts with the same keys) as stem.csv and (with ``markdown``) stem.md."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    # appended, not with_suffix: a stem such as out/run.v2 keeps its dot
    csv_path, md_path = Path(f"{stem}.csv"), Path(f"{stem}.md")
    keys = list(rows[0]) if rows else []

    def fmt(v):
        return floatfmt.format(v) if isinstance(v, float) else str(v)

    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(keys)
        for r in rows:
            w.writerow([fmt(r[k]) for k in keys])
    if not markdown:
        return csv_path, None

    def cell(v):             # a '|' inside a cell (|cos|) would end it
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, keys)) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(fmt(r[k])) for k in keys) + " |" for r in rows]
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path
