"""The recorder's pure parts, without LAMMPS: stages, snapshots, signals."""
import os
import signal

import numpy as np
import pytest

from lammps_adv.core.errors import RecorderError
from lammps_adv.recorder.signals import StopSignals
from lammps_adv.recorder.snapshot import cell_of, check_atom_set, sort_by_id, temperature
from lammps_adv.recorder.stages import StageTracker


def test_stages_from_hooks_and_from_the_callback_alone():
    st = StageTracker(every=5, stages_before=2)
    st.expect("run 10")
    assert st.observe("run", 0) == (0, "run 10") and st.index == 2
    assert st.observe("run", 1) == (1, None)
    assert not st.wanted("run", 1, 1) and st.wanted("run", 5, 5) and st.wanted("run", 0, 3)
    st.done()
    assert st.observe("run", 2) == (2, None)            # the same run goes on
    assert st.observe("run", 7) == (0, "") and st.index == 3   # a jump in steps: unseen run
    assert st.observe("minimize", 7) == (0, "") and st.index == 4
    assert st.observe("minimize", 7) == (1, None)       # line search: same step, same stage
    assert st.wanted("minimize", 1, 7)                  # every evaluation of a minimization


def test_rows_sorted_by_atom_id_with_the_order_reused():
    rows = np.array([[3, 1, 0.3], [1, 2, 0.1], [2, 1, 0.2]])
    out, cache = sort_by_id(rows)
    assert out[:, 0].tolist() == [1, 2, 3] and out[:, 2].tolist() == [0.1, 0.2, 0.3]
    again, cache2 = sort_by_id(rows * [1, 1, 10], cache)
    assert cache2 is cache and again[:, 2].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(RecorderError, match="duplicate atom IDs"):
        sort_by_id(np.array([[1, 1, 0.0], [1, 2, 0.0]]))


def test_lost_atoms_and_changed_types_are_errors():
    check_atom_set(np.array([1, 2, 2]), None, 0, 3)
    check_atom_set(np.array([1, 2, 2]), np.array([1, 2, 2]), 5, 3)
    with pytest.raises(RecorderError, match="3 atoms before, 2 at step 9 \\(LAMMPS counts 2\\)"):
        check_atom_set(np.array([1, 2]), np.array([1, 2, 2]), 9, 2)
    with pytest.raises(RecorderError, match="atom types changed .* at step 4"):
        check_atom_set(np.array([2, 2, 2]), np.array([1, 2, 2]), 4, 3)


def test_temperature_and_cell():
    # metal units: mvv2e converts g/mol (A/ps)^2 to eV; 3N - 3 degrees of freedom
    mvv2e, boltz = 1.0364269e-4, 8.617343e-5
    assert temperature(3 * 1.5 * boltz / mvv2e, 2, mvv2e, boltz) == pytest.approx(1.5)   # sum m v^2 = dof k T
    assert temperature(1.0, 1, mvv2e, boltz) == 0.0
    c = cell_of([1, 2, 3], [11, 22, 33], 0.5, 0.25, -0.75)
    np.testing.assert_allclose(c, [[10, 0, 0], [0.5, 20, 0], [-0.75, 0.25, 30]])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stop_signals_are_noted_not_raised_and_handlers_restored(sig):
    before = signal.getsignal(sig)
    stop = StopSignals()
    with stop:
        with stop:                                   # nested use keeps one set of handlers
            os.kill(os.getpid(), sig)
        assert stop.received == sig
        os.kill(os.getpid(), signal.SIGINT)          # the first signal counts
    assert stop.received == sig and signal.getsignal(sig) is before
    from lammps_adv.core.errors import RunInterrupted
    from lammps_adv.parallel.mpi import mpi_comm
    with pytest.raises(RunInterrupted, match=f"interrupted by {signal.Signals(sig).name} at step 3") as err:
        stop.stop_if_received(mpi_comm(), "at step 3")
    assert err.value.exit_code == 128 + sig
    StopSignals().stop_if_received(mpi_comm(), "at step 3")     # nothing noted: no error
