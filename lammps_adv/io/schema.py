"""The schema of every lammps-adv file: unit strings, observable names and their units,
array units of probe and mitigation files, the dataset file layout, the frame layout of
recordings, the creator name, and the documented ``/parameters`` keys.

Plain data, no I/O: lammps_adv.io.h5md writes and reads by it, the recorder takes its
observable names from it, docs/recorder.md describes it. Metal units throughout (eV,
Angstrom, ps); unit strings are H5MD ``unit`` attributes.
"""
from __future__ import annotations

from lammps_adv.core import adversarial
from lammps_adv.core.alignment import Alignment

H5MD_VERSION = (1, 1)
CREATOR = "lammps-adv"                     # /h5md/creator name of every file we write
# recordings (run, relax, driven) end in .h5md, which MDAnalysis and pyh5md take for H5MD
# without being told; probe, dataset and summary files stay .h5
RECORDING_SUFFIX = ".h5md"
RESULT_SUFFIXES = (".h5", ".hdf5", RECORDING_SUFFIX)

# ----------------------------------------------------------------------------- units (H5MD)
TIME_UNIT = "ps"
LENGTH_UNIT = "Angstrom"
AREA_UNIT = "Angstrom2"
ENERGY_UNIT = "eV"
MILLI_ENERGY_UNIT = "meV"
FORCE_UNIT = "eV Angstrom-1"
STRESS_UNIT = "eV Angstrom-3"
TEMPERATURE_UNIT = "K"
MDA_FORCE_UNIT = "kJ mol-1 Angstrom-1"     # particles/all/force (MDAnalysis knows it)
VELOCITY_UNIT = "Angstrom ps-1"
KJ_PER_MOL_PER_EV = 96.48533212331002      # 1 eV = 96.485... kJ/mol (CODATA 2018)

# ----------------------------------------------------------------------------- recordings
# the columns of /observables: the adversarial measures (lammps_adv.core.adversarial
# computes them) and what the recorder adds to each record
# first_order_change: (F_app - F_acc) of the configuration the step started from (the last
# record of the previous step, same stage) . the displacement since then (minimum image), eV:
# the first-order prediction of the change of energy_error (0 during a stage's first step)
RECORDING_OBSERVABLES = adversarial.OBSERVABLES + ("temperature", "evaluation", "stage",
                                                   "first_order_change", "dt")
# the unit of each observable; None: dimensionless, no unit attribute
OBSERVABLE_UNITS = {
    "energy_approx": ENERGY_UNIT, "energy_reference": ENERGY_UNIT, "energy_error": ENERGY_UNIT,
    "energy_error_per_atom": ENERGY_UNIT, "cos_adversarial": None,
    "abs_cos_adversarial": None, "energy_error_sign": None, "cos_force_error": None,
    "force_error_ratio": None, "force_rmse": FORCE_UNIT,
    "force_max_error": FORCE_UNIT, "force_cos": None, "fnorm_approx": FORCE_UNIT,
    "fnorm_reference": FORCE_UNIT, "temperature": TEMPERATURE_UNIT, "evaluation": None,
    "stage": None, "first_order_change": ENERGY_UNIT, "dt": TIME_UNIT}
if set(OBSERVABLE_UNITS) != set(RECORDING_OBSERVABLES):
    raise ImportError("lammps_adv.io.schema: OBSERVABLE_UNITS does not cover exactly "
                      f"RECORDING_OBSERVABLES {RECORDING_OBSERVABLES}")

# what a frame holds: (group under /particles/all, shape after K, unit)
FRAME_DATASETS = (("position", "atoms", LENGTH_UNIT), ("velocity", "atoms", VELOCITY_UNIT),
                  ("force", "atoms", MDA_FORCE_UNIT),
                  ("force_approx", "atoms", FORCE_UNIT),
                  ("force_reference", "atoms", FORCE_UNIT),
                  ("box/edges", "box", LENGTH_UNIT), ("record", "record", None))

# /stages: one row per run/minimize command
COMMAND_LEN = 1024                         # bytes of the command kept
STAGE_DTYPES = {"kind": "S16", "command": f"S{COMMAND_LEN}", "first_step": "i8", "first_row": "i8"}

# ----------------------------------------------------------------------------- probe files
PROBE_UNITS = {"epsilon": AREA_UNIT, "error_adversarial": ENERGY_UNIT,
               "error_random": ENERGY_UNIT, "energy_error": ENERGY_UNIT,
               "energy_reference": ENERGY_UNIT, "energy_approx_raw": ENERGY_UNIT,
               "alignment_offset": ENERGY_UNIT,
               "max_displacement_adversarial": LENGTH_UNIT,
               "max_displacement_random": LENGTH_UNIT,
               "min_distance_adversarial": LENGTH_UNIT, "min_distance_random": LENGTH_UNIT,
               "temperature": TEMPERATURE_UNIT,
               "force_error_norm": FORCE_UNIT, "closest_pair_adversarial": LENGTH_UNIT,
               "closest_pair_random": LENGTH_UNIT, "closest_pair_threshold": LENGTH_UNIT}

# string arrays of a probe file; among them the independent unit each configuration
# descends from (what the report's intervals resample; ``temperature`` is the K of its MD)
PROBE_STRING_ARRAYS = ("source", "independent_unit", "species_pairs")

# ----------------------------------------------------------------------------- mitigation summaries
MITIGATION_UNITS = {"energy_rmse_meV_per_atom": MILLI_ENERGY_UNIT,
                    "energy_rmse_offset_removed_meV_per_atom": MILLI_ENERGY_UNIT,
                    "force_rmse_eV_per_A": FORCE_UNIT, "relax_curve": MILLI_ENERGY_UNIT,
                    "alignment_offset": ENERGY_UNIT, "eval_max_force": FORCE_UNIT,
                    "energy_error_per_atom": ENERGY_UNIT,
                    "force_sq_error": f"{ENERGY_UNIT}^2 {LENGTH_UNIT}-2"}

# ----------------------------------------------------------------------------- dataset files
DATASET_FORMAT = "lammps-adv-dataset"
DATASET_VERSION = 1
DATASET_SPLITS = ("train", "validation", "test")
# (path, dtype, required, unit); see lammps_adv.io.dataset for the meaning
DATASET_LAYOUT = (
    ("configs/natoms", "i8", True, None), ("configs/offset", "i8", True, None),
    ("configs/cell", "f8", True, LENGTH_UNIT), ("configs/energy", "f8", True, ENERGY_UNIT),
    ("configs/stress", "f8", False, STRESS_UNIT),
    ("configs/temperature", "f8", False, TEMPERATURE_UNIT),
    ("configs/source", "str", False, None), ("configs/unit", "str", False, None),
    ("atoms/positions", "f8", True, LENGTH_UNIT), ("atoms/species", "i8", True, None),
    ("atoms/forces", "f8", False, FORCE_UNIT),
) + tuple((f"split/{s}", "i8", False, None) for s in DATASET_SPLITS)

# ----------------------------------------------------------------------------- /parameters
# every probe, relaxation and recording: how the approximate energy was aligned
# (lammps_adv.core.alignment.Alignment.attrs makes them)
ALIGNMENT_PARAMETERS = tuple(Alignment().attrs())
# the unit attributes of a recording's /parameters (LAMMPS-style notation, not H5MD's)
PARAMETER_UNITS = {"energy_unit": "eV", "force_unit": "eV/A", "length_unit": "A",
                   "time_unit": "ps"}
# a recording (lammps-adv run, relax): attributes (docs/recorder.md explains each) ...
RECORDING_PARAMETERS = (
    "approx", "approx_pair_style", "approx_kspace_style", "reference",
    "reference_description", "units", "every", "frames_every", "lammps_version",
    "lammps_adv_version", "mpi_ranks", "created", "model_hashes", "variables", "seeds",
    "species_source", "n_atoms") + tuple(PARAMETER_UNITS) + ALIGNMENT_PARAMETERS
# ... and string datasets; /parameters/append_<k> holds both again for each --append session
RECORDING_TEXTS = ("deck", "deck_path", "command_line")
# a probe file (lammps-adv probe): attributes
PROBE_PARAMETERS = (
    "experiment", "approx", "reference", "approx_description", "reference_description",
    "units", "epsilons_A2", "distortion", "ascent_steps", "closest_pair_factor",
    "closest_pair_threshold_source", "flag_error_eV_per_atom", "sampling", "n_random",
    "seed", "command_line") + ALIGNMENT_PARAMETERS
# a relaxation (lammps-adv relax): attributes it adds to its recording's; where it started:
# the start configuration's independent unit (what the report's intervals resample) and the
# K of the MD run it came from (NaN: unknown); how it ended (lammps_adv.experiments.relax):
# converged (bool: max_i |F_app,i| <= fmax_eV_per_A), minimizer_steps (steps done, at most
# the cap ``steps``), final_fmax_eV_per_A (max_i |F_app,i| at the end)
RELAX_PARAMETERS = (
    "experiment", "source", "min_style", "min_modify", "steps", "fmax_eV_per_A",
    "config_index", "command_line", "independent_unit", "start_temperature_K", "converged",
    "minimizer_steps", "final_fmax_eV_per_A")
