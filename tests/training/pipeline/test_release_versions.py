"""The Training tab's versions table and Rollback button say what is true (issue 29, item 8): the
trained date is the run's, not the file's; the live model's score is the newest gate's (the figure
the run's summary quotes); Rollback is on only when there is something to bring back."""

import json
import os
from pathlib import Path

from training.pipeline.release import VERSION_COLUMNS, can_roll_back, rollback, version_rows

REPO = Path(__file__).resolve().parents[3]
TRAINED = 1767225600.0   # 2026-01-01 00:00 UTC


def model(folder: Path, *, macro_f1: float, gate: dict | None = None, trained_at: float | None = TRAINED) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    report = {"metrics": {"n": 40, "accuracy": 0.8, "macro_f1": macro_f1}, "gate": gate or {}}
    if trained_at is not None:
        report["trained_at"] = trained_at
    (folder / "training_report.json").write_text(json.dumps(report))
    os.utime(folder / "training_report.json", (1e9, 1e9))   # copied or cloned in 2001
    return folder


def row(rows, version):
    return dict(zip(VERSION_COLUMNS, next(r for r in rows if r[0] == version)))


def test_the_trained_date_is_the_runs_not_the_files(tmp_path):
    target = model(tmp_path / "selector_model", macro_f1=0.7625)
    assert row(version_rows(target), "live")["trained (UTC)"] == "2026-01-01 00:00"
    report = json.loads((target / "training_report.json").read_text())
    del report["trained_at"]
    (target / "training_report.json").write_text(json.dumps(report))
    assert row(version_rows(target), "live")["trained (UTC)"] == "not recorded"   # never the clone time


def test_the_live_score_is_the_newest_gates_measurement(tmp_path):
    target = model(tmp_path / "selector_model", macro_f1=0.7625, gate={
        "metric": "macro_f1", "new_metric": 0.7625, "old_metric": 0.70, "against": "live", "promoted": True,
        "reason": "macro_f1 0.7625 >= live 0.7000"})
    model(tmp_path / "selector_model.prev", macro_f1=0.71)
    rows = version_rows(target)
    assert row(rows, "live")["score in the newest release gate"] == "macro_f1 0.7625 (40 prompts)"
    assert row(rows, "previous")["score in the newest release gate"] == "macro_f1 0.7000 (40 prompts)"
    # A later run's candidate was refused; its gate scored the live model 0.7793 on that run's split.
    model(tmp_path / "selector_model.rejected", macro_f1=0.75, trained_at=TRAINED + 3600, gate={
        "metric": "macro_f1", "new_metric": 0.75, "old_metric": 0.7793, "against": "live", "promoted": False,
        "reason": "macro_f1 0.7500 < live 0.7793: kept the live model"})
    rows = version_rows(target)
    assert row(rows, "live")["score in the newest release gate"] == "macro_f1 0.7793 (40 prompts)"
    assert row(rows, "live")["its run's macro-F1"] == 0.7625          # labelled as its own run's figure
    assert row(rows, "previous")["score in the newest release gate"] == ""  # that gate did not measure it


def test_the_rules_score_is_never_shown_as_a_models(tmp_path):
    target = model(tmp_path / "selector_model", macro_f1=0.76, gate={
        "metric": "macro_f1", "new_metric": 0.76, "old_metric": 0.55, "against": "rules", "promoted": True})
    model(tmp_path / "selector_model.rejected", macro_f1=0.7, trained_at=TRAINED + 60, gate={
        "metric": "macro_f1", "new_metric": 0.7, "old_metric": 0.76, "against": "live"})
    assert row(version_rows(target), "live")["score in the newest release gate"] == "macro_f1 0.7600 (40 prompts)"
    (tmp_path / "selector_model.rejected" / "training_report.json").unlink()
    assert [r[0] for r in version_rows(target)] == ["live"]


def test_rollback_is_offered_only_with_something_to_bring_back(tmp_path):
    target = model(tmp_path / "selector_model", macro_f1=0.76)
    assert not can_roll_back(target)
    model(tmp_path / "selector_model.prev", macro_f1=0.7)
    assert can_roll_back(target)
    rollback(target)
    assert can_roll_back(target)   # rolling back again rolls forward


def test_the_shipped_selector_says_shipped_and_rollback_is_off(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTER_DATA_DIR", str(tmp_path / "data"))
    shipped = REPO / "selector_model"
    rows = version_rows(shipped)
    assert row(rows, "live")["trained (UTC)"] == "shipped with the app"
    assert not can_roll_back(shipped)
    model(tmp_path / "data" / "selector", macro_f1=0.8)   # a retrained selector promoted in the data folder
    assert can_roll_back(shipped)                          # rolling back sets it aside for the shipped one
    assert row(version_rows(shipped), "live")["trained (UTC)"] == "2026-01-01 00:00"
