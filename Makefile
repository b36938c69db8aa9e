# Two commands do all set-up on a fresh machine:
#   make demo   creates .venv when missing, installs everything, runs the main job
#   make test   creates .venv when missing, runs the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench env clean-env

env: $(STAMP)

# torch first and pinned: 2.13.0 (CPU) is the build on this machine's disk; the package is
# then installed without build isolation so that its C++ plugin compiles against it.
$(STAMP): pyproject.toml setup.py $(wildcard lammps_adv/plugin/*.cpp lammps_adv/plugin/*.h lammps_adv/plugin/CMakeLists.txt)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "setuptools>=64" wheel
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q --no-build-isolation -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lammps-adv demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-env:
	rm -rf $(VENV)
