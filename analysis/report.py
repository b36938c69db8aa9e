#!/usr/bin/env python
"""Build the study's report from HDF5 results (probe, relax and run files).

    python analysis/report.py out/demo/results -o out/demo/report

Writes epsilon tables (CSV + Markdown + PNG), cos(theta) statistics and histograms,
relaxation summaries (first-step error vs cos theta, error vs step), the pairs judged against
a quantum-mechanical reference (GFN-xTB or stored DFT labels: cos theta with intervals, and
whether force training lowered it) and report.md.
Files that are not lammps-adv results or are truncated are skipped with a warning.
"""
import argparse

from lammps_adv.io.results import find_h5
from lammps_adv.report.build import build_report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="HDF5 files or folders holding them")
    ap.add_argument("-o", "--out", default="report", help="output folder (default report/)")
    args = ap.parse_args()
    print(f"wrote {build_report(find_h5(args.results), args.out)}")


if __name__ == "__main__":
    main()
