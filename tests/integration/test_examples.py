"""examples/api_tour.py, the function-level API of docs/python.md, runs as written."""
import re

from conftest import BIN, REPO, run_cmd


def test_api_tour_runs_and_prints_each_step(tmp_path):
    proc = run_cmd([BIN / "python", REPO / "examples" / "api_tour.py", tmp_path], cwd=tmp_path)
    out = proc.stdout
    assert re.search(r"cos\(theta\) = [-+]0\.\d+, \|cos\| = 0\.\d+", out), out
    assert "per-species: O " in out and "source: three rattled quartz cells" in out
    assert re.search(r"probe: error along A \[", out)
    rows = int(re.search(r"run\.h5md: (\d+) rows", out).group(1))
    assert rows == 21 and "11 frames of 72 atoms" in out
    assert "MDAnalysis: 11 frames 0.02 ps apart, types ['O', 'Si']" in out
    assert re.search(r"BFGS with the graph network: -1[23]\.\d+ eV/atom", out)
