"""DFT data in: extxyz (any declared unit, stress or virial), VASP vasprun.xml and OUTCAR
(written here in VASP's format) into the dataset format in metal units, and an experiment
on the stored labels (labels:FILE) that equals the same experiment on the live model."""
import numpy as np
import pytest
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from conftest import BIN, run_cmd
from lammps_adv.core.errors import DatasetError
from lammps_adv.io import dataset as D


def _frames(n=3, seed=0):
    """Rattled quartz cells with made-up labels in eV, eV/A, eV/A^3."""
    from lammps_adv.lammps.structures import quartz
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = quartz()
        a.positions += rng.normal(0, 0.05, a.positions.shape)
        out.append((a, -70.0 + rng.normal(), rng.normal(0, 1.0, (9, 3)),
                    rng.normal(0, 0.01, (3, 3)) + np.eye(3) * 0.02))
    return out


def _extxyz(path, frames, e_unit=1.0, f_unit=1.0, s_unit=1.0, info=None, virial=False):
    images = []
    for a, e, f, s in frames:
        b = a.copy()
        s = (s + s.T) / 2
        res = {"energy": e / e_unit, "forces": f / f_unit}
        if virial:
            b.info["virial"] = -s * b.get_volume() / e_unit
        else:
            res["stress"] = s / s_unit
        b.calc = SinglePointCalculator(b, **res)
        b.info.update(info or {})
        images.append(b)
    write(str(path), images, format="extxyz")
    return path


def _sym(s):
    return (s + s.T) / 2


def test_extxyz_units_declared_given_converted_and_checked(tmp_path):
    frames = _frames()
    ha = _extxyz(tmp_path / "ha.extxyz", frames, units.Hartree, units.Hartree / units.Bohr,
                 units.GPa, info={"energy_unit": "Hartree", "force_unit": "Hartree/Bohr",
                                  "stress_unit": "GPa"})
    ds = D.import_ase([ha], tmp_path / "ha.h5", split=(1, 0, 0))
    for k, (a, e, f, s) in enumerate(frames):
        c = ds.config(k)
        assert c["energy"] == pytest.approx(e, rel=1e-10)
        np.testing.assert_allclose(c["forces"], f, atol=1e-6)
        np.testing.assert_allclose(c["stress"], _sym(s), atol=1e-8)
    assert D.load(tmp_path / "ha.h5").attrs["generator"]["units_in_files"]["ha.extxyz"] == \
        {"energy": "Hartree", "force": "Hartree/Bohr", "stress": "GPa"}
    # an option that contradicts the file's declaration
    with pytest.raises(DatasetError, match="declares energy unit 'Hartree', the option says 'eV'"):
        D.import_ase([ha], tmp_path / "x.h5", units={"energy": "eV"})
    # forces in kcal/mol/A read as eV/A are implausible: refused, then imported when given
    kc = _extxyz(tmp_path / "kcal.extxyz", [(a, e, f * 10, s) for a, e, f, s in frames],
                 units.kcal / units.mol, units.kcal / units.mol)
    with pytest.raises(DatasetError, match="implausible for DFT silica.*--force-unit"):
        D.import_ase([kc], tmp_path / "x.h5")
    ds = D.import_ase([kc], tmp_path / "kc.h5", split=(1, 0, 0),
                      units={"energy": "kcal/mol", "force": "kcal/mol/A"})
    np.testing.assert_allclose(ds.config(1)["forces"], frames[1][2] * 10, atol=1e-6)
    # a stress in kbar read as eV/A^3
    kb = _extxyz(tmp_path / "kb.extxyz", [(a, e, f, s * 100) for a, e, f, s in frames],
                 s_unit=0.1 * units.GPa)
    with pytest.raises(DatasetError, match="kbar or GPa"):
        D.import_ase([kb], tmp_path / "x.h5")
    with pytest.raises(DatasetError, match="unknown force unit 'N'"):
        D.import_ase([kc], tmp_path / "x.h5", units={"force": "N"})


def test_extxyz_virial_becomes_stress(tmp_path):
    frames = _frames(2, seed=1)
    path = _extxyz(tmp_path / "v.extxyz", frames, units.Hartree, virial=True,
                   info={"energy_unit": "Hartree", "force_unit": "eV/A"})
    ds = D.import_ase([path], tmp_path / "v.h5", split=(1, 0, 0))
    for k, (a, e, f, s) in enumerate(frames):
        np.testing.assert_allclose(ds.config(k)["stress"], _sym(s), atol=1e-8)


def _vasprun(frames, sigma_shift=0.05) -> str:
    a0 = frames[0][0]

    def vec(rows):
        return "".join(f"    <v> {r[0]:.10f} {r[1]:.10f} {r[2]:.10f} </v>\n" for r in rows)

    def structure(a, name=""):
        tag = f' name="{name}"' if name else ""
        return (f"  <structure{tag}>\n   <crystal>\n   <varray name=\"basis\">\n"
                f"{vec(a.cell.array)}   </varray>\n   </crystal>\n"
                f"   <varray name=\"positions\">\n{vec(a.get_scaled_positions())}   </varray>\n"
                "  </structure>\n")
    rows = "".join(f"    <rc><c>{s:2s}</c><c>   {1 if s == 'Si' else 2}</c></rc>\n"
                   for s in a0.get_chemical_symbols())
    out = ['<?xml version="1.0" encoding="ISO-8859-1"?>\n<modeling>\n',
           ' <kpoints>\n  <varray name="kpointlist" >\n   <v> 0.0 0.0 0.0 </v>\n  </varray>\n'
           '  <varray name="weights" >\n   <v> 1.0 </v>\n  </varray>\n </kpoints>\n',
           f' <atominfo>\n  <atoms> {len(a0)} </atoms>\n  <array name="atoms" >\n'
           '   <dimension dim="1">ion</dimension>\n   <field type="string">element</field>\n'
           f'   <field type="int">atomtype</field>\n   <set>\n{rows}   </set>\n  </array>\n'
           ' </atominfo>\n', structure(a0, "initialpos")]
    for a, e, f, s in frames:
        kb = -_sym(s) / (0.1 * units.GPa)          # VASP prints -stress in kB
        energy = (f'   <i name="e_fr_energy"> {e:.8f} </i>\n'
                  f'   <i name="e_wo_entrp"> {e + sigma_shift:.8f} </i>\n'
                  f'   <i name="e_0_energy"> {e + sigma_shift:.8f} </i>\n')
        out.append(f" <calculation>\n  <scstep>\n   <energy>\n{energy}   </energy>\n  </scstep>\n"
                   f"{structure(a)}  <varray name=\"forces\" >\n{vec(f)}  </varray>\n"
                   f"  <varray name=\"stress\" >\n{vec(kb)}  </varray>\n"
                   f"  <energy>\n{energy}  </energy>\n </calculation>\n")
    out.append("</modeling>\n")
    return "".join(out)


def test_vasprun_and_outcar_through_ase(tmp_path):
    frames = _frames(3, seed=2)
    xml = tmp_path / "vasprun.xml"
    xml.write_text(_vasprun(frames))
    ds = D.import_ase([xml], tmp_path / "vr.h5", split=(1, 0, 0))
    assert len(ds) == 3
    for k, (a, e, f, s) in enumerate(frames):
        c = ds.config(k)
        assert c["energy"] == pytest.approx(e, abs=1e-7)     # TOTEN: consistent with forces
        np.testing.assert_allclose(c["forces"], f, atol=1e-9)
        np.testing.assert_allclose(c["stress"], _sym(s), atol=1e-9)      # from kB, sign too
        frac = (c["positions"] - a.positions) @ np.linalg.inv(a.cell.array)   # wrapped into
        np.testing.assert_allclose(frac - np.round(frac), 0, atol=1e-9)       # the cell
    assert D.load(tmp_path / "vr.h5").attrs["generator"]["energy"] == ["free_energy"]
    sigma0 = D.import_ase([xml], tmp_path / "vr0.h5", split=(1, 0, 0), energy_kind="energy")
    np.testing.assert_allclose(sigma0.energy - ds.energy, 0.05, atol=1e-7)
    # an OUTCAR with a stress line (kB), through the command line
    from test_training import minimal_outcar
    text = minimal_outcar().replace(
        "  FREE ENERGIE", "  in kB      10.00000    20.00000    30.00000     1.00000     2.00000"
        "     3.00000\n\n  FREE ENERGIE")
    (tmp_path / "OUTCAR").write_text(text)
    proc = run_cmd([BIN / "lammps-adv", "dataset", "import", tmp_path / "OUTCAR", "-o",
                    tmp_path / "oc.h5", "--split", "1,0,0"])
    assert "1 configurations" in proc.stdout
    c = D.load(tmp_path / "oc.h5").config(0)
    kb = 0.1 * units.GPa
    assert c["stress"][0, 0] == pytest.approx(-10 * kb) and c["stress"][2, 2] == pytest.approx(-30 * kb)
    assert c["energy"] == pytest.approx(-23.456789)


def test_probe_on_imported_labels_equals_the_live_reference(tmp_path):
    """Stored labels from a file in Hartree units stand in for a live reference: the probe
    at epsilon 0 gives the same cos(theta) and errors as with the model that made them."""
    from lammps_adv.io.results import probe_arrays, read_files
    from lammps_adv.calculators import get_calculator
    from lammps_adv.experiments.probe import probe
    from lammps_adv.io.configs import load_configs
    frames = []
    with get_calculator("bks") as ref:
        for a, *_ in _frames(4, seed=3):
            e, f = ref.evaluate(a.positions, a.cell.array, symbols=a.get_chemical_symbols())
            frames.append((a, e, f, np.zeros((3, 3))))
    path = _extxyz(tmp_path / "dft.extxyz", frames, units.Hartree, units.Hartree / units.Bohr,
                   info={"energy_unit": "Ha", "force_unit": "Ha/Bohr"})
    run_cmd([BIN / "lammps-adv", "dataset", "import", path, "-o", tmp_path / "dft.h5",
             "--split", "1,0,0", "--reference", "bks as DFT stand-in"])
    configs = load_configs(tmp_path / "dft.h5", split=None)
    # each imported frame is its own independent unit
    assert [c.unit for c in configs] == [f"dft.h5:dft.extxyz#{k}" for k in range(4)]
    common = dict(epsilons=(0.0,), n_random=0, progress=False)
    stored = probe(configs, "bks-dsf", f"labels:{tmp_path / 'dft.h5'}", tmp_path / "s.h5", **common)
    live = probe(configs, "bks-dsf", "bks", tmp_path / "l.h5", **common)
    (s,), (li,) = (read_files([p], probe_arrays) for p in (stored, live))
    np.testing.assert_allclose(s.data["cos_adversarial"], li.data["cos_adversarial"], atol=1e-5)
    np.testing.assert_allclose(s.data["energy_error"], li.data["energy_error"], atol=1e-6)
    assert np.abs(s.data["cos_adversarial"]).max() > 0.01
