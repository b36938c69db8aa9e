#!/usr/bin/env python
"""Cost of the model integrity checks (models/integrity.py; the pair style makes the same in
C++) when a model file is opened.

    .venv/bin/python bench/bench_integrity.py [--rounds 7]

For each shipped model and a larger BP (hidden 512-512, 4.9 MB): `contract.load` (every
archive member's CRC-32, then the parameters' checksum, then the contract) against plain
`torch.jit.load` of the same file, interleaved, best of the rounds. Prints both times and
their ratio, the checks' overhead.
"""
import argparse
import warnings

import torch

from common import OUT, REPO, best, cpu
from lammps_adv.models.contract import load
from lammps_adv.models.export import build_model, export


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7, help="rounds, best taken (default 7)")
    a = ap.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    big = OUT / "integrity_bp_512.pt"
    if not big.is_file():
        torch.manual_seed(0)
        export(build_model("bp", species=["Si", "O"], hidden=(512, 512)), big)
    files = sorted((REPO / "potentials").glob("*.pt")) + [big]
    print(f"host: {cpu()}, torch {torch.__version__}")
    print(f"{'model':24s} {'size':>8s} {'torch.jit.load':>15s} {'contract.load':>14s} {'ratio':>6s}")
    for path in files:
        plain = checked = float("inf")
        for _ in range(a.rounds):              # interleaved: both see the same host state
            plain = min(plain, best(lambda: torch.jit.load(str(path), map_location="cpu"), 1))
            checked = min(checked, best(lambda: load(path), 1))
        print(f"{path.stem:24s} {path.stat().st_size / 1e6:6.2f} MB {1e3 * plain:12.1f} ms "
              f"{1e3 * checked:11.1f} ms {checked / plain:6.2f}x")


if __name__ == "__main__":
    main()
