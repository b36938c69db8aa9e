"""Model integrity (models.integrity): what export stores, what every load checks."""
import zipfile

import pytest
import torch

from conftest import REPO
from model_files import corrupt_model
from lammps_adv.core.errors import ModelError
from lammps_adv.models.contract import load
from lammps_adv.models.export import export
from lammps_adv.models.gnn import GraphNetwork
from lammps_adv.models.integrity import CHECKSUM_FILE, archive_problem, parameter_checksum

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = GraphNetwork(species=["Si", "O"], width=8, hidden=(8,), n_rounds=1)
    return export(model, tmp_path_factory.mktemp("m") / "gnn.pt")


def test_export_stores_the_checksum_that_load_finds(exported):
    extra = {CHECKSUM_FILE: ""}
    module = torch.jit.load(str(exported), _extra_files=extra)
    stored = extra[CHECKSUM_FILE].decode()
    assert stored.startswith("crc32:") and stored == parameter_checksum(module)
    assert parameter_checksum(load(exported)) == stored


def test_checksum_sees_one_changed_weight(exported):
    module = torch.jit.load(str(exported))
    before = parameter_checksum(module)
    with torch.no_grad():
        next(iter(module.parameters())).view(-1)[0] += 1e-12
    assert parameter_checksum(module) != before


@pytest.mark.parametrize("how, message", [
    ("bytes", r"is corrupt: member gnn/data/\d+ fails its CRC-32 check"),
    ("rezip", r"is corrupt: its parameters' checksum crc32:\w{8} differs from the "
              r"crc32:\w{8} stored at export"),
])
def test_damaged_file_is_refused_naming_it(exported, tmp_path, how, message):
    bad = corrupt_model(exported, tmp_path / "gnn.pt", how)
    torch.jit.load(str(bad))                   # torch itself loads both without complaint
    with pytest.raises(ModelError, match=message) as err:
        load(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_shipped_models_carry_a_checksum_and_pass():
    for path in sorted((REPO / "potentials").glob("*.pt")):
        with zipfile.ZipFile(path) as z:
            assert any(n.endswith(f"/extra/{CHECKSUM_FILE}") for n in z.namelist()), path
        assert archive_problem(path) is None
        load(path)


def test_model_exported_elsewhere_without_checksum_still_loads(exported, tmp_path):
    plain = tmp_path / "plain.pt"
    torch.jit.load(str(exported)).save(str(plain))     # torch's own save: no checksum
    with zipfile.ZipFile(plain) as z:
        assert not any(n.endswith(CHECKSUM_FILE) for n in z.namelist())
    load(plain)
