"""core.alignment: a fit with no degree of freedom is refused; every alignment carries its
source through /parameters; the report refuses one model pair under two alignments."""
import numpy as np
import pytest

from lammps_adv.core import alignment as al
from lammps_adv.core.errors import AlignmentError, ReportError
from lammps_adv.io.results import Result
from lammps_adv.report.labels import alignment_by_pair

SIO2 = ["Si"] * 3 + ["O"] * 6


def test_a_fit_with_no_degree_of_freedom_is_refused():
    # one configuration: the fit would absorb its whole error
    with pytest.raises(AlignmentError) as err:
        al.fit([SIO2], [-10.0], [-12.0])
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("per-species alignment fitted on the configurations of this "
                              "experiment (1 configurations): 1 configuration(s) for 1 "
                              "independent shift combination(s)")
    assert "--align none" in message and "--align-from FILE" in message
    # two compositions, two configurations: rank 2, still nothing left; the source named
    varied = [SIO2, ["Si"] * 3 + ["O"] * 5]
    with pytest.raises(AlignmentError, match=r"alignment x\.h5 \(sha256 0123\): 2 configuration"):
        al.fit(varied, [1.0, 2.0], [0.0, 0.0], source="x.h5 (sha256 0123)")
    with pytest.raises(AlignmentError, match="no degree of freedom"):
        al.check_fit(varied)
    # a third configuration leaves one degree of freedom: fitted, its residual is not zero
    three = varied + [["Si"] * 3 + ["O"] * 4]
    e_app, e_acc = np.array([1.0, 2.0, 2.5]), np.zeros(3)
    fitted = al.fit(three, e_app, e_acc)
    residual = [ea + fitted.offset(s) - eb for s, ea, eb in zip(three, e_app, e_acc)]
    assert np.abs(residual).max() > 0.1
    assert fitted.source == al.self_fitted(3) and fitted.is_self_fitted
    # all SiO2 (rank 1): two configurations suffice
    assert al.fit([SIO2, SIO2 * 2], [1.0, 2.5], [0.0, 0.0]).mode == "per-species"


def test_the_source_travels_with_the_alignment():
    fitted = al.fit([SIO2, SIO2 * 2, SIO2 * 3], [1.0, 2.5, 3.0], [0.0, 0.0, 0.0],
                    source="x.extxyz (sha256 abcdef012345)")
    attrs = fitted.attrs()
    assert attrs["alignment_source"] == "x.extxyz (sha256 abcdef012345)"
    assert al.from_attrs(attrs) == fitted and not fitted.is_self_fitted
    assert "source: x.extxyz (sha256 abcdef012345)" in fitted.describe()
    # bytes as h5py may return them
    assert al.from_attrs({k: v.encode() for k, v in attrs.items()}) == fitted
    assert al.parse_shifts("Si=1,O=-0.5").source == al.GIVEN == "given by the user"
    assert al.NONE.attrs()["alignment_source"] == "none"
    # files written before alignment_source existed
    old = {k: v for k, v in attrs.items() if k != "alignment_source"}
    assert al.from_attrs(old).source == al.UNRECORDED
    assert al.from_attrs({}).source == "none"


def _result(name, approx, alignment):
    return Result(name, {"experiment": "probe", "approx": approx, "reference": "bks",
                         **alignment.attrs()}, {})


def test_report_refuses_one_pair_under_two_alignments():
    a = al.parse_shifts("Si=1,O=2")
    fitted = al.fit([SIO2, SIO2 * 2], [1.0, 2.5], [0.0, 0.0])
    same = al.Alignment(a.mode, dict(a.shifts), "", "elsewhere")
    res = {"probe": [_result("p1.h5", "bks-dsf", a), _result("other.h5", "bks-dsf", al.NONE)],
           "relax": [_result("r.h5", "bks-dsf", same)], "run": []}
    with pytest.raises(ReportError) as err:
        alignment_by_pair(res)
    message = str(err.value)
    assert "\n" not in message and message.startswith("model pair bks-dsf vs bks:")
    assert "per-species O +2, Si +1 eV (given by the user) in p1.h5" in message
    assert "none in other.h5" in message
    # another pair may have its own alignment; equal shifts pool whatever their source
    res["probe"][1] = _result("other.h5", "bks", fitted)
    pairs = alignment_by_pair(res)
    assert pairs["bks-dsf vs bks"].same_shifts(same) and pairs["bks vs bks"] == fitted
    # mode none against per-species with all shifts zero still differs
    zero = al.Alignment("per-species", {"Si": 0.0, "O": 0.0}, "", al.GIVEN)
    with pytest.raises(ReportError, match="different energy alignments"):
        alignment_by_pair({"probe": [_result("a.h5", "x", al.NONE),
                                     _result("b.h5", "x", zero)]})
