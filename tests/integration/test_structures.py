"""Quartz, melt-quenched glass, data-file I/O, and the short-range core of BKS."""
import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from conftest import BIN, REPO, run_cmd
from lammps_adv.core.errors import StructureError
from lammps_adv.lammps.structures import (amorphous, cubic_box_length, density,
                                   quartz, read, read_lammps_data, write, write_lammps_data)
from lammps_adv.lammps.system import LammpsSystem

SI_O_CUT = 2.0   # A, first minimum of g_SiO lies near 2.3 A; bonds are 1.55-1.7 A


def coordination(atoms, cut=SI_O_CUT):
    """Mean number of O around Si and of Si around O within cut."""
    i, j = neighbor_list("ij", atoms, cut)
    sym = np.array(atoms.get_chemical_symbols())
    si_o = (sym[i] == "Si") & (sym[j] == "O")
    n_si, n_o = (sym == "Si").sum(), (sym == "O").sum()
    return si_o.sum() / n_si, si_o.sum() / n_o, np.bincount(i[si_o], minlength=len(atoms))


def test_quartz_geometry():
    q = quartz(3, 3, 3)
    assert len(q) == 243 and q.get_chemical_symbols().count("Si") == 81
    d = neighbor_list("d", q, SI_O_CUT)
    assert d.min() == pytest.approx(1.605, abs=0.01) and d.max() == pytest.approx(1.614, abs=0.01)
    assert density(q) == pytest.approx(2.65, abs=0.01)
    si_cn, o_cn, _ = coordination(q)
    assert si_cn == 4 and o_cn == 2
    left = quartz(handedness="left")
    assert coordination(left)[:2] == (4, 2)
    # mirror images have the same energy
    with LammpsSystem(left, "bks-dsf") as s_left, LammpsSystem(quartz(), "bks-dsf") as s_right:
        assert s_left.energy_forces()[0] == pytest.approx(s_right.energy_forces()[0], rel=1e-10)


def test_data_file_roundtrip(tmp_path):
    q = quartz(2, 1, 1)
    path = write_lammps_data(tmp_path / "q.data", q)
    back = read_lammps_data(path)
    assert back.get_chemical_symbols() == q.get_chemical_symbols()
    assert np.allclose(back.cell.cellpar(), q.cell.cellpar())
    # same interatomic distances (the cell was rotated into LAMMPS' triclinic form)
    assert np.allclose(np.sort(back.get_all_distances(mic=True).ravel()),
                       np.sort(q.get_all_distances(mic=True).ravel()), atol=1e-8)
    xyz = write(tmp_path / "q.extxyz", back)
    again = read(xyz)
    assert np.allclose(again.positions, back.positions)
    with pytest.raises(StructureError, match="not found"):
        read_lammps_data(tmp_path / "missing.data")


def test_deck_quartz_equals_python_quartz(tmp_path):
    out = tmp_path / "q.data"
    run_cmd([BIN / "lmp", "-in", REPO / "inputs/minimize_quartz.in", "-var", "nx", 1, "-var", "ny", 1,
             "-var", "nz", 1, "-var", "out", out, "-log", "none"])
    deck = read_lammps_data(out)
    # the minimized deck structure is still quartz; compare to the ideal one before relaxation
    with LammpsSystem(quartz(2, 1, 1), "bks") as s:
        e_python = s.energy_forces()[0] / 18
    text = run_cmd([BIN / "lmp", "-in", REPO / "inputs/minimize_quartz.in", "-var", "nx", 1,
                    "-var", "ny", 1, "-var", "nz", 1, "-var", "out", tmp_path / "b.data",
                    "-log", "none"]).stdout
    start = float(text.split("QUARTZ start pe=")[1].split()[0])
    assert start == pytest.approx(e_python, abs=1e-6)
    assert len(deck) == 18


def test_quartz_minimum_stays_quartz(tmp_path):
    out = tmp_path / "qmin.data"
    text = run_cmd([BIN / "lmp", "-in", REPO / "inputs/minimize_quartz.in", "-var", "out", out,
                    "-var", "relax_box", "yes", "-log", "none"]).stdout
    assert "QUARTZ minimized" in text
    q = read_lammps_data(out)
    assert len(q) == 324
    d = neighbor_list("d", q, SI_O_CUT)
    assert 1.55 < d.min() and d.max() < 1.65
    si_cn, o_cn, per_atom = coordination(q)
    sym = np.array(q.get_chemical_symbols())
    assert np.all(per_atom[sym == "Si"] == 4) and o_cn == 2


def test_glass_coordination(glass_192):
    g = read_lammps_data(glass_192)
    assert len(g) == 192 and g.get_chemical_symbols().count("Si") == 64
    assert density(g) == pytest.approx(2.20, rel=1e-3)
    si_cn, o_cn, _ = coordination(g)
    assert si_cn > 3.9
    assert o_cn == pytest.approx(2.0, abs=0.06)
    d = neighbor_list("d", g, 1.2)
    assert len(d) == 0          # no fused atoms


def test_box_length_and_bad_n():
    assert cubic_box_length(3000, 2.20) == pytest.approx(35.66, abs=0.01)   # the study's cell
    with pytest.raises(StructureError, match="multiple of 3"):
        cubic_box_length(100, 2.2)
    with pytest.raises(StructureError, match="multiple of 3"):
        amorphous(100)


@pytest.mark.parametrize("spec,pair", [("bks", "1 2"), ("bks", "2 2"),
                                       ("bks-dsf", "1 2"), ("bks-dsf", "2 2"), ("bks-dsf", "1 1")])
def test_pair_energy_repulsive_below_minimum(tmp_path, spec, pair):
    """No BKS catastrophe: below its minimum each pair energy rises monotonically (bks).

    (BKS-DSF's O-O curve, as published, has a shallow local dip at 1.19 A some 16 eV above
    its minimum; only the absence of a collapse is checked for it.)"""
    from lammps_adv.lammps import snippets as potentials
    pot = potentials.get(spec)
    q = {"bks": {"1": 2.4, "2": -1.2}, "bks-dsf": {"1": 1.954952037, "2": -0.977476019}}[spec]
    i, j = pair.split()
    table = tmp_path / "pair.table"
    with LammpsSystem(quartz(), pot) as s:
        s.lmp.command(f"pair_write {i} {j} 2000 r 0.5 4.0 {table} P {q[i]} {q[j]}")
    data = np.loadtxt(table, skiprows=6)
    r, e = data[:, 1], data[:, 2]
    k = np.argmin(e)
    assert r[k] > 1.0           # no dive to -infinity at short range
    assert e[0] > e[k] + 5.0    # a real wall, several eV high
    if spec == "bks":           # the Saika-Voivod core: strictly monotonic below r_min
        assert np.all(np.diff(e[: k + 1]) < 0), f"{pair}: not monotonic below r_min={r[k]:.3f}"


def test_hot_md_loses_no_atoms(tmp_path):
    """2000 K MD of 324 atoms with BKS (PPPM): no lost atoms, no collapse."""
    out = tmp_path / "hot.data"
    with LammpsSystem(quartz(3, 3, 4), "bks:pppm") as s:
        n0 = s.natoms
        s.lmp.commands_list(["timestep 0.001", "velocity all create 4000 11 mom yes rot yes",
                             "fix nvt all nvt temp 2000 2000 0.1", "run 1500",
                             f"write_data {out}"])
        assert s.natoms == n0 == 324
        pe = s.lmp.get_thermo("pe") / n0
    assert -20.0 < pe < -17.0       # quartz is -19.45 eV/atom; a collapse gives -1e3 and below
    assert len(neighbor_list("d", read_lammps_data(out), 1.2)) == 0
