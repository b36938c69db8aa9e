"""Unit conversions of LAMMPS ``metal`` units (eV, Angstrom, ps, bar)."""
BAR_PER_EV_A3 = 1.602176634e6              # 1 eV/A^3 in bar (LAMMPS metal pressure unit)
MASSES = {"Si": 28.0855, "O": 15.9994}     # g/mol (amu), as in every data file written here
