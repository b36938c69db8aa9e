"""Energy models behind one calculator interface: LAMMPS (catalogue), TorchScript, ASE (tblite)."""
import math
from typing import List

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")

from lammps_adv.calculators import get_calculator
from lammps_adv.calculators.torchscript import TorchScriptCalculator
from lammps_adv.lammps.elements import type_elements
from lammps_adv.core.errors import CalculatorError
from lammps_adv.lammps.structures import quartz, read_lammps_data, write_lammps_data


# ------------------------------------------------------------------ toy TorchScript models
class PairModel(torch.nn.Module):
    """Smooth repulsive pair model under the model contract (per-atom energies)."""
    cutoff: float
    species: List[str]

    def __init__(self, species: List[str], cutoff: float = 5.0):
        super().__init__()
        self.cutoff = cutoff
        self.species = species
        n = len(species)
        amp = 1.0 + torch.arange(n * n, dtype=torch.float64).reshape(n, n)
        self.register_buffer("amp", 0.5 * (amp + amp.T))

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor,
                n_local: int) -> torch.Tensor:
        i, j = edge_index[0], edge_index[1]
        r = torch.linalg.norm(positions[j] - positions[i], dim=1)
        fc = 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0)
        e = self.amp[species[i], species[j]] * torch.exp(-r / 1.5) * fc
        return torch.zeros(positions.shape[0], dtype=positions.dtype).index_add(0, i, 0.5 * e)


class TwoHopModel(torch.nn.Module):
    """A message-passing toy: E_i = (sum_j w_ij c_j)^2 / 10, c_j = sum_k w_jk (receptive field
    2 * cutoff, so it needs edges centred on images)."""
    cutoff: float
    receptive_field: float
    species: List[str]

    def __init__(self, species: List[str], cutoff: float = 3.5):
        super().__init__()
        self.cutoff = cutoff
        self.receptive_field = 2 * cutoff
        self.species = species

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor,
                n_local: int) -> torch.Tensor:
        i, j = edge_index[0], edge_index[1]
        r = torch.linalg.norm(positions[j] - positions[i], dim=1)
        w = 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0) * (1.0 + species[j].to(r.dtype))
        n = positions.shape[0]
        c = torch.zeros(n, dtype=r.dtype).index_add(0, i, w)
        m = torch.zeros(n, dtype=r.dtype).index_add(0, i, w * c[j])
        return 0.1 * m * m


def script_model(path, kind="pair", species=("Si", "O")):
    model = PairModel(list(species)) if kind == "pair" else TwoHopModel(list(species))
    torch.jit.script(model).save(str(path))
    return path


def _fd_forces(ref, pos, cell, idx, h=1e-5):
    out = []
    for i, k in idx:
        p, m = pos.copy(), pos.copy()
        p[i, k] += h
        m[i, k] -= h
        out.append(-(ref.evaluate(p, cell)[0] - ref.evaluate(m, cell)[0]) / (2 * h))
    return np.array(out)


# ------------------------------------------------------------------ TorchScript
@pytest.mark.parametrize("kind", ["pair", "twohop"])
def test_torchscript_reference_periodic_energy_and_forces(tmp_path, kind):
    path = script_model(tmp_path / f"{kind}.pt", kind)
    ref = get_calculator(f"torchscript:{path}")
    assert isinstance(ref, TorchScriptCalculator) and ref.species == ("Si", "O")
    cell_atoms = quartz()                       # 9 atoms, triclinic, cell edges < 2 cutoffs
    rng = np.random.default_rng(0)
    pos = cell_atoms.positions + rng.normal(0, 0.05, cell_atoms.positions.shape)
    cell = cell_atoms.cell.array
    ref.setup(cell_atoms.get_chemical_symbols())
    e, f = ref.evaluate(pos, cell)
    assert f.shape == (9, 3) and np.isfinite(e)
    assert np.abs(f.sum(axis=0)).max() < 1e-10              # translation invariance
    idx = [(0, 0), (3, 1), (8, 2)]
    np.testing.assert_allclose([f[i, k] for i, k in idx], _fd_forces(ref, pos, cell, idx),
                               rtol=1e-6, atol=1e-8)
    # an image's translation does not matter; a 2x1x1 supercell has twice the energy
    e_shift, f_shift = ref.evaluate(pos + cell[0], cell)
    assert e_shift == pytest.approx(e, rel=1e-12)
    big = cell_atoms.repeat((2, 1, 1))
    ref2 = get_calculator(f"torchscript:{path}")
    ref2.setup(big.get_chemical_symbols())
    pos2 = np.concatenate([pos, pos + cell[0]])
    e2, f2 = ref2.evaluate(pos2, big.cell.array)              # same atom order as repeat()
    assert e2 == pytest.approx(2 * e, rel=1e-10)
    np.testing.assert_allclose(f2[:9], f, atol=1e-9)
    assert ref.hashes() and list(ref.hashes().values())[0] == ref2.hashes()[str(path.resolve())]


def test_torchscript_reference_species_mismatch_is_clear(tmp_path):
    path = script_model(tmp_path / "sin.pt", species=("Si", "N"))
    ref = get_calculator(f"torchscript:{path}")
    with pytest.raises(CalculatorError, match=r"covers the elements Si, N.*also has O"):
        ref.setup(["Si", "O", "O"])


# ------------------------------------------------------------------ LAMMPS
def _direct_lammps(atoms, tmp_path, spec):
    """Energy and forces by a plain LAMMPS run on a data file (independent path)."""
    from lammps_adv.lammps.engine import open_lammps
    from lammps_adv.lammps.snippets import get
    data = write_lammps_data(tmp_path / "direct.data", atoms)
    lmp = open_lammps()
    try:
        lmp.commands_list(["units metal", "atom_style full", "atom_modify map array",
                           "boundary p p p", f"read_data {data}"])
        get(spec).apply(lmp)
        lmp.commands_list(["thermo_style custom step pe", "run 0"])
        e = lmp.get_thermo("pe")
        f = np.array(lmp.gather_atoms("f", 1, 3)).reshape(-1, 3)
    finally:
        lmp.close()
    return e, f, read_lammps_data(data)


def test_lammps_reference_matches_a_direct_run_triclinic_and_box_changes(tmp_path):
    atoms = quartz(2, 2, 1)                      # 36 atoms, triclinic
    e0, f0, written = _direct_lammps(atoms, tmp_path, "bks-dsf")
    ref = get_calculator("bks-dsf")
    ref.setup(written.get_chemical_symbols())
    e, f = ref.evaluate(written.positions, written.cell.array)
    assert e == pytest.approx(e0, abs=1e-8)
    np.testing.assert_allclose(f, f0, atol=1e-8)
    # a changed box (strained cell, positions scaled with it) is followed
    strained = written.copy()
    strained.set_cell(written.cell.array * 1.02, scale_atoms=True)
    e1, f1, w1 = _direct_lammps(strained, tmp_path, "bks-dsf")
    e2, f2 = ref.evaluate(w1.positions, w1.cell.array)
    assert e2 == pytest.approx(e1, abs=1e-8)
    np.testing.assert_allclose(f2, f1, atol=1e-8)
    assert ref.hashes()
    ref.close()


def test_lammps_reference_ewald_bks(glass_192, tmp_path):
    atoms = read_lammps_data(glass_192)
    e0, f0, written = _direct_lammps(atoms, tmp_path, "bks")
    with get_calculator("bks") as ref:
        ref.setup(written.get_chemical_symbols())
        e, f = ref.evaluate(written.positions, written.cell.array)
        assert e == pytest.approx(e0, abs=1e-8)
        np.testing.assert_allclose(f, f0, atol=1e-8)
        # positions outside the cell are wrapped, the result does not change
        e3, f3 = ref.evaluate(written.positions + 2.5 * written.cell.array[1], written.cell.array)
        assert e3 == pytest.approx(e0, abs=1e-8)


def test_unknown_reference_spec_lists_the_known_ones():
    with pytest.raises(CalculatorError, match=r"unknown model spec 'nonsense'.*bks-dsf.*xtb:GFN1"):
        get_calculator("nonsense")
    with pytest.raises(CalculatorError, match="xtb:GFN1 or xtb:GFN2"):
        get_calculator("xtb:GFN7")
    with pytest.raises(CalculatorError, match="not found"):
        get_calculator("torchscript:/no/such/model.pt")


# ------------------------------------------------------------------ ASE / tblite
def test_xtb_gfn1_single_point_on_periodic_quartz():
    from tblite.ase import TBLite
    atoms = quartz()
    ref = get_calculator("xtb:GFN1")
    ref.setup(atoms.get_chemical_symbols())
    pos = atoms.positions.copy()
    pos[0] += [0.05, -0.03, 0.02]
    e, f = ref.evaluate(pos, atoms.cell.array)
    direct = atoms.copy()
    direct.positions = pos
    direct.calc = TBLite(method="GFN1-xTB", verbosity=0)
    assert e == pytest.approx(direct.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(f, direct.get_forces(), atol=1e-8)
    assert -1000 < e / len(atoms) * 9 < -900              # GFN1 quartz: about -937 eV per cell
    fd = _fd_forces(ref, pos, atoms.cell.array, [(0, 0)], h=1e-4)
    assert f[0, 0] == pytest.approx(fd[0], abs=2e-3)


# ------------------------------------------------------------------ elements of LAMMPS types
def test_type_elements_from_labels_species_and_masses(glass_192):
    from lammps_adv.lammps.engine import open_lammps
    lmp = open_lammps()
    try:
        lmp.commands_list(["units metal", "atom_style full", f"read_data {glass_192}"])
        assert type_elements(lmp) == ({1: "Si", 2: "O"}, "labels")
        assert type_elements(lmp, ["Si", "O"])[1] == "labels"        # agreeing labels win
        with pytest.raises(CalculatorError, match=r"--species O Si contradicts the atom type labels"):
            type_elements(lmp, ["O", "Si"])
    finally:
        lmp.close()
    lmp = open_lammps()
    try:
        lmp.commands_list(["units metal", "region b block 0 5 0 5 0 5", "create_box 2 b",
                           "mass 1 28.0855", "mass 2 15.9994"])
        assert type_elements(lmp) == ({1: "Si", 2: "O"}, "masses")
        assert type_elements(lmp, ["si", "o"]) == ({1: "Si", 2: "O"}, "species")
        with pytest.raises(CalculatorError, match="names 1 elements"):
            type_elements(lmp, ["Si"])
        lmp.command("mass 2 1000.5")
        with pytest.raises(CalculatorError, match="atom type 2"):
            type_elements(lmp)
    finally:
        lmp.close()


# ------------------------------------------------------------------ one interface: validation, cache
from lammps_adv.calculators import Calculator  # noqa: E402


class Scripted(Calculator):
    """A backend whose compute() returns whatever the test hands it."""
    spec = "scripted"

    def __init__(self, result):
        super().__init__()
        self.result = result

    def compute(self, positions, cell):
        return self.result(positions) if callable(self.result) else self.result


CELL = np.eye(3) * 6.0
POS = np.array([[0.0, 0, 0], [1.6, 0, 0], [0, 1.6, 0]])


@pytest.mark.parametrize("result, message", [
    ((float("nan"), np.zeros((3, 3))), r"energy is nan"),
    ((float("inf"), np.zeros((3, 3))), r"energy is inf"),
    ((1.0, np.full((3, 3), np.nan)), r"forces are not finite on 3 of 3 atoms"),
    ((1.0, np.zeros((2, 3))), r"forces have shape \[2, 3\], expected \[3, 3\]"),
    ((np.zeros(3), np.zeros((3, 3))), r"energy must be one real number"),
    ((1.0, np.zeros((3, 3), dtype=complex)), r"forces must be real numbers"),
    ((1.0,), r"expected \(energy, forces\)"),
])
def test_every_bad_result_is_refused_naming_model_and_configuration(result, message):
    calc = Scripted(result)
    with pytest.raises(CalculatorError, match=message) as err:
        calc.evaluate(POS, CELL, symbols=["Si", "O", "O"], label="frame 7 of test.h5")
    assert str(err.value).startswith("scripted on frame 7 of test.h5: ")
    with pytest.raises(CalculatorError, match=r"configuration of 3 atoms \(O2 Si1, cell 6 x 6 x 6 A"):
        calc.evaluate(POS, CELL, symbols=["Si", "O", "O"])      # default label: the configuration


def test_results_are_float64_and_cached_per_configuration():
    calc = Scripted(lambda p: (np.float32(1.5), p.astype(np.float32)))
    e, f = calc.evaluate(POS, CELL, symbols=["Si", "O", "O"])
    assert isinstance(e, float) and f.dtype == np.float64 and calc.n_computed == 1
    f[:] = 99.0                                     # the caller's copy, not the cache
    e2, f2 = calc.evaluate(POS.copy(), CELL)
    assert calc.n_computed == 1 and e2 == e and np.array_equal(f2, POS.astype(np.float32))
    calc.evaluate(POS + 1e-12, CELL)
    calc.evaluate(POS, CELL * 1.01)
    calc.evaluate(POS, CELL, symbols=["O", "O", "Si"])
    assert calc.n_computed == 4                     # positions, cell, species: new configurations
    with pytest.raises(CalculatorError, match="2 positions for 3 atoms"):
        calc.evaluate(POS[:2], CELL)
    with pytest.raises(CalculatorError, match="non-finite positions"):
        calc.evaluate(POS * np.nan, CELL)
    with pytest.raises(CalculatorError, match="needs the element of every atom"):
        Scripted((0.0, np.zeros((3, 3)))).evaluate(POS, CELL)


class BadOutput(torch.nn.Module):
    """Models that break the contract the way the plugin refuses (Python path), after
    ``after`` good calls (tests/test_faults.py breaks runs half-way with it)."""
    cutoff: float
    species: List[str]
    mode: str
    after: int
    calls: int

    def __init__(self, mode: str, after: int = 0):
        super().__init__()
        self.cutoff = 3.0
        self.species = ["Si", "O"]
        self.mode = mode
        self.after = after
        self.calls = 0

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor,
                n_local: int) -> torch.Tensor:
        e = (positions * positions).sum(dim=1) * 1e-3
        self.calls += 1
        if self.calls <= self.after:
            return e
        if self.mode == "nan":
            return e * float("nan")
        if self.mode == "inf":
            return e + float("inf")
        if self.mode == "nanforces":
            x = positions[:, 0]               # finite energy, NaN gradient (where's 0 * nan)
            return e + torch.where(x > 1e9, torch.sqrt(x - 1e9), torch.zeros_like(x))
        if self.mode == "nlocal":
            return e[:n_local]
        if self.mode == "shape":
            return e[:, None]
        if self.mode == "dtype":
            return e.float()
        if self.mode == "raise":
            return e[edge_index[0] + 1000000000]
        return e


@pytest.mark.parametrize("mode, message", [
    ("nan", "energy is nan"), ("inf", "energy is inf"),
    ("nanforces", "forces are not finite on 9 of 9 atoms"),
    ("nlocal", r"model output has shape \[9\] for \d+ positions"),
    ("shape", r"model output has shape \[\d+, 1\]"),
    ("dtype", "model output has dtype torch.float32, the contract needs float64"),
    ("raise", "failed on .*index"),
])
def test_torchscript_models_breaking_the_contract_are_refused(tmp_path, mode, message):
    path = tmp_path / f"{mode}.pt"
    torch.jit.script(BadOutput(mode)).save(str(path))
    calc = get_calculator(f"torchscript:{path}")
    atoms = quartz()
    with pytest.raises(CalculatorError, match=message) as err:
        calc.evaluate(atoms.positions, atoms.cell.array, symbols=atoms.get_chemical_symbols())
    assert f"torchscript:{path}" in str(err.value) and "\n" not in str(err.value)


def test_float32_model_is_refused_at_load(tmp_path):
    path = tmp_path / "f32.pt"
    model = PairModel(["Si", "O"])
    model.amp = model.amp.float()
    torch.jit.script(model).save(str(path))
    with pytest.raises(CalculatorError, match="buffer amp is torch.float32, the contract needs float64"):
        get_calculator(f"torchscript:{path}")


def test_stored_labels_are_looked_up_by_configuration(tmp_path):
    from lammps_adv.io.dataset import from_frames
    atoms = quartz()
    rng = np.random.default_rng(1)
    frames = []
    for k in range(3):
        pos = atoms.positions + rng.normal(0, 0.02, atoms.positions.shape)
        frames.append({"positions": pos, "cell": atoms.cell.array, "energy": -10.0 - k,
                       "forces": np.full((9, 3), float(k)),
                       "names": atoms.get_chemical_symbols()})
    path = from_frames(frames, ["Si", "O"], {"reference": "test"}).save(tmp_path / "labels.h5")
    calc = get_calculator(f"labels:{path}")
    e, f = calc.evaluate(frames[2]["positions"], atoms.cell.array,
                         symbols=atoms.get_chemical_symbols())
    assert e == -12.0 and np.all(f == 2.0)
    with pytest.raises(CalculatorError, match=r"not among the 3 stored in .*labels.h5"):
        calc.evaluate(frames[2]["positions"] + 0.1, atoms.cell.array)


MPI_SCRIPT = """
import json, sys
import numpy as np
from lammps_adv.calculators import get_calculator
from lammps_adv.parallel.mpi import mpi_comm
from lammps_adv.lammps.structures import quartz
comm = mpi_comm()
atoms = quartz(2, 2, 1)
pos = atoms.positions + np.random.default_rng(0).normal(0, 0.03, atoms.positions.shape)
out = {}
for spec in sys.argv[2:]:
    calc = get_calculator(spec, comm=comm)
    # positions and cell are read on rank 0 only: other ranks pass nothing
    args = (pos, atoms.cell.array) if comm.Get_rank() == 0 else (None, None)
    e, f = calc.evaluate(*args, symbols=atoms.get_chemical_symbols())
    again = calc.evaluate(*args)
    out[spec] = [e, f.tolist(), calc.n_computed, again[0] == e]
    calc.close()
everyone = comm.gather(out, root=0)
if comm.Get_rank() == 0:
    json.dump(everyone, open(sys.argv[1], "w"))
"""


def test_results_on_every_rank_equal_to_serial(tmp_path):
    import json
    from conftest import BIN, run_cmd
    model = script_model(tmp_path / "pair.pt")
    script = tmp_path / "mpi_calc.py"
    script.write_text(MPI_SCRIPT)
    specs = ["bks-dsf", f"torchscript:{model}"]
    run_cmd([BIN / "python", script, tmp_path / "serial.json", *specs])
    run_cmd([BIN / "mpirun", "-np", "2", BIN / "python", script, tmp_path / "two.json", *specs])
    (serial,) = json.loads((tmp_path / "serial.json").read_text())
    ranks = json.loads((tmp_path / "two.json").read_text())
    assert len(ranks) == 2
    for spec in specs:
        for res in ranks:
            assert res[spec][0] == pytest.approx(serial[spec][0], abs=1e-9)
            np.testing.assert_allclose(res[spec][1], serial[spec][1], atol=1e-9)
            assert res[spec][3] and res[spec][2] in (0, 1)     # cached: computed once at most


def test_graph_network_through_energies_periodic_equals_the_contract_call(glass_192):
    """The shipped graph network exports energies_periodic: the calculator takes that path
    (cell atoms only) and gives the energies and forces of the contract call on the full
    graph with images (the path LAMMPS uses)."""
    from lammps_adv.io.resources import POTENTIALS
    from lammps_adv.models.contract import evaluate
    atoms = read_lammps_data(glass_192)
    args = (atoms.get_positions(), atoms.cell.array, atoms.get_chemical_symbols())
    path = POTENTIALS / "gnn_bks_dsf.pt"
    with get_calculator(f"torchscript:{path}") as calc:
        assert hasattr(calc.model, "energies_periodic")
        e, f = calc.evaluate(args[0], args[1], symbols=args[2])
    # forward, images with their own state
    e_ref, f_ref = evaluate(path, *args, periodic=False).values()
    assert abs(e - e_ref) <= 1e-10 * abs(e_ref)
    assert np.abs(f - f_ref).max() <= 1e-9 * np.abs(f_ref).max() and np.abs(f_ref).max() > 0.01
