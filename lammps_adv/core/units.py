"""Unit conversions of LAMMPS ``metal`` units (eV, Angstrom, ps, bar)."""
BAR_PER_EV_A3 = 1.602176634e6              # 1 eV/A^3 in bar (LAMMPS metal pressure unit)
