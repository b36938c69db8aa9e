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


def test_data_files_full_with_labels_numeric_and_charge_style_read_alike(tmp_path):
    """The project writes atom_style full with Si/O in Masses and Atoms (what MDAnalysis
    turns into type names); numeric types and older charge-style files read the same, in
    Python and in LAMMPS (the atom style is taken from the file)."""
    import MDAnalysis as mda
    from lammps_adv.lammps.structures import data_atom_style, label_types
    q = quartz(2, 1, 1)
    q.positions += np.random.default_rng(3).normal(0, 0.05, q.positions.shape)
    full = write_lammps_data(tmp_path / "full.data", q)
    numeric = write_lammps_data(tmp_path / "numeric.data", q, type_labels=False)
    lines = full.read_text().splitlines()
    start = lines.index("Atoms # full")
    charge = tmp_path / "charge.data"               # id type q x y z, no comment
    body = [" ".join([c[0], "1" if c[2] == "Si" else "2", *c[3:]])
            for c in (line.split() for line in lines[start + 2:])]
    charge.write_text("\n".join([*lines[:start], "Atoms", "", *body]) + "\n")
    assert [data_atom_style(p) for p in (full, numeric, charge)] == ["full", "full", "charge"]
    assert "Si 0.0" in full.read_text() and "Si 28.0855" in full.read_text()
    energies = []
    for path in (full, numeric, charge):
        atoms = read_lammps_data(path)
        assert atoms.get_chemical_symbols() == q.get_chemical_symbols()
        np.testing.assert_allclose(atoms.positions, read_lammps_data(full).positions, atol=1e-11)
        with LammpsSystem(path, "bks-dsf") as system:
            energies.append(system.energy_forces()[0])
    assert energies[1] == pytest.approx(energies[0], rel=1e-12)
    assert energies[2] == pytest.approx(energies[0], rel=1e-12)
    u = mda.Universe(str(full))                     # no atom_style: 'full' is its guess
    assert list(u.atoms.types) == q.get_chemical_symbols()
    assert u.atoms.masses[0] == pytest.approx(28.0855)
    # a LAMMPS-written file (numeric types, a labels section) gets its labels in place;
    # the numbers LAMMPS reads back are the same text
    with LammpsSystem(full, "bks-dsf") as system:
        system.lmp.command(f"write_data {tmp_path / 'lmp.data'}")
    written = (tmp_path / "lmp.data").read_text()
    label_types(tmp_path / "lmp.data")
    relabelled = (tmp_path / "lmp.data").read_text()
    assert "\n1 0 1 " in written and "\n1 0 Si " in relabelled
    assert [line.split()[3:] for line in written.splitlines() if line.startswith("1 0 ")] == \
        [line.split()[3:] for line in relabelled.splitlines() if line.startswith("1 0 ")]
    assert list(mda.Universe(str(tmp_path / "lmp.data")).atoms.types) == q.get_chemical_symbols()
    with LammpsSystem(tmp_path / "lmp.data", "bks-dsf") as system:
        assert system.energy_forces()[0] == pytest.approx(energies[0], rel=1e-12)
    # labels that swap the species are one error naming the file
    swapped = tmp_path / "swapped.data"
    swapped.write_text(numeric.read_text().replace(
        "\nMasses\n", "\nAtom Type Labels\n\n1 O\n2 Si\n\nMasses\n", 1))
    with pytest.raises(StructureError, match=r"swapped.data: atom type labels map types 1, 2 "
                       r"to \['O', 'Si'\]"):
        LammpsSystem(swapped, "bks-dsf")


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
