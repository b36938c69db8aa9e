"""The main job (`make demo`, `lammps-adv demo`): the study, end to end, at small scale.

Each stage is one `lammps-adv` command (printed, so any stage can be rerun by hand); the
stages that parallelise run under `mpirun -np <ranks>`. Outputs go to ``out`` (default
out/demo):

    data/dataset.h5            training set (the recipe of docs/models.md: thermal MD, relaxed,
                               rattled and rescaled copies, liquid) labelled by bks-dsf
    data/evaluation.h5         held-out configurations (5 other glasses, frames 1 ps apart):
                               probe, relaxations (one frame of each glass and temperature)
    data/alignment.h5          an independent glass, only for the bks-dsf vs bks alignment
    models/bp_energy.pt        BP network trained on energies only (+ model card)
    results/probe_*.h5         error along the adversarial vs random directions
    results/md_bp.h5md         NVT MD driven by the BP network, recorded against bks-dsf
    results/relax_*/           relaxations driven by the approximate model, recorded
    results/mitigate/          remedies compared on equal label budgets (mitigate.h5 + models)
    data/qm/, results/qm/      GFN1-xTB labels (parallel, cached), model pairs judged against
                               them (cos theta on stored labels; probe and relaxations
                               against live xTB)
    report/report.md           tables and figures (lammps-adv report)
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lammps_adv.io.resources import INPUTS, POTENTIALS

SCALES = {
    # the training set (glass sizes, glasses per size and quench time, quench times in ps,
    # thermal frames per MD run; the recipe below adds relaxed, rattled and rescaled copies),
    # atoms of the held-out glasses, their melt and quench times (ps), BP epochs; held-out
    # glasses (the independent units of every interval: at least 5) and
    # frames per held-out MD run (1 ps apart; the probe takes them all, relaxations one
    # per glass and temperature), random directions, the relaxations' step cap (they stop
    # at fmax 1e-3 eV/A; 3000-atom cells stay unconverged at the cap), MD steps driven by
    # the model; LAMMPS runs of the dataset stages over the MPI ranks (domain decomposition)
    "small": dict(train=dict(sizes="96", glasses=2, quench_ps="10", frames=10),
                  glass_atoms=96, melt_ps=5, quench_ps=10, epochs=600,
                  eval_glasses=5, eval_frames=4, n_random=2, relax_steps=1000, md_steps=100,
                  mpi_datasets=False,
                  mitigate=dict(atoms=24, budget=6, seeds="0,1,2,3,4", cutoff=5.0, hidden="16",
                                epochs=60, warm_epochs=20, evaluate=4, relax_steps=5,
                                base_frames=4),
                  # the QM stage (GFN1-xTB labels, labelled in parallel): tiny cells
                  qm=dict(atoms=24, glasses=5, quartz="2x1x1", frames=4, probe_configs=6,
                          relaxations=4, relax_steps=10)),
    # the study's 3000-atom cell for everything bks-dsf labels; sized to finish in 60 min
    # on 2 cores (docs/tutorial.md, "The full-scale version")
    "full": dict(train=dict(sizes="96,192", glasses=2, quench_ps="10,2", frames=10),
                 glass_atoms=3000, melt_ps=2, quench_ps=5, epochs=600,
                 eval_glasses=5, eval_frames=4, n_random=2, relax_steps=30, md_steps=100,
                 mpi_datasets=True,
                 # base_frames: the base set's training split gives every displacement a
                 # start of its own (no label twice): more starts than the 32-label budget
                 mitigate=dict(atoms=96, budget=32, seeds="0,1,2,3,4", cutoff=6.0,
                               hidden="30,30", epochs=200, warm_epochs=60, evaluate=16,
                               relax_steps=20, base_frames=8),
                 qm=dict(atoms=96, glasses=5, quartz="2x2x2", frames=4, probe_configs=8,
                         relaxations=4, relax_steps=20)),
}
QM_TEMPS = (300, 1500, 3000)      # K: glass configurations labelled by GFN1-xTB
# shipped networks trained on GFN1-xTB (make models): graph network on energies + forces,
# BP on energies only
XTB_MODELS = ("gnn_xtb", "bp_xtb_energy")
# configurations, labels, cos(theta) of bks, bks-dsf and each shipped network, the live
# probe, relaxations driven by bks and by gnn_xtb
QM_STAGES = (["configs", "label", "alignment", "probe", "probe"]
             + ["probe" for n in XTB_MODELS if (POTENTIALS / f"{n}.pt").is_file()]
             + ["probe", "relax"] + (["relax"] if (POTENTIALS / "gnn_xtb.pt").is_file() else []))
EVAL_TEMPS = (300, 1000, 2000)      # K: thermal configurations of the held-out glass
# K: glass in the training set (the range studied, and hotter), liquid
TRAIN_TEMPS = (300, 600, 1000, 1500, 2000, 3000, 4000)
QUARTZ_TEMPS = (300, 900)                    # K: quartz in the training set
# what relaxations and probes visit (docs/models.md, "Shipped models"): per MD run one
# minimised frame, frames rattled by these RMS displacements (A) and rescaled to these
# volume ratios
RECIPE = ["--relaxed", 1, "--rattle", "0.05,0.1,0.2", "--volumes", "0.9,1.1"]


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


class Demo:
    def __init__(self, out: Path, ranks: int, quiet: bool = False):
        self.out = out
        self.ranks = ranks
        self.quiet = quiet          # one line per stage; the stages' own output not shown
        self.timings: dict[str, float] = {}
        self.n = 0

    total = 15 + len(QM_STAGES)

    def stage(self, title: str, *args, mpi: bool = False) -> None:
        """Run one `lammps-adv` command as a stage; stop the demo if it fails."""
        self.n += 1
        total = self.total
        args = [str(a) for a in args]
        if {"-o", "--out"} & set(args) and "--overwrite" not in args:
            args.append("--overwrite")      # a rerun of the demo replaces its outputs
        cmd = [_bin("lammps-adv"), *args]
        if mpi and self.ranks > 1:
            cmd = [_bin("mpirun"), "-np", str(self.ranks), *cmd]
        print(f"[{self.n}/{total}] {title}" if self.quiet else
              f"\n[{self.n}/{total}] {title}\n      $ {' '.join(cmd)}", flush=True)
        env = dict(os.environ, OMP_NUM_THREADS="1" if mpi else os.environ.get("OMP_NUM_THREADS", "2"))
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL if self.quiet else None)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"demo stage {self.n} ({title}) failed with exit code "
                               f"{proc.returncode}: {' '.join(cmd)}")
        self.timings[title] = dt
        print(f"      done in {dt:.1f} s", flush=True)


def run_demo(out: str | Path = "out/demo", scale: str = "small", ranks: int = 2,
             quiet: bool = False) -> Path:
    s = SCALES[scale]
    out = Path(out).resolve()
    for sub in ("results", "report"):   # a rerun's report counts this run's recordings only
        shutil.rmtree(out / sub, ignore_errors=True)
    for sub in ("data", "models", "results", "report"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    data, res = out / "data" / "dataset.h5", out / "results"
    held_out = out / "data" / "evaluation.h5"
    bp = out / "models" / "bp_energy.pt"
    gnn = POTENTIALS / "gnn_bks_dsf.pt"
    d = Demo(out, ranks, quiet)
    t_start = time.perf_counter()
    print(f"lammps-adv demo, scale {scale}, {ranks} MPI ranks for parallel stages; outputs in {out}")

    t = s["train"]
    d.stage(f"dataset: melt-quench {t['glasses']} glasses per size ({t['sizes']} atoms) and "
            f"quench time ({t['quench_ps']} ps), NVT MD at {TRAIN_TEMPS[0]}-{TRAIN_TEMPS[-1]} K "
            f"and quartz at {QUARTZ_TEMPS[0]}-{QUARTZ_TEMPS[-1]} K, with relaxed, rattled and "
            "rescaled copies, labelled by bks-dsf",
            "dataset", "mixed", "-o", data, "--reference", "bks-dsf", "--sizes", t["sizes"],
            "--glasses", t["glasses"], "--quench-ps", t["quench_ps"], "--melt-ps", 5,
            "--temps", ",".join(map(str, TRAIN_TEMPS)), "--quartz", "2x2x2",
            "--quartz-temps", ",".join(map(str, QUARTZ_TEMPS)), "--frames", t["frames"],
            "--stride", 50, "--equil", 200, *RECIPE, "--seed", 1, "--quiet")
    d.stage("train a Behler-Parrinello network on energies only (approximates bks-dsf)",
            "train", data, "--model", "bp", "--force-weight", 0, "-o", bp,
            "--epochs", s["epochs"], "--patience", 60, "--lr", "2e-3", "--batch-size", 8,
            "--seed", 0, "--threads", 2)
    d.stage(f"held-out configurations: {s['eval_glasses']} other {s['glass_atoms']}-atom "
            f"glasses (the independent units), NVT MD at {', '.join(map(str, EVAL_TEMPS))} K, "
            f"{s['eval_frames']} frames 1 ps apart per run, labelled by bks-dsf (never trained on)",
            "dataset", "generate", "-o", held_out, "--reference", "bks-dsf",
            "--glass-atoms", s["glass_atoms"], "--glasses", s["eval_glasses"], "--quartz", 0,
            "--glass-temps", ",".join(map(str, EVAL_TEMPS)), "--frames", s["eval_frames"],
            "--stride", 1000, "--melt-ps", s["melt_ps"], "--quench-ps", s["quench_ps"],
            "--seed", 101, "--split", "0,0,1", "--quiet", mpi=s["mpi_datasets"])
    aligned = out / "data" / "alignment.h5"
    d.stage("alignment set: one more glass, used only to fit the bks-dsf vs bks energy zero",
            "dataset", "generate", "-o", aligned, "--reference", "bks-dsf",
            "--glass-atoms", s["glass_atoms"], "--glasses", 1, "--quartz", 0,
            "--glass-temps", "300,2000", "--frames", 2, "--stride", 1000,
            "--melt-ps", s["melt_ps"], "--quench-ps", s["quench_ps"], "--seed", 301,
            "--split", "0,0,1", "--quiet", mpi=s["mpi_datasets"])
    # models trained on bks-dsf share its energy zero: compared raw (--align none)
    probe_common = ["--split", "all", "--random", s["n_random"],
                    "--sampling", "MD driven by the reference"]
    d.stage("probe: BP error along the adversarial vs random directions, epsilon 0-0.5 A^2",
            "probe", held_out, "--approx", f"torchscript:{bp}", "--reference", "bks-dsf",
            "--align", "none", "-o", res / "probe_bp.h5", *probe_common, mpi=True)
    snippet = out / "models" / "bp_energy.lmp"
    snippet.write_text(f"# the demo's BP network as a LAMMPS pair style\n"
                       f"pair_style torchscript\npair_coeff * * {bp} Si O\n")
    glass = _first_glass(data, out / "data" / "glass_start.data")
    d.stage("NVT MD at 300 K driven by the BP network, recorded against bks-dsf every 5 steps",
            "run", INPUTS / "nvt_glass.in", "--reference", "bks-dsf",
            "--approx", f"torchscript:{bp}", "--every", 5, "--out", res / "md_bp.h5md", "--overwrite",
            "--quiet", "-var", "data", glass, "-var", "potential_file", snippet,
            "-var", "steps", s["md_steps"], "-var", "out", out / "data" / "md_bp_final.data",
            mpi=True)
    relax_common = ["--split", "all", "--every", s["eval_frames"], "--min-style", "fire",
                    "--fmax", "1e-3", "--steps", s["relax_steps"], "--overwrite"]
    d.stage("relaxations (FIRE, to fmax 1e-3 eV/A) driven by the BP network from one frame of "
            "each held-out glass and temperature, recorded against bks-dsf",
            "relax", held_out, "--approx", f"torchscript:{bp}", "--reference", "bks-dsf",
            "--align", "none", "-o", res / "relax_bp", *relax_common, mpi=True)
    d.stage("second model pair: the shipped graph network (energies + forces) vs bks-dsf, probe",
            "probe", held_out, "--approx", f"torchscript:{gnn}", "--reference", "bks-dsf",
            "--align", "none", "-o", res / "probe_gnn.h5", *probe_common, mpi=True)
    d.stage("analytic force fields: bks-dsf approximating bks (Ewald), probe; energy zero "
            "fitted once on the alignment set",
            "probe", held_out, "--approx", "bks-dsf", "--reference", "bks",
            "--align-from", aligned, "-o", res / "probe_dsf_vs_bks.h5", *probe_common, mpi=True)
    d.stage("relaxations (FIRE) driven by bks-dsf, recorded against bks (Ewald), same alignment",
            "relax", held_out, "--approx", "bks-dsf", "--reference", "bks",
            "--align-from", res / "probe_dsf_vs_bks.h5", "-o", res / "relax_dsf_vs_bks",
            *relax_common, mpi=True)
    m, mdata = s["mitigate"], out / "data" / "mitigate"
    glass = ["dataset", "generate", "--reference", "bks-dsf", "--glass-atoms", m["atoms"],
             "--quartz", 0, "--stride", 20, "--equil", 100, "--melt-ps", 2, "--quench-ps", 3,
             "--quiet"]
    d.stage(f"remedies, data: {m['atoms']}-atom glasses for a base set, a reserve of MD and "
            "an evaluation set (separate seeds)",
            *glass, "-o", mdata / "base.h5", "--glasses", 2, "--glass-temps", "300,1500,3000",
            "--frames", m["base_frames"], "--seed", 21, "--split", "0.6,0.2,0.2")
    d.stage("remedies, data: reserve of thermal MD (more-md, forces)", *glass,
            "-o", mdata / "pool.h5", "--glass-temps", "600,1200", "--frames",
            max(8, 3 * m["budget"]), "--seed", 22, "--split", "1,0,0")
    d.stage("remedies, data: evaluation set (never trained on)", *glass,
            "-o", mdata / "evaluation.h5", "--glass-temps", "300,1000,2000",
            "--frames", m["evaluate"], "--seed", 23, "--split", "1,0,0")
    d.stage(f"remedies: every strategy, {m['budget']} labels each, seeds {m['seeds']}",
            "mitigate", mdata / "base.h5", "--evaluation", mdata / "evaluation.h5",
            "--pool", mdata / "pool.h5", "-o", res / "mitigate", "--budget", m["budget"],
            "--seeds", m["seeds"], "--cutoff", m["cutoff"], "--hidden", m["hidden"],
            "--epochs", m["epochs"], "--warm-epochs", m["warm_epochs"],
            "--relaxations", m["evaluate"], "--probe-configs", m["evaluate"],
            "--relax-steps", m["relax_steps"], mpi=True)
    qm_stages(d, s["qm"], out)
    d.stage("analysis: tables, figures and report.md", "report", res, "-o", out / "report")
    total = time.perf_counter() - t_start
    d.timings["total"] = total
    (out / "timings.json").write_text(json.dumps(d.timings, indent=1))
    print(f"\ndemo finished in {total / 60:.1f} min; stage times in {out / 'timings.json'}")
    print(f"report: {out / 'report' / 'report.md'}")
    return out / "report" / "report.md"


def qm_stages(d: Demo, q: dict, out: Path) -> None:
    """A quantum-mechanical reference: thermal configurations labelled by GFN1-xTB over the
    MPI ranks (labels cached on disk: a rerun computes none); BKS, BKS-DSF and the shipped
    networks trained on GFN1-xTB (graph network: energies and forces, BP: energies) judged against
    the stored labels; BKS probed, and relaxations driven by BKS and by the network recorded,
    against live GFN1-xTB."""
    data, res = out / "data" / "qm", out / "results" / "qm"
    configs, labels, aligned = data / "configs.h5", data / "gfn1.h5", data / "gfn1_alignment.h5"
    d.stage(f"QM: configurations to label, {q['glasses']} {q['atoms']}-atom glasses "
            f"({', '.join(map(str, QM_TEMPS))} K) and {q['quartz']} quartz, MD driven by bks-dsf",
            "dataset", "generate", "-o", configs, "--reference", "bks-dsf",
            "--glass-atoms", q["atoms"], "--glasses", q["glasses"],
            "--glass-temps", ",".join(map(str, QM_TEMPS)), "--quartz", q["quartz"],
            "--quartz-temps", "300,1500", "--frames", q["frames"], "--stride", 1000,
            "--equil", 200, "--melt-ps", 2, "--quench-ps", 3, "--seed", 31,
            "--split", "0.25,0,0.75", "--quiet")
    d.stage("QM: GFN1-xTB labels (tblite), one configuration per MPI rank, cached on disk",
            "label", configs, "-o", labels, "--reference", "xtb:GFN1", mpi=True)
    d.stage("QM: the alignment split (a quarter of the labelled configurations, used by no "
            "probe or relaxation) as its own dataset", "label", labels, "--split", "train",
            "--reference", f"labels:{labels}", "-o", aligned, "--quiet")
    # the analytic potentials have their own energy zero: one alignment per pair, fitted on
    # the alignment split; the networks trained on GFN1-xTB share its zero (--align none)
    align = {"bks": ["--align-from", aligned], "bks_dsf": ["--align-from", aligned]}
    # cos(theta) on the stored labels: the networks never saw these configurations
    cos_only = ["--split", "test", "--epsilon", 0, "--random", 0,
                "--sampling", "MD driven by bks-dsf"]
    pairs = [("bks", "bks"), ("bks-dsf", "bks_dsf")] + [
        (f"torchscript:{POTENTIALS / f'{n}.pt'}", n) for n in XTB_MODELS if _shipped(n)]
    for approx, name in pairs:
        d.stage(f"QM: cos(theta) of {name} against the stored GFN1-xTB labels", "probe",
                labels, "--approx", approx, "--reference", f"labels:{labels}",
                *align.get(name, ["--align", "none"]),
                "-o", res / f"probe_{name}_vs_gfn1.h5", *cos_only, mpi=True)
    d.stage(f"QM: probe, bks error along A vs random directions against live GFN1-xTB "
            f"({q['probe_configs']} configurations)", "probe", labels, "--approx", "bks",
            "--reference", "xtb:GFN1", *align["bks"], "--split", "test",
            "--every", 8, "--limit", q["probe_configs"], "--random", 2,
            "--sampling", "MD driven by bks-dsf",
            "-o", res / "probe_bks_vs_gfn1_live.h5", mpi=True)
    drivers = [("bks", "bks", align["bks"])]
    if _shipped("gnn_xtb"):
        drivers.append((f"torchscript:{POTENTIALS / 'gnn_xtb.pt'}", "gnn_xtb", ["--align", "none"]))
    for approx, name, how in drivers:
        d.stage(f"QM: relaxations (FIRE) driven by {name}, recorded against live GFN1-xTB "
                f"(capped at {q['relax_steps']} steps: unconverged, labelled so)",
                "relax", labels, "--approx", approx, "--reference", "xtb:GFN1", *how,
                "--split", "test", "--every", 12, "--limit", q["relaxations"],
                "--steps", q["relax_steps"],
                "--min-style", "fire", "--overwrite", "-o", res / f"relax_{name}_vs_gfn1",
                mpi=True)


def _shipped(name: str) -> bool:
    return (POTENTIALS / f"{name}.pt").is_file()


def _first_glass(dataset: Path, out: Path) -> Path:
    """A LAMMPS data file of the dataset's first thermal glass frame (for the MD stage)."""
    # lazy: every other stage is a `lammps-adv` subprocess, so the driver (and
    # `lammps-adv demo --help`) loads no numpy, ase or scipy
    from ase import Atoms
    from lammps_adv.io.dataset import load
    from lammps_adv.lammps.structures import write_lammps_data
    ds = load(dataset)
    for i in range(len(ds)):
        c = ds.config(i)
        src = str(c["source"])        # e.g. n96q10-glass0-T300 (not -relaxed, -rattle0.1)
        if "glass" in src and src.rsplit("-", 1)[-1].startswith("T"):
            return write_lammps_data(out, Atoms(c["names"], positions=c["positions"],
                                                cell=c["cell"], pbc=True))
    raise ValueError(f"{dataset} holds no glass configuration")
