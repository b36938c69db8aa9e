"""The model contract is checked twice: in Python (``lammps_adv.models.contract``: ``load`` /
``check_contract`` when a file is read, ``evaluate`` on what the model returns) and in C++
(``pair_style torchscript``: ``load_model`` at ``pair_coeff``, ``evaluate`` at every step).
The same model files go to both: each bad one is refused by both with a one-line message
naming the same problem, and a good one is accepted by both with the same numbers."""
import re
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest
import torch

from lammps_adv.core.errors import ModelError
from lammps_adv.lammps.structures import quartz, write_lammps_data
from lammps_adv.models.contract import evaluate, load
from test_calculators import BadOutput, PairModel
from test_plugin import NKTV2P, BadPeriodic, NoCutoff, NoSpecies, lammps_error, torchscript
from test_plugin import evaluate as lammps_evaluate

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")


class Pair(PairModel):
    """A pair model with every contract attribute settable (a good model by default)."""
    receptive_field: float

    def __init__(self, cutoff: float = 3.0, receptive_field: float = 3.0):
        super().__init__(["Si", "O"], cutoff)
        self.receptive_field = receptive_field


class TextCutoff(torch.nn.Module):
    cutoff: str
    species: List[str]

    def __init__(self):
        super().__init__()
        self.cutoff = "3.0"
        self.species = ["Si", "O"]

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor,
                n_local: int) -> torch.Tensor:
        return positions.sum(dim=1)


class NumberedSpecies(torch.nn.Module):
    cutoff: float
    species: List[int]

    def __init__(self):
        super().__init__()
        self.cutoff = 3.0
        self.species = [14, 8]

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor,
                n_local: int) -> torch.Tensor:
        return positions.sum(dim=1)


class TupleOutput(torch.nn.Module):
    cutoff: float
    species: List[str]

    def __init__(self):
        super().__init__()
        self.cutoff = 3.0
        self.species = ["Si", "O"]

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor,
                n_local: int) -> Tuple[torch.Tensor, torch.Tensor]:
        e = (positions * positions).sum(dim=1)
        return e, e


# checked when the file is read (Python: load; C++: pair_coeff)
ON_LOAD = {
    "no cutoff": (NoCutoff, r"attribute [`']cutoff[`']"),
    "no species": (NoSpecies, r"attribute [`']species[`']"),
    "cutoff 0": (lambda: Pair(cutoff=0.0), r"invalid cutoff 0"),
    "cutoff < 0": (lambda: Pair(cutoff=-1.0), r"invalid cutoff -1"),
    "cutoff not a number": (TextCutoff, r"attribute [`']cutoff[`'].* must be a float"),
    "receptive_field < cutoff": (lambda: Pair(receptive_field=2.0),
                                 r"receptive_field 2(\.0)? must be >= cutoff 3"),
    "species not names": (NumberedSpecies,
                          r"attribute [`']species[`'].* must be a non-empty List\[str\]"),
    "float32 parameters": (lambda: Pair().float(),
                           r"parameter or buffer amp .*is \S+, the contract needs float64"),
}
# checked on what the model returns (Python: evaluate; C++: the first step)
ON_OUTPUT = {
    "output [N, 1]": (lambda: BadOutput("shape"), r"model output has shape \[\d+, ?1\]"),
    "output [n_local]": (lambda: BadOutput("nlocal"), r"model output has shape \[72\]"),
    "output float32": (lambda: BadOutput("dtype"),
                       r"model output has dtype \S+, the contract needs float64"),
    "output not a tensor": (TupleOutput, r"model returned \w+ instead of a Tensor"),
    "energies_periodic output": (lambda: BadPeriodic().double(),
                                 r"energies_periodic output has shape \[\d+\], it needs \[72\]"),
}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """72 atoms of quartz (triclinic, rattled) as LAMMPS data and as Python arrays."""
    atoms = quartz(2, 2, 2)
    atoms.positions += np.random.default_rng(3).normal(0, 0.05, atoms.positions.shape)
    data = write_lammps_data(tmp_path_factory.mktemp("contract") / "quartz.data", atoms)
    return data, (atoms.positions, atoms.cell.array, atoms.get_chemical_symbols())


def save(make, path: Path) -> Path:
    torch.jit.script(make()).save(str(path))
    return path


def python_error(call) -> str:
    with pytest.raises(ModelError) as err:
        call()
    return str(err.value)


@pytest.mark.parametrize("case", list(ON_LOAD))
def test_both_refuse_a_bad_model_file_naming_the_same_problem(system, tmp_path, case):
    make, problem = ON_LOAD[case]
    path = save(make, tmp_path / "model.pt")
    py = python_error(lambda: load(path))
    cpp = lammps_error(system[0], torchscript(path))
    for msg in (py, cpp):
        assert re.search(problem, msg), (case, msg)
    assert "\n" not in py and str(path) in py
    assert cpp.count("ERROR") == 1 and str(path) in cpp, cpp


@pytest.mark.parametrize("case", list(ON_OUTPUT))
def test_both_refuse_a_bad_model_output_naming_the_same_problem(system, tmp_path, case):
    make, problem = ON_OUTPUT[case]
    path = save(make, tmp_path / "model.pt")
    load(path)                                          # the file itself is fine
    py = python_error(lambda: evaluate(path, *system[1]))
    cpp = lammps_error(system[0], torchscript(path))
    for msg in (py, cpp):
        assert re.search(problem, msg), (case, msg)
    assert "\n" not in py
    assert cpp.count("ERROR") == 1, cpp


def test_both_accept_a_good_model_with_the_same_numbers(system, tmp_path):
    path = save(Pair, tmp_path / "good.pt")
    model = load(path)
    assert model.cutoff == 3.0 and model.species == ["Si", "O"]
    py = evaluate(path, *system[1], ("energy", "forces", "stress"))
    lmp = lammps_evaluate(system[0], torchscript(path), per_atom=False)
    assert abs(py["energy"]) > 1.0
    assert abs(lmp["pe"] - py["energy"]) <= 1e-10 * abs(py["energy"])
    assert np.abs(np.array(lmp["f"]) - py["forces"]).max() <= 1e-10
    s = py["stress"]           # LAMMPS' pressure (bar, no kinetic part at rest) is -stress
    want = -np.array([s[0, 0], s[1, 1], s[2, 2], s[0, 1], s[0, 2], s[1, 2]]) * NKTV2P
    np.testing.assert_allclose(lmp["press"], want, atol=1e-8 * np.abs(want).max())
