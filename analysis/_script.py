"""What the analysis scripts share: strict reading of result files (a file that is missing,
corrupt or not lammps-adv's is an error naming it, never skipped) and errors as one line."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from lammps_adv.core.errors import FileFormatError, one_line
from lammps_adv.io import h5md
from lammps_adv.io.results import Result, probe_arrays, recording


def read_result(path) -> Result:
    """One probe file or recording (`lammps-adv run`, `relax`) with its /parameters."""
    path = Path(path)
    params = h5md.read_parameters(path, texts=False)
    if params.get("experiment") == "probe":
        return Result(path, params, probe_arrays(path))
    data = recording(path)
    if not len(data["step"]):
        raise FileFormatError(f"{path}: a recording without rows")
    return Result(path, params, data)


def kind_of(result: Result) -> str:
    """'probe file', 'relaxation' (`lammps-adv relax`) or 'run recording' (`lammps-adv run`)."""
    return {"probe": "probe file", "relax": "relaxation"}.get(result.params.get("experiment"),
                                                              "run recording")


def run_main(main) -> None:
    """Call ``main()``: an error is one line on stderr and exit status 2, as `lammps-adv`
    reports errors (LAMMPSADV_DEBUG=1 shows the traceback)."""
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001  one clear line, never a traceback
        if os.environ.get("LAMMPSADV_DEBUG"):
            raise
        print(f"{Path(sys.argv[0]).name}: error: {one_line(exc)}", file=sys.stderr, flush=True)
        sys.exit(2)
