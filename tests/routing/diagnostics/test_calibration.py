"""Calibrating the cost knob to a budget on the user's own prompts (routing/diagnostics/calibration.py): the
smallest cost weight within a cost per 1,000 prompts or a share of traffic to the priciest model."""

import json

import numpy as np
import pytest

from routing.diagnostics.calibration import WEIGHTS, _choices, calibrate
from routing.errors import UserError
from routing.pool import load_pool
from routing.selectors.rules import RuleSelector
from routing.settings import DEFAULT_MODELS_FILE

PROMPTS = ["Write a Python function that reverses a linked list", "Prove that sqrt(2) is irrational",
           "Write a haiku about autumn", "What is the capital of Peru?", "Debug this JavaScript: let x = ;",
           "Solve 3x + 5 = 20 step by step", "Write a short story opening about a lighthouse"] * 3


@pytest.fixture(scope="module")
def rules():
    return RuleSelector(load_pool(DEFAULT_MODELS_FILE))


def test_the_picks_at_every_weight_are_the_selectors_own(rules):
    from routing.selectors.base import normalised_prices

    scores = np.asarray(rules.score(PROMPTS))
    allowed = np.ones(len(rules.pool), bool)
    for w in (0.0, 0.3, 0.7, 1.0):
        expected = [rules.pool.ids.index(s.selected_model) for s in rules.select_many(PROMPTS, cost_weight=w)]
        assert _choices(scores, normalised_prices(rules.pool), w, allowed).tolist() == expected


def test_the_smallest_weight_within_the_budget_is_chosen(rules):
    free = calibrate(rules, PROMPTS, cost_per_1k=1e6)
    assert free.feasible and free.cost_weight == 0.0                   # a loose budget costs no quality
    costs = [c["cost_per_1k"] for c in free.curve]
    assert [c["cost_weight"] for c in free.curve] == list(WEIGHTS)
    budget = (max(costs) + min(costs)) / 2
    mid = calibrate(rules, PROMPTS, cost_per_1k=budget)
    assert mid.feasible and 0 < mid.cost_weight <= 1 and mid.achieved["cost_per_1k"] <= budget
    earlier = [c for c in mid.curve if c["cost_weight"] < mid.cost_weight]
    assert all(c["cost_per_1k"] > budget for c in earlier)              # nothing smaller fits
    none = calibrate(rules, PROMPTS, cost_per_1k=min(costs) / 10)
    assert not none.feasible and none.cost_weight is None and "raise the budget" in none.note
    share = calibrate(rules, PROMPTS, priciest_share=0.0)
    assert share.feasible and share.achieved["priciest_share"] == 0.0 and share.priciest_model == "deepseek-r1"


@pytest.mark.parametrize("kwargs, fragment", [
    ({}, "Give one budget"), ({"cost_per_1k": 1, "priciest_share": 0.1}, "Give one budget"),
    ({"cost_per_1k": -1}, "cost_per_1k"), ({"priciest_share": 2}, "priciest_share"),
    ({"cost_per_1k": float("nan")}, "cost_per_1k"), ({"cost_per_1k": 1, "output_tokens": 0}, "output_tokens"),
])
def test_bad_budgets_are_refused_with_the_reason(rules, kwargs, fragment):
    with pytest.raises(UserError, match=fragment):
        calibrate(rules, PROMPTS, **kwargs)
    with pytest.raises(UserError, match="No prompts"):
        calibrate(rules, ["", "  "], cost_per_1k=1)


def test_the_api_and_the_cli_calibrate_a_file(tmp_path, capsys):
    from gradio_client import Client, handle_file

    from routing.diagnostics.calibration import main
    from routing.service import RouterService
    from tests.app_harness import launch_app
    from tests.conftest import router_settings

    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": p}) for p in PROMPTS))
    assert main([str(path), "--priciest-share", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "most quality within the budget" in out and json.loads(out.splitlines()[-1])["feasible"]
    service = RouterService(router_settings(None, tmp_path, selector="rules"), background=False)
    with launch_app(service) as url:
        client = Client(url, verbose=False)
        result = client.predict(file=handle_file(str(path)), cost_per_1k=1e6, api_name="/calibrate")
        assert result["cost_weight"] == 0.0 and result["prompts"] == len(PROMPTS)
        listed = client.predict(prompts=PROMPTS[:5], priciest_share=0.0, api_name="/calibrate")
        assert listed["achieved"]["priciest_share"] == 0.0
        with pytest.raises(Exception, match="Give one budget"):
            client.predict(prompts=PROMPTS[:5], api_name="/calibrate")
