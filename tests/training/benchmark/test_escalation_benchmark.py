"""benchmarks/escalation.py on a tiny synthetic outcome table with answers (no ../shared/data needed):
the report's shape, and that the next model up is asked exactly when a trigger fired."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from benchmarks.escalation import main
from routing.escalation.policy import keep_second, next_model_up

CHEAP, MID, TOP = "alpha-7b-chat", "gamma-v1", "beta-70b-instruct-2501"
GOOD = {
    "Explain briefly why the sky is blue.":
        "The sky looks blue because of Rayleigh scattering: air molecules scatter short (blue) wavelengths of "
        "sunlight much more strongly than long (red) ones, so blue light reaches our eyes from every direction.",
    "Explain briefly why ice floats on water.":
        "Ice floats because it is less dense than liquid water. When water freezes, hydrogen bonds lock the "
        "molecules into an open hexagonal lattice that takes up about 9% more volume, so a given mass of ice "
        "displaces more water than it weighs.",
    "Explain briefly how a vaccine trains the immune system.":
        "A vaccine shows the immune system a harmless piece or weakened form of a pathogen. B cells learn to make "
        "antibodies against it and T cells learn to recognise it; memory cells remain afterwards, so a later "
        "infection is met quickly, before it can cause serious illness.",
    "Explain briefly why leaves change colour in autumn.":
        "In autumn, shorter days and cooler nights make trees stop producing chlorophyll, the green pigment. As it "
        "breaks down, yellow and orange carotenoids that were there all along become visible, and some trees also "
        "make red anthocyanins from sugars trapped in the leaves.",
}
PROMPTS = list(GOOD)
#: The cheap model's obviously wrong answers (an empty one, a refusal), graded 0.
WRONG = {PROMPTS[1]: "", PROMPTS[2]: "I'm sorry, but I can't help with that."}


def _ratings_csv(path):
    rows = [{"variant": "style_control", "category": c, "model": m, "rating": r,
             "ci95_low": r - 10, "ci95_high": r + 10}
            for m, r in ((CHEAP, 1150.0), (MID, 1250.0), (TOP, 1350.0))
            for c in ("full", "coding", "math", "creative_writing", "hard_6")]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _table(path):
    rows = []
    for p in PROMPTS:
        row = {"prompt": p}
        for m, cost in ((CHEAP, 0.0001), (MID, 0.001), (TOP, 0.01)):
            answer = WRONG[p] if m == CHEAP and p in WRONG else GOOD[p]
            row.update({m: 0.0 if answer != GOOD[p] else 1.0, f"{m}|model_response": answer,
                        f"{m}|total_cost": cost})
        rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("escalation")
    table, ratings = _table(tmp_path / "t.csv"), _ratings_csv(tmp_path / "r.csv")
    out = tmp_path / "escalation.json"
    # a high cost weight makes the prior pick the cheap model everywhere, so its wrong answers are replayed
    assert main(["--table", str(table), "--ratings", str(ratings), "--cost-weight", "5", "--per-set", "0",
                 "--rows", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]) == 0
    return json.loads(out.read_text())["sets"]["t.csv"]


def test_report_shape(report):
    for key in ("no_escalation", "escalation", "always_best", "oracle"):
        assert {"quality", "cost_per_1000"} <= set(report[key])
    assert {"unsure", "weak", "either", "asked_second", "kept_second"} <= set(report["trigger_rates"])
    assert report["prompts"] == len(PROMPTS) and report["pool"] == [CHEAP, MID, TOP]
    assert report["always_best"]["model"] == TOP      # no train table: the best-rated model
    assert report["no_escalation"]["picks"][CHEAP] == 1.0
    assert report["no_escalation"]["quality"] == pytest.approx(0.5)
    assert report["oracle"]["quality"] == pytest.approx(1.0)
    assert report["oracle"]["cost_per_1000"] == pytest.approx((2 * 0.0001 + 2 * 0.001) / 4 * 1000)


def test_the_next_model_up_is_asked_only_when_a_trigger_fired(report):
    rows = report["rows"]
    assert len(rows) == len(PROMPTS)
    for row in rows:
        selection = SimpleNamespace(scores=row["scores"])
        expected = next_model_up(selection, row["first"]) if (row["unsure"] or row["weak"]) else None
        assert row["second"] == expected
        if row["second"] is None:
            assert row["kept"] == row["first"]
        else:
            better = keep_second(row["first_score"], row["second_score"])
            assert row["kept"] == (row["second"] if better else row["first"])
    # the obviously wrong answers are weak, go one step up (to the mid model) and are replaced
    for p, row in zip(PROMPTS, rows):
        if p in WRONG:
            assert row["weak"] and row["second"] == MID and row["kept"] == MID
    # the good ones from a sure decision ask no one
    quiet = [r for r in rows if not r["unsure"] and not r["weak"]]
    assert quiet and all(r["second"] is None for r in quiet)
    asked = sum(r["second"] is not None for r in rows) / len(rows)
    assert report["trigger_rates"]["asked_second"] == pytest.approx(asked)
    assert report["escalation"]["quality"] == pytest.approx(1.0)
    extra = sum(0.001 for r in rows if r["second"] == MID)
    assert report["escalation"]["cost_per_1000"] == pytest.approx((len(PROMPTS) * 0.0001 + extra) / len(PROMPTS) * 1000)
