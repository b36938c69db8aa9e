"""The report's figures say what they show: the model pair in the title, what bars and
bands are (and over how many units) in a caption, the study's values where they compare;
compact grids instead of tall stacks."""
import numpy as np
import pytest

from lammps_adv.report import figures


@pytest.fixture
def captured(monkeypatch):
    """The figure each plot hands to finish(), with the title and note it was given."""
    seen = {}
    real = figures.finish

    def spy(fig, path, title="", note="", dpi=120):
        seen.update(fig=fig, title=title, note=note)
        return real(fig, path, title, note, dpi)
    monkeypatch.setattr(figures, "finish", spy)
    return seen


def _rows(units):
    return [{"epsilon_A2": e, "adversarial_mean": 10 + 50 * e, "adversarial_lo": 8 + 50 * e,
             "adversarial_hi": 12 + 50 * e, "adversarial_units": units, "random_mean": 10.0,
             "random_lo": 9.0, "random_hi": 11.0, "random_units": units} for e in (0, 0.1, 0.5)]


def test_epsilon_figure_names_the_pair_the_intervals_and_the_study(tmp_path, captured):
    study = {0.0: (5.1, 5.1), 0.1: (5.3, 15.4), 0.5: (6.8, 42.0)}
    figures.plot_epsilon(_rows(6), tmp_path / "e.png", title="bp vs bks-dsf",
                         note="error bars: 95 % over 6 units", study=study)
    fig = captured["fig"]
    assert fig._suptitle.get_text() == "bp vs bks-dsf"
    assert [t.get_text() for t in fig.texts if t is not fig._suptitle] == \
        ["error bars: 95 % over 6 units"]
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "study, adversarial" in labels and "study, random" in labels
    bars = [c for c in fig.axes[0].containers if hasattr(c, "lines")]
    assert all(np.ptp(seg[:, 1]) > 0 for c in bars for seg in c.lines[2][0].get_segments())


def test_no_error_bars_below_the_minimum_of_independent_units(tmp_path, captured):
    figures.plot_epsilon(_rows(3), tmp_path / "e.png", min_units=5)
    bars = [c for c in captured["fig"].axes[0].containers if hasattr(c, "lines")]
    assert all(np.ptp(seg[:, 1]) == 0 for c in bars for seg in c.lines[2][0].get_segments())


def test_nine_histograms_are_a_compact_grid(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    panels = {f"strategy {k}": ({"n=40": rng.uniform(-1, 1, 40)}, 0.09) for k in range(9)}
    path = figures.plot_cos_grid(panels, tmp_path / "g.png", title="pair", note="caption")
    width, height = Image.open(path).size
    assert width <= 1100 and height <= 900, (width, height)      # 3 x 3, not 9 x 1


def test_minimizer_step_axis_has_whole_numbers_only(tmp_path, captured):
    curves = {"bp vs bks-dsf": [np.linspace(5, 9, 11), np.linspace(4, 8, 11)]}
    figures.plot_band(curves, tmp_path / "b.png", "minimizer step", "error", integer_x=True,
                      title="t", note="n")
    ticks = captured["fig"].axes[0].get_xticks()
    assert np.allclose(ticks, np.round(ticks))
