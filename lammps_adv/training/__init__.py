"""Datasets (HDF5) and training loops for the models of ``lammps_adv.models``."""
