"""Every chart reads on a dark page (transparent, no white boxes) and prices read in dollars."""

from routing.charts.batch import confidence_histogram_figure, cost_comparison_figure, traffic_share_figure
from routing.charts.base import loss_curve_figure, usd_per_1000
from routing.compare.run import Comparison, ModelOutcome
from routing.charts.compare import dimension_bars_figure, score_cost_figure


def comparison():
    a, b = ModelOutcome("m1", "M1"), ModelOutcome("m2", "M2")
    for outcome, cost, score in ((a, 0.000031, 0.6), (b, 0.000101, 0.8)):
        outcome.response, outcome.cost_usd, outcome.normalized, outcome.total = "x", cost, score, 3.0
        outcome.scores, outcome.max_points = {"structure": 1.0}, {"structure": 2.0}
    return Comparison(id="c", prompt="p", selected_model="m1", selection=None, results={"m1": a, "m2": b},
                      best_model="m2")


def test_every_figure_has_a_transparent_background():
    figures = [dimension_bars_figure(comparison()), score_cost_figure(comparison()), loss_curve_figure([]),
               traffic_share_figure({"traffic_share": {"m1": 1.0}}), confidence_histogram_figure({}),
               cost_comparison_figure({})]
    for fig in figures:
        assert fig.layout.template.layout.paper_bgcolor == "rgba(0,0,0,0)", fig.layout.title.text
        assert fig.layout.template.layout.plot_bgcolor == "rgba(0,0,0,0)"


def test_score_against_cost_is_in_dollars_per_1000_prompts_with_labels_only_where_they_say_something():
    fig = score_cost_figure(comparison())
    assert fig.layout.xaxis.title.text == "$ per 1,000 such prompts"
    xs = [trace.x[0] for trace in fig.data]
    assert xs == [usd_per_1000(0.000031), usd_per_1000(0.000101)] and abs(xs[1] - 0.101) < 1e-9
    assert sorted(text for text, _ in labels_of(fig)) == ["router's pick", "winner"]
    assert [t.name for t in fig.data] == ["m1", "m2"]                   # names: the legend and the hover
    assert all(trace.cliponaxis is False for trace in fig.data)


def _normalised(fig, x, y):
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    return (x - x0) / (x1 - x0), (y - y0) / (y1 - y0)


def labels_of(fig):
    """(text, anchor) of every text label on the chart, the anchor in normalised axes units: a trace's
    text sits at its point; an annotation's at its tail (ax, ay in data units) or at its point."""
    out = []
    for trace in fig.data:
        for x, y, text in zip(trace.x, trace.y, trace.text or ()):
            if text:
                out.append((text, _normalised(fig, x, y)))
    for a in fig.layout.annotations:
        if a.xref == "paper":
            continue
        at = (a.ax, a.ay) if a.showarrow and a.axref == "x" else (a.x, a.y)
        out.append((a.text, _normalised(fig, *at)))
    return out


def close_comparison(points, best="m2", pick="m1"):
    outcomes = {}
    for i, (cost, score) in enumerate(points, 1):
        o = ModelOutcome(f"m{i}", f"M{i}")
        o.response, o.cost_usd, o.normalized, o.total = "x", cost, score, 3.0
        outcomes[o.model] = o
    return Comparison(id="c", prompt="p", selected_model=pick, selection=None, results=outcomes, best_model=best)


def test_labels_of_points_that_coincide_or_nearly_do_not_overlap():
    import math

    cases = [[(0.00005, 0.7), (0.00005, 0.7)],                              # pick and winner on one spot
             [(0.00005, 0.70), (0.000051, 0.71), (0.00005, 0.69)],          # close, a third one beside them
             [(0.0, 1.0), (0.0, 1.0), (0.0, 0.98)],                         # free models at the top
             [(0.0001, 0.0), (0.0001, 0.0)]]                                # ... and at the bottom
    for points in cases:
        fig = score_cost_figure(close_comparison(points))
        labels = labels_of(fig)
        assert sorted(t for t, _ in labels) == ["router's pick", "winner"], points
        (_, a), (_, b) = labels
        assert math.dist(a, b) >= 0.08, (points, labels)                   # labels apart
        for trace in fig.data:                                              # ... and off every point
            for _, anchor in labels:
                assert math.dist(anchor, _normalised(fig, trace.x[0], trace.y[0])) >= 0.08, (points, labels)
        for _, (x, y) in labels:                                            # ... and on the chart
            assert 0 <= x <= 1 and 0 <= y <= 1
    same = score_cost_figure(close_comparison([(0.00005, 0.7), (0.00005, 0.6)], best="m1", pick="m1"))
    assert [t for t, _ in labels_of(same)] == ["winner + router's pick"]
