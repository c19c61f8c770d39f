"""Charts a person reads (issue 19, items 4 and 11): the probability bars and the history's trend."""
from datetime import datetime, timedelta, timezone

import pytest

from clarityx.screening.history import EyeRecord, Visit, shown_time


@pytest.fixture
def pages(tmp_path, monkeypatch):
    """The page modules, imported with a private history file (importing a page runs it, bare)."""
    monkeypatch.setenv("CLARITYX_HISTORY", str(tmp_path / "history.sqlite3"))
    import app_pages.history as history
    import app_pages.screen as screen

    return screen, history


def test_probability_bars_are_labelled_level_even_at_zero_on_an_axis_to_100_percent(pages):
    screen, _ = pages
    fig = screen.probability_chart([("glaucoma", 0.11), ("normal", 0.89 - 1e-9), ("cataract", 0.0)])
    bar = fig.data[0]
    assert bar.textposition == "outside" and bar.textangle == 0 and bar.cliponaxis is False
    assert list(bar.text) == ["0%", "89%", "11%"]  # highest on top: plotly draws bottom-up
    assert fig.layout.xaxis.range[1] >= 1 and 1 in fig.layout.xaxis.tickvals


T0 = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)


def visit(day: int, version: str, glaucoma: float, sides=("right", "left")) -> Visit:
    probs = {"normal": 1 - glaucoma - 0.02, "glaucoma": glaucoma, "cataract": 0.02}
    return Visit(T0 + timedelta(days=day, hours=day), "clarityx_lite0", version,
                 [EyeRecord(s, "ok", None, probs) for s in sides])


def test_the_trend_has_a_panel_per_eye_the_conditions_that_matter_and_a_line_per_model_version(pages):
    _, history = pages
    visits = [visit(0, "v1", 0.3), visit(30, "v1", 0.4), visit(60, "v2", 0.5)]
    assert history.default_conditions(visits) == ["glaucoma"]  # not normal, not a 2% cataract
    fig = history.trend_figure(visits, ["glaucoma"])
    panels = {t.xaxis for t in fig.data}
    assert panels == {"x", "x2"}  # right eye and left eye apart
    assert len(fig.data) == 4  # glaucoma × 2 eyes × 2 model versions: no line joins v1 to v2
    for trace in fig.data:
        assert len({v for v in trace.name.split(" — ")[1:]}) == 1
    assert [t.name for t in fig.data].count("Glaucoma — clarityx_lite0 (v1)") == 2
    assert sum(t.showlegend is not False for t in fig.data) == 2  # each line once in the legend
    xs = [x for t in fig.data for x in t.x]
    assert set(xs) == {shown_time(v.taken_at) for v in visits}  # local date and time on the axis
    assert fig.layout.xaxis.type == "category" and fig.layout.yaxis.range[1] > 1  # the 100% dot is not cut


def test_a_single_visit_is_a_point_per_condition_not_a_column_of_every_class(pages):
    _, history = pages
    fig = history.trend_figure([visit(0, "v1", 0.6, sides=("left",))], history.default_conditions(
        [visit(0, "v1", 0.6, sides=("left",))]))
    assert len(fig.data) == 1 and len(fig.data[0].x) == 1


def test_two_visits_in_one_minute_stay_two_points(pages):
    _, history = pages
    a, b = visit(0, "v1", 0.3), visit(0, "v1", 0.4)
    b.taken_at = a.taken_at + timedelta(seconds=20)
    fig = history.trend_figure([a, b], ["glaucoma"])
    assert all(len(set(t.x)) == 2 for t in fig.data)


def test_a_condition_keeps_its_colour_in_every_view_and_the_panels_share_their_axis(pages):
    """Issue 24, item 11: a condition's colour changed between the Both and Left views; the two panels' x axes
    differed; the legend covered the date labels."""
    _, history = pages
    both = [visit(0, "v1", 0.3), visit(30, "v1", 0.4, sides=("right",))]
    left_only = [v for v in both if any(e.side == "left" for e in v.eyes)]
    fig_both = history.trend_figure(both, ["cataract", "glaucoma"])
    left = visit(0, "v1", 0.3, sides=("left",))
    left.eyes[0].probabilities = {"glaucoma": 0.3, "normal": 0.7}  # cataract is not among this view's classes
    fig_left = history.trend_figure([left], ["glaucoma"])
    colour = {t.name: t.line.color for t in fig_both.data}
    assert all(t.line.color == colour[t.name] for t in fig_left.data) and left_only
    axes = [fig_both.layout.xaxis, fig_both.layout.xaxis2]
    assert axes[0].categoryarray == axes[1].categoryarray and axes[0].range == axes[1].range
    assert fig_both.layout.legend.yref == "container" and fig_both.layout.legend.y == 0  # under the labels
