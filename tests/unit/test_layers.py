"""The library's layers (docs/architecture.md): the import-linter contract holds, breaking it
fails, and the package has no import cycle (imports inside functions included)."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import BIN, REPO

PACKAGE = REPO / "lammps_adv"


def lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    env = {"PATH": str(BIN), "PYTHONPATH": str(pythonpath), "HOME": str(cwd)}
    return subprocess.run([str(BIN / "lint-imports"), "--no-cache", "--no-logo",
                           "--config", str(cwd / "pyproject.toml")],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_layers_contract_holds():
    proc = lint_imports(REPO, REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def test_a_back_edge_breaks_the_contract(tmp_path):
    """core importing the command line (even inside a function) is refused by name."""
    shutil.copytree(PACKAGE, tmp_path / "lammps_adv",
                    ignore=shutil.ignore_patterns("lib", "*.so", "__pycache__", "kokkos", "kernels"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    core = tmp_path / "lammps_adv" / "core" / "adversarial.py"
    core.write_text(core.read_text() + "\n\ndef _back_edge():\n"
                    "    from lammps_adv.cli import main\n    return main\n")
    proc = lint_imports(tmp_path, tmp_path)
    assert proc.returncode != 0
    assert "lammps_adv.core.adversarial -> lammps_adv.cli" in proc.stdout, proc.stdout


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path, name: str, modules: set) -> set:
    """Modules of the package that ``path`` imports anywhere (top level or in functions)."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def test_no_import_cycles():
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: project_imports(p, m, set(files)) for m, p in files.items()}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, stack + [n])
        state[m] = "done"
    sys.setrecursionlimit(10000)
    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
