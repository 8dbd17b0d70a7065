"""What routing saved or cost, per batch row (issue 30, item 5): the routed model's cost, the cost
had the row gone to the priciest and to the best-rated pool model, and (compare mode) the regret
against the row's best answer; the summary, the printed summary and the chart carry the totals."""

import csv

from routing.batch.local import run_file
from routing.batch.rows import _format_summary, row_savings
from routing.charts.batch import cost_comparison_figure
from tests.routing.batch.test_batch import PROMPTS, write_prompts_csv
from tests.routing.compare.test_compare import GOOD, REFUSAL


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_each_routed_row_says_what_it_cost_against_the_priciest_and_the_best_rated(make_service, tmp_path):
    service = make_service()
    pool = service.pool
    assert pool.best_rated() == "deepseek-r1"        # LMArena's overall rating leads the shipped pool
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS)
    summary = run_file(service.router, src, tmp_path / "out.csv", mode="route")
    rows = read_csv(tmp_path / "out.csv")
    for row in rows:
        routed, priciest, best = (float(row[k]) for k in ("cost_routed_usd", "cost_if_priciest_usd",
                                                            "cost_if_best_rated_usd"))
        assert 0 < routed <= priciest and best > 0
        if row["selected_model"] == "deepseek-r1":
            assert routed == best
        assert row["regret"] == ""                  # no outcomes in route-only mode
    cheap = next(r for r in rows if r["selected_model"] == "mistral-small")
    assert float(cheap["cost_routed_usd"]) < float(cheap["cost_if_best_rated_usd"])
    c = summary["cost_estimate_usd"]
    assert c["best_rated_model"] == "deepseek-r1"
    assert abs(c["all_best_rated"] - sum(float(r["cost_if_best_rated_usd"]) for r in rows)) < 1e-9
    assert abs(c["routed"] - sum(float(r["cost_routed_usd"]) for r in rows)) < 1e-9
    assert "(best rated)" in _format_summary({**summary, "elapsed_s": 1.0, "processed_this_run": 5})
    figure = cost_comparison_figure(summary, pool)
    assert len(figure.data[0].x) == 4 and "best rated" in figure.data[0].x[3]


def test_compare_rows_carry_regret_and_real_costs(make_service, protocol_server, tmp_path):
    service = make_service()
    # The router picks DeepSeek R1 for the coding prompt; Llama gives the working code.
    protocol_server.set_model("*", reply=REFUSAL)
    protocol_server.set_model("meta-llama/llama-3.3-70b-instruct", reply=GOOD)
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS[:1])
    summary = run_file(service.router, src, tmp_path / "out.csv", mode="compare")
    row = read_csv(tmp_path / "out.csv")[0]
    assert row["selected_model"] == "deepseek-r1" and row["best_model"] == "llama-3.3"
    regret = float(row["regret"])
    assert regret > 0.2                               # the refusal scored far below the working code
    assert float(row["cost_routed_usd"]) == float(row["deepseek-r1_cost_usd"])     # what was billed
    assert float(row["cost_if_best_rated_usd"]) == float(row["deepseek-r1_cost_usd"])
    assert summary["compare"]["mean_regret"] == round(regret, 4) and summary["compare"]["rows_with_regret"] == 1
    assert "regret" in _format_summary({**summary, "elapsed_s": 1.0, "processed_this_run": 1})


def test_a_routed_model_that_did_not_answer_has_no_regret_and_no_cost(make_service):
    pool = make_service().pool
    record = {"selected_model": "qwen2.5", "regret": None,
              "compare": {"qwen2.5": {"error": "503", "cost_usd": None},
                          "deepseek-r1": {"error": None, "cost_usd": 0.002}}}
    savings = row_savings(record, pool)
    assert savings["cost_routed_usd"] is None and savings["regret"] is None
    assert savings["cost_if_best_rated_usd"] == 0.002


def test_the_batch_counts_prompts_unlike_the_selectors_training_data(make_service, tmp_path):
    """Issue 30, item 4: the novelty flag per row and in the summary (the shipped prior's check)."""
    import pytest

    pytest.importorskip("torch")
    from routing.settings import DEFAULT_SELECTOR_DIR
    from ui.batch_tab import summary_markdown

    service = make_service(selector="auto", selector_dir=DEFAULT_SELECTOR_DIR)
    src = write_prompts_csv(tmp_path / "in.csv", [PROMPTS[0], "!!!!????....", PROMPTS[3]])
    summary = run_file(service.router, src, tmp_path / "out.csv", mode="route")
    rows = read_csv(tmp_path / "out.csv")
    assert [r["unlike_training_data"] for r in rows] == ["False", "True", "False"]
    assert summary["unlike_training_data"] == {"rows": 1, "of": 3, "share": 0.3333}
    text = summary_markdown(summary, service.pool)
    assert "1 of 3 prompts" in text and "best-rated model" in text


def test_an_outcome_table_gives_each_routed_row_its_regret(monkeypatch, tmp_path, capsys):
    """``--outcomes``: RouterBench-style scores per prompt; regret = the row's best score minus the routed one's."""
    from routing.batch.cli import main

    for key, value in dict(ROUTER_SELECTOR="rules", ROUTER_LOCAL_MODEL="0", ROUTER_LIVE_PRICES="0",
                           ROUTER_DATA_DIR=str(tmp_path / "data"), OPENROUTER_API_KEY="").items():
        monkeypatch.setenv(key, value)
    src = write_prompts_csv(tmp_path / "in.csv", PROMPTS[:3])
    table = tmp_path / "outcomes.csv"
    with table.open("w", encoding="utf-8", newline="") as fh:     # columns by pool id and by model name
        writer = csv.writer(fh)
        writer.writerow(["prompt", "deepseek-r1", "meta-llama/llama-3.3-70b-instruct", "gpt-4"])
        writer.writerow([PROMPTS[0], "1.0", "0.0", "1.0"])          # routed to deepseek-r1 (coding): regret 0
        writer.writerow([PROMPTS[1], "1.0", "0.25", "0.0"])         # routed to llama-3.3 (creative): regret 0.75
    assert main([str(src), "--out", str(tmp_path / "res.csv"), "--outcomes", str(table)]) == 0
    printed = capsys.readouterr().out
    rows = read_csv(tmp_path / "res.csv")
    assert [r["selected_model"] for r in rows] == ["deepseek-r1", "llama-3.3", "gemini-flash"]
    assert [r["regret"] for r in rows] == ["0.0", "0.75", ""]     # the third prompt is not in the table
    assert "regret against the outcome table" in printed and "mean 0.375 over 2 rows" in printed
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,gpt-4\nhello,1\n", encoding="utf-8")
    assert main([str(src), "--out", str(tmp_path / "res2.csv"), "--outcomes", str(bad)]) == 2
    assert "no column for any pool model" in capsys.readouterr().err
