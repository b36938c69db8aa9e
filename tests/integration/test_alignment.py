"""Energy alignment (lammps_adv.core.alignment): per-species shifts of the approximate energy,
fitted by least squares, in probe, relax and run."""
import json
import math
import subprocess
from typing import List

import numpy as np
import pytest
import torch

from conftest import BIN, REPO
from lammps_adv.core import alignment as al
from lammps_adv.io import h5md
from lammps_adv.io.files import file_sha256
from lammps_adv.core.errors import AlignmentError
from test_calculators import PairModel

CONSTANTS = {"Si": 0.7, "O": -0.3}          # eV per atom added by the shifted model


class ShiftedPair(torch.nn.Module):
    """PairModel plus a constant energy per atom of each species."""
    cutoff: float
    species: List[str]

    def __init__(self, species: List[str]):
        super().__init__()
        self.pair = PairModel(species)
        self.cutoff = self.pair.cutoff
        self.species = species
        self.register_buffer("shift", torch.tensor([CONSTANTS[s] for s in species],
                                                   dtype=torch.float64))

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_index: torch.Tensor,
                n_local: int) -> torch.Tensor:
        return self.pair(positions, species, edge_index, n_local) + self.shift[species]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("align")
    torch.jit.script(PairModel(["Si", "O"])).save(str(d / "ref.pt"))
    torch.jit.script(ShiftedPair(["Si", "O"])).save(str(d / "shifted.pt"))
    return f"torchscript:{d / 'shifted.pt'}", f"torchscript:{d / 'ref.pt'}"


def _configs(compositions_vary: bool):
    """Rattled quartz cells; with varying compositions some O atoms are removed."""
    from lammps_adv.lammps.structures import quartz
    out = []
    for k in range(4):
        atoms = quartz(1, 1, 1)
        atoms.rattle(0.05, seed=k)
        if compositions_vary:
            del atoms[[i for i, s in enumerate(atoms.get_chemical_symbols()) if s == "O"][:k]]
        out.append((atoms.get_positions(), atoms.cell.array, atoms.get_chemical_symbols(),
                    f"cell{k}"))
    return out


def test_fit_recovers_per_species_constants_and_says_when_it_cannot():
    rng = np.random.default_rng(0)
    symbols = [["Si"] * n_si + ["O"] * n_o for n_si, n_o in ((3, 6), (3, 4), (2, 6), (4, 5))]
    e_acc = rng.normal(size=4) * 10
    e_app = np.array([e - 2.0 * s.count("Si") + 0.5 * s.count("O") for e, s in zip(e_acc, symbols)])
    fitted = al.fit(symbols, e_app, e_acc)
    assert fitted.shifts == pytest.approx({"Si": 2.0, "O": -0.5}, abs=1e-12)
    assert "minimum-norm" not in fitted.note
    for e1, e2, s in zip(e_app, e_acc, symbols):
        assert e1 + fitted.offset(s) == pytest.approx(e2, abs=1e-10)
    # all SiO2: only Si + 2 O is determined; minimum norm, and the offset is still exact
    sio2 = [["Si"] * n + ["O"] * (2 * n) for n in (3, 4, 8)]
    e_acc = np.array([-10.0, -13.0, -27.0])
    e_app = np.array([e - 6.0 * len(s) / 3 for e, s in zip(e_acc, sio2)])
    fitted = al.fit(sio2, e_app, e_acc)
    assert "minimum-norm" in fitted.note
    assert fitted.shifts["Si"] + 2 * fitted.shifts["O"] == pytest.approx(6.0)
    assert fitted.shifts["O"] == pytest.approx(2 * fitted.shifts["Si"])     # least norm
    back = al.from_attrs(fitted.attrs())
    assert back == fitted and json.loads(fitted.attrs()["alignment_shifts_eV"]) == fitted.shifts


@pytest.mark.parametrize("text, message", [("Si=1,O", "expected SPECIES=EV"),
                                           ("Si=x", "expected SPECIES=EV"),
                                           ("Si=nan", "must be finite")])
def test_bad_shifts_are_refused(text, message):
    with pytest.raises(AlignmentError, match=message):
        al.parse_shifts(text)
    with pytest.raises(AlignmentError, match="no alignment shift for O"):
        al.parse_shifts("Si=1").offset(["Si", "O"])


@pytest.mark.parametrize("vary", [True, False])
def test_probe_aligned_error_of_a_shifted_model_is_zero(models, tmp_path, vary):
    from lammps_adv.experiments.probe import probe
    approx, reference = models
    configs = _configs(vary)
    raw = [-sum(CONSTANTS[s] for s in names) for _, _, names, *_ in configs]
    out = probe(configs, approx, reference, tmp_path / "a.h5", epsilons=(0.0, 0.2), n_random=2,
                progress=False, ascent_steps=2)
    d, p = h5md.read_probe(out), h5md.read_parameters(out, texts=False)
    assert p["alignment"] == "per-species"
    np.testing.assert_allclose(d["energy_error"], 0.0, atol=1e-9)
    np.testing.assert_allclose(d["error_adversarial"], 0.0, atol=1e-9)
    np.testing.assert_allclose(d["error_random"], 0.0, atol=1e-9)
    np.testing.assert_allclose(d["energy_error"] + d["alignment_offset"], raw, atol=1e-9)
    shifts = json.loads(p["alignment_shifts_eV"])
    if vary:                                  # E_app + shift = E_acc: shift = -constant
        assert shifts == pytest.approx({s: -c for s, c in CONSTANTS.items()}, abs=1e-9)
    else:
        assert "minimum-norm" in p["alignment_note"]
    out = probe(configs, approx, reference, tmp_path / "n.h5", epsilons=(0.0,), n_random=0,
                progress=False, align="none")
    d = h5md.read_probe(out)
    np.testing.assert_allclose(d["energy_error"], raw, atol=1e-9)      # the raw offset
    assert h5md.read_parameters(out, texts=False)["alignment"] == "none"


def test_relax_and_run_record_aligned_energies(models, tmp_path, glass_192):
    """relax fits on its starting configurations (3: two compositions leave one degree of
    freedom); run takes shifts given or from a file."""
    from ase.io import write

    from lammps_adv.experiments.relax import relax
    from lammps_adv.lammps.structures import read_lammps_data
    approx, reference = models
    configs = _configs(True)
    files = relax(configs[:3], approx, reference, tmp_path / "relax", steps=5, progress=False)
    for f in files:
        obs = h5md.read_observables(f)
        assert np.abs(obs["energy_error"]).max() < 1e-8
        p = h5md.read_parameters(f, texts=False)
        assert p["alignment"] == "per-species"
        assert p["alignment_source"] == al.self_fitted(3)
    with pytest.raises(AlignmentError, match="2 configuration.* no degree of freedom"):
        relax(configs[:2], approx, reference, tmp_path / "r2", steps=5, progress=False)
    # an alignment given is applied unchanged, and recorded with its source
    given = al.parse_shifts("Si=-0.7,O=0.3")
    (f,) = relax(configs[3:], approx, reference, tmp_path / "given", steps=5, progress=False,
                 alignment=given)
    assert al.from_attrs(h5md.read_parameters(f, texts=False)) == given
    assert np.abs(h5md.read_observables(f)["energy_error"]).max() < 1e-8
    # run: bks-dsf driving, bks as reference, shifts from the command line and from a probe
    deck = ["run", str(REPO / "inputs" / "nvt_glass.in"), "--reference", "bks",
            "-var", "data", str(glass_192), "-var", "steps", "4", "--quiet"]
    subprocess.run([str(BIN / "lammps-adv"), *deck, "--out", str(tmp_path / "raw.h5")],
                   check=True, capture_output=True)
    subprocess.run([str(BIN / "lammps-adv"), *deck, "--out", str(tmp_path / "al.h5"),
                    "--align-shifts", "Si=-12,O=-9"], check=True, capture_output=True)
    raw, aligned = (h5md.read_observables(tmp_path / n) for n in ("raw.h5", "al.h5"))
    np.testing.assert_allclose(aligned["energy_approx"] - raw["energy_approx"],
                               -12 * 64 - 9 * 128, atol=1e-6)
    # bks-dsf lies ~6.3 eV/atom above bks: shifting by -10 eV/atom flips the error's sign,
    # and with it cos(theta)'s
    assert (raw["energy_error"] < 0).all() and (aligned["energy_error"] > 0).all()
    np.testing.assert_allclose(aligned["cos_adversarial"], -raw["cos_adversarial"], atol=1e-12)
    # one recording, one energy zero: appending under another alignment is refused
    r = subprocess.run([str(BIN / "lammps-adv"), *deck, "--out", str(tmp_path / "raw.h5"),
                        "--append", "--align-shifts", "Si=-12,O=-9"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "--append needs the same" in r.stderr, r.stderr
    assert len(h5md.read_observables(tmp_path / "raw.h5")["energy_error"]) == len(
        raw["energy_error"])
    glass = read_lammps_data(glass_192)
    rattled = glass.copy()
    rattled.rattle(0.02, seed=1)
    write(tmp_path / "g.extxyz", [glass, rattled])
    r = subprocess.run([str(BIN / "lammps-adv"), *deck, "--out", str(tmp_path / "fit.h5"),
                        "--align-from", str(tmp_path / "g.extxyz"), "--approx", "bks-dsf"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    p = h5md.read_parameters(tmp_path / "fit.h5", texts=False)
    assert p["alignment"] == "per-species"
    assert p["alignment_source"] == f"g.extxyz (sha256 {file_sha256(tmp_path / 'g.extxyz')[:12]})"
    fitted = h5md.read_observables(tmp_path / "fit.h5")
    assert abs(fitted["energy_error"][0]) < 0.05 * abs(raw["energy_error"][0])
    assert not math.isclose(fitted["energy_error"][0], raw["energy_error"][0])
    # one configuration cannot be an alignment set: the fit would absorb its whole error
    write(tmp_path / "g1.extxyz", glass)
    r = subprocess.run([str(BIN / "lammps-adv"), *deck, "--out", str(tmp_path / "g1.h5"),
                        "--align-from", str(tmp_path / "g1.extxyz"), "--approx", "bks-dsf"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "per-species alignment g1.extxyz (sha256" in r.stderr
    assert "no degree of freedom" in r.stderr
    r = subprocess.run([str(BIN / "lammps-adv"), *deck, "--out", str(tmp_path / "x.h5"),
                        "--align-from", str(tmp_path / "g.extxyz")], capture_output=True, text=True)
    assert r.returncode == 2 and "name the driving model" in r.stderr


def _quartz_cells(seeds):
    from lammps_adv.lammps.structures import quartz
    out = []
    for k in seeds:
        atoms = quartz(1, 1, 1)
        atoms.rattle(0.04, seed=k)
        out.append(atoms)
    return out


def _lammps_adv(*args):
    return subprocess.run([str(BIN / "lammps-adv"), *map(str, args)], capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def independent(tmp_path_factory):
    """bks-dsf vs bks on cells Y: probed with the alignment fitted on other cells X
    (results/p_x.h5), relaxed with the alignment of that probe file (results/relax), and
    probed with the alignment fitted on Y itself (self.h5)."""
    from ase.io import write
    d = tmp_path_factory.mktemp("independent")
    write(d / "X.extxyz", _quartz_cells((1, 2, 3)))
    write(d / "Y.extxyz", _quartz_cells((11, 12)))
    common = ["--approx", "bks-dsf", "--reference", "bks", "--split", "all", "--epsilon", "0",
              "--random", "0"]
    r = _lammps_adv("probe", d / "Y.extxyz", *common, "--align-from", d / "X.extxyz",
                    "-o", d / "results" / "p_x.h5")
    assert r.returncode == 0, r.stderr
    r = _lammps_adv("relax", d / "Y.extxyz", "--approx", "bks-dsf", "--reference", "bks",
                    "--split", "all", "--limit", 1, "--steps", 3, "--align-from",
                    d / "results" / "p_x.h5", "-o", d / "results" / "relax")
    assert r.returncode == 0, r.stderr
    r = _lammps_adv("probe", d / "Y.extxyz", *common, "-o", d / "self.h5")
    assert r.returncode == 0, r.stderr
    return d, common


def test_an_alignment_fitted_on_x_is_applied_unchanged_to_y(independent):
    from lammps_adv.calculators import get_calculator
    from lammps_adv.io.configs import load_configs
    d, common = independent
    xs, ys = (load_configs(d / n, split=None) for n in ("X.extxyz", "Y.extxyz"))
    energies = {}
    for spec in ("bks-dsf", "bks"):
        with get_calculator(spec) as calc:
            energies[spec] = [calc.evaluate(c[0], c[1], symbols=c[2])[0] for c in xs + ys]
    expected = al.fit([c[2] for c in xs], energies["bks-dsf"][:3], energies["bks"][:3])
    p = h5md.read_parameters(d / "results" / "p_x.h5", texts=False)
    applied = al.from_attrs(p)
    assert applied.shifts == pytest.approx(expected.shifts, rel=1e-12)
    assert applied.source == f"X.extxyz (sha256 {file_sha256(d / 'X.extxyz')[:12]})"
    data = h5md.read_probe(d / "results" / "p_x.h5")
    offsets = [expected.offset(c[2]) for c in ys]
    np.testing.assert_allclose(data["alignment_offset"], offsets, rtol=1e-12)
    np.testing.assert_allclose(data["energy_error"],
                               np.subtract(energies["bks"][3:], energies["bks-dsf"][3:])
                               - offsets, atol=1e-8)
    # fitted on Y itself the shifts differ: that is the alignment no longer deciding the sign
    own = al.from_attrs(h5md.read_parameters(d / "self.h5", texts=False))
    assert own.source == al.self_fitted(2) and not own.same_shifts(applied)
    # reusing the probe file's alignment keeps its shifts and its original source
    reused = al.from_attrs(h5md.read_parameters(d / "results" / "relax" / "relax_0000.h5md",
                                                texts=False))
    assert reused == applied


def test_a_one_configuration_self_fit_is_refused(independent, tmp_path):
    from ase.io import write
    d, common = independent
    write(tmp_path / "one.extxyz", _quartz_cells((5,)))
    r = _lammps_adv("probe", tmp_path / "one.extxyz", "--approx", "bks-dsf", "--reference",
                    "bks", "-o", tmp_path / "one.h5")
    assert r.returncode == 2 and not (tmp_path / "one.h5").exists()
    (line,) = r.stderr.strip().splitlines()
    assert "per-species alignment fitted on the configurations of this experiment" in line
    assert "--align none" in line and "--align-from FILE" in line
    r = _lammps_adv("probe", tmp_path / "one.extxyz", *common, "--align", "none",
                    "-o", tmp_path / "raw.h5")
    assert r.returncode == 0, r.stderr
    r = _lammps_adv("probe", tmp_path / "one.extxyz", *common, "--align", "none",
                    "--align-from", d / "X.extxyz", "-o", tmp_path / "both.h5")
    assert r.returncode == 2 and "not allowed with argument" in r.stderr


def test_report_refuses_to_pool_one_pair_under_two_alignments(independent, tmp_path):
    d, common = independent
    results = d / "results"           # p_x.h5 and a relaxation under the same alignment
    r = _lammps_adv("report", results, "-o", tmp_path / "agree")
    assert r.returncode == 0, r.stderr
    report = (tmp_path / "agree" / "report.md").read_text()
    assert "X.extxyz (sha256" in report and "conditioned on that fit" not in report
    r = _lammps_adv("probe", d / "Y.extxyz", *common, "--align-shifts", "Si=-12,O=-9",
                    "-o", tmp_path / "p_given.h5")
    assert r.returncode == 0, r.stderr
    r = _lammps_adv("report", results, tmp_path / "p_given.h5", "-o", tmp_path / "mixed")
    assert r.returncode != 0 and not (tmp_path / "mixed" / "report.md").exists()
    (line,) = r.stderr.strip().splitlines()
    assert "model pair bks-dsf vs bks: results under different energy alignments" in line
    assert "p_given.h5" in line and "given by the user" in line
    # a self-fitted alignment alone is reported, with the condition stated
    r = _lammps_adv("report", d / "self.h5", "-o", tmp_path / "self")
    assert r.returncode == 0, r.stderr
    assert "conditioned on that fit" in (tmp_path / "self" / "report.md").read_text()
