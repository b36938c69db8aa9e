"""SIGINT and SIGTERM during a recorded run: stop at the next step, never mid-write.

LAMMPS calls the recorder from C through ctypes, where an exception (Ctrl-C's
KeyboardInterrupt) is printed and swallowed; and SIGTERM's default action kills the
process before anything is flushed. While a recorder drives LAMMPS, ``StopSignals``
replaces both handlers by one that only notes the signal; the recorder looks at the note
at every force evaluation and stops LAMMPS cleanly. The previous handlers come back
afterwards. Only the main thread can install handlers; elsewhere this does nothing.
"""
from __future__ import annotations

import signal
import threading

from lammps_adv.core.errors import RunInterrupted

NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class StopSignals:
    def __init__(self):
        self.received = None         # signal number of the first signal noted
        self._saved = {}
        self._depth = 0              # nested use keeps the outermost handlers

    def _note(self, signum, frame):
        if self.received is None:
            self.received = signum

    def __enter__(self):
        self._depth += 1
        if self._depth == 1 and threading.current_thread() is threading.main_thread():
            for sig in NAMES:
                self._saved[sig] = signal.signal(sig, self._note)
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0:
            for sig, handler in self._saved.items():
                signal.signal(sig, handler)
            self._saved = {}

    def stop_if_received(self, comm, where: str) -> None:
        """Raise RunInterrupted on every rank when any rank noted a signal (collective)."""
        sig = self.received or 0
        if comm.Get_size() > 1:
            from mpi4py import MPI
            sig = comm.allreduce(sig, op=MPI.MAX)
        if sig:
            name = NAMES.get(sig, f"signal {sig}")
            raise RunInterrupted(f"interrupted by {name} {where}", sig)
