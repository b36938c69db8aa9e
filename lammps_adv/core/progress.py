"""Progress bars for long work: tqdm on rank 0, quiet elsewhere and when disabled.

On a terminal the bar refreshes every second; in a log file or a pipe (CI, mpirun
output) every 30 s, so logs stay short.
"""
from __future__ import annotations

import sys


class _NoBar:
    def update(self, n=1):
        pass

    def set_description(self, desc):
        pass

    def set_postfix_str(self, text):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def bar(total: int, desc: str, unit: str = "it", enabled: bool = True, comm=None, **kwargs):
    """A tqdm bar on rank 0 of ``comm`` (when enabled), else an object that does nothing.

    kwargs go to tqdm (e.g. ``initial``)."""
    if not enabled or (comm is not None and comm.Get_rank() != 0):
        return _NoBar()
    from tqdm import tqdm
    tty = sys.stdout.isatty()
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stdout, dynamic_ncols=tty,
                mininterval=1.0 if tty else 30.0, ascii=not tty, **kwargs)
