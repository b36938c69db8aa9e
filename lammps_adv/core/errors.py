"""Every error lammps-adv raises on purpose: one small tree rooted at ``LammpsAdvError``.

Catch ``LammpsAdvError`` to handle any of them; the message is one line that names the
problem (the CLI prints it as ``lammps-adv COMMAND: error: MESSAGE``). The second base of
some classes (ValueError, OSError, ...) keeps ``except ValueError`` working where a bad
value is the cause. Import-light on purpose: ``import lammps`` reaches it through the plugin.
"""
from __future__ import annotations


def one_line(exc, limit: int | None = None) -> str:
    """An exception's message on one line (its type when it has none), cut at ``limit``."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if limit is None or len(text) <= limit else text[:limit - 3] + "..."


class LammpsAdvError(Exception):
    """Root of the project's errors."""


class EngineError(LammpsAdvError, RuntimeError):
    """LAMMPS could not be loaded or set up; the message names the fix."""


class PluginError(EngineError):
    """pair_style torchscript is not usable; the message names the cause and the fix."""


class PotentialError(LammpsAdvError, ValueError):
    """Unknown or unusable potential spec."""


class UnknownSpecError(PotentialError):
    """A spec string of no kind of the catalogue (each backend names what it can run)."""


class StructureError(LammpsAdvError, ValueError):
    """A structure cannot be built, read or written as asked."""


class CalculatorError(LammpsAdvError, ValueError):
    """An energy model could not be set up or evaluated, or returned an invalid result."""


class FileFormatError(LammpsAdvError, OSError):
    """A lammps-adv HDF5 file cannot be written or read (locked, full disk, corrupt, ...)."""


class RecorderError(LammpsAdvError, RuntimeError):
    """Recording failed; the message says why (rows recorded so far are kept)."""


class RunInterrupted(RecorderError):
    """SIGINT or SIGTERM stopped a recorded run; everything recorded was flushed."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum         # 130 for SIGINT, 143 for SIGTERM


class DatasetError(LammpsAdvError, ValueError):
    """A dataset file or its content is invalid."""


class TrainingError(LammpsAdvError, ValueError):
    """Training cannot start or produced an unusable model."""


class ModelError(LammpsAdvError, ValueError):
    """A model cannot be built or exported."""


class AlignmentError(LammpsAdvError, ValueError):
    """Energy alignment cannot be set up as asked (unknown species, bad shifts)."""


class ReportError(LammpsAdvError, ValueError):
    """Result files cannot be reported together as given (one model pair under different
    energy alignments, say); the message names the files' disagreement."""
