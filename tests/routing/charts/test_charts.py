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
    labels = [trace.text for trace in fig.data]
    assert labels[0] == ("router's pick",) and labels[1] == ("winner",)
    assert all(trace.cliponaxis is False for trace in fig.data)
