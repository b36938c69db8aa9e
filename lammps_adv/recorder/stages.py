"""Stage tracking: which ``run``/``minimize`` command of a deck each force evaluation
belongs to, and which evaluations are recorded. Pure bookkeeping, no LAMMPS.

A stage starts when a hook announces the next run/minimize (``expect``), or, for commands
the hooks cannot see (inside ``include`` files or ``if`` blocks), when the callback's mode
changes or an MD step does not follow the previous one.
"""
from __future__ import annotations


class StageTracker:
    def __init__(self, every: int, stages_before: int = 0):
        self.every = int(every)
        self.index = stages_before - 1   # current stage (file-wide numbering)
        self.kind = None                 # "run" or "minimize"
        self.evaluation = 0              # force evaluations seen in this stage
        self.last_step = None
        self.expected = None             # command announced by a hook, not yet started

    def expect(self, command: str) -> None:
        """A hook says ``command`` (run/minimize) starts next."""
        self.expected = command

    def done(self) -> None:
        """The announced command has returned."""
        self.expected = None

    def observe(self, kind: str, step: int):
        """One force evaluation of ``kind`` at ``step``: returns (evaluation index in its
        stage, command text of a stage that starts here or None)."""
        if self.expected is not None:
            started = self.expected
        elif (self.kind is None or kind != self.kind
              or (kind == "run" and step != self.last_step + 1)):
            started = ""
        else:
            started = None
        if started is not None:
            self.index += 1
            self.kind = kind
            self.evaluation = 0
            self.expected = None
        ev = self.evaluation
        self.evaluation += 1
        self.last_step = step
        return ev, started

    def wanted(self, kind: str, ev: int, step: int) -> bool:
        """Recorded: every evaluation of a minimization, the first of every stage, and MD
        steps that are multiples of ``every``."""
        return kind == "minimize" or ev == 0 or step % self.every == 0
