"""One caller must not be able to poison automatic retraining (security audit of main).

The attack as it happened: one caller asks 44 maths prompts and rates every answer down with
``better_model=llama-3.3``; the hash test slice holds 3 of those prompts, the candidate "wins" on
them (on the caller's word alone), is promoted over the checkout's ``selector_model/`` and every
caller's maths prompts go to Llama from then on, across restarts.

These tests run the real retraining pipeline (``python -m training.pipeline`` in a subprocess,
the cheapest strategy: ``knn`` on the bundled encoder). The "code checkout" is a copy of the
shipped selector in a temporary folder (``routing.settings.DEFAULT_SELECTOR_DIR`` /
``DEFAULT_LABEL_ENCODER`` point at it), so a failing run never writes into the real checkout.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

WRONG = "llama-3.3"
TEMPLATE = "Solve: {a}x + {b} = {c}. Give x."


def maths(i: int) -> str:
    a, b = 3 + i % 7, 5 + 3 * i
    return TEMPLATE.format(a=a, b=b, c=a * (i + 2) + b)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(folder)).encode() + f.read_bytes())
    return h.hexdigest()


def rate(service, answer_id: str, rating: int, better: str | None = None, rater: str | None = "attacker") -> None:
    """Append a rating to the outcome log as ``rater`` where ratings carry one (a rater field is
    being added to them), else without one: every rating without a rater counts as one shared
    rater. Written straight to the log: the recorder's per-rater rate limit only makes an attacker
    wait, and this is what the retraining reads."""
    log = service.outcome_log
    kwargs = {"rating": rating, "better_model": better}
    if "rater" in inspect.signature(log.record_rating).parameters:
        kwargs["rater"] = rater
    log.record_rating(answer_id, **kwargs)


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A stand-in for the code checkout: the shipped selector and label encoder, copied."""
    import routing.settings as settings_module

    root = tmp_path / "checkout"
    shutil.copytree(settings_module.DEFAULT_SELECTOR_DIR, root / "selector_model")
    shutil.copy(settings_module.DEFAULT_LABEL_ENCODER, root / "label_encoder.json")
    monkeypatch.setattr(settings_module, "DEFAULT_SELECTOR_DIR", root / "selector_model")
    monkeypatch.setattr(settings_module, "DEFAULT_LABEL_ENCODER", root / "label_encoder.json")
    return root


def _service(make_service, checkout, **overrides):
    # Settings as a deployment has them: ROUTER_SELECTOR_DIR / ROUTER_LABEL_ENCODER not set, so the
    # selector folder is the checkout's (the default).
    service = make_service(allow_training=True, retrain_every=10_000, selector="auto",
                           selector_dir=checkout / "selector_model",
                           label_encoder_file=checkout / "label_encoder.json", retrain_strategy="knn",
                           **overrides)
    assert service.selector.name == "prior"   # the shipped selector: the evidence prior
    return service


def _retrain(service) -> dict:
    retrainer = service.learning.retrainer
    retrainer.every = 1  # now: every row (and rating) is in the log
    assert retrainer.maybe_start() or retrainer.running
    retrainer.wait(900)
    return retrainer.state()["runs"][-1]


@pytest.mark.slow
def test_one_rater_cannot_get_maths_prompts_sent_to_the_wrong_model(make_service, checkout):
    from routing.learning.slices import in_test_slice

    service = _service(make_service, checkout)
    before = {"selector": _digest(checkout / "selector_model"),
              "encoder": (checkout / "label_encoder.json").read_text()}
    prompts = [maths(i) for i in range(44)]
    assert sum(in_test_slice(p) for p in prompts) == 3     # as in the audit: 3 test prompts
    ids = [service.query(p)["answer_id"] for p in prompts]
    service.learning.flush()
    live_pick = service.selector.select(prompts[0]).selected_model
    assert live_pick != WRONG
    for answer_id in ids:
        rate(service, answer_id, -1, WRONG)

    run = _retrain(service)

    fresh = [maths(i) for i in range(100, 120)]            # anyone's maths prompts, after the run
    outcome = {
        "promoted": run["promoted"],
        "maths_to_wrong_model": sum(service.selector.select(p).selected_model == WRONG for p in fresh),
        "checkout_selector_changed": _digest(checkout / "selector_model") != before["selector"],
        "checkout_label_encoder_changed": (checkout / "label_encoder.json").read_text() != before["encoder"],
        "checkout_has_new_folders": sorted(p.name for p in checkout.iterdir()
                                           if p.name not in ("selector_model", "label_encoder.json")),
    }
    assert outcome == {"promoted": False, "maths_to_wrong_model": 0, "checkout_selector_changed": False,
                       "checkout_label_encoder_changed": False, "checkout_has_new_folders": []}, run
    # The gate says why, in numbers: too few paired test prompts for its power rule.
    assert "kept the live model" in run["reason"] and "the gate needs at least" in run["reason"], run
    assert service.selector.name == "prior"
    # Nor would the refused candidate itself send them there: the rater's 44 claims weigh 3 rows'
    # worth together, too little for Llama to count as observed on a single maths prompt.
    from routing.selectors.heads import HeadScorer

    refused = HeadScorer(service.settings.data_dir / "selector.rejected", fast_path="off")
    assert WRONG not in {refused.labels[i] for i in refused.predict(fresh).argmax(axis=1)}


# ---------------------------------------------------------------- the release gate's power rule
def _split(targets):
    from training.pipeline.train import Dataset

    targets = np.asarray(targets, dtype=float)
    return Dataset([f"p{i}" for i in range(len(targets))], [0] * len(targets), targets, [{}] * len(targets))


def _picks(column, n, k=3):
    return np.eye(k)[[column] * n]


def test_the_power_rule_in_numbers():
    from training.pipeline.train import required_paired

    # n = ((1.645 + 0.842) * sd / 0.10) ** 2 = 618 * sd**2, never below 30
    assert required_paired([1.0, 1.0, 1.0])["needed"] == 30            # sd 0: the floor
    assert required_paired([1.0])["needed"] == 30 and required_paired([1.0])["sd"] is None
    for sd, needed in ((0.2, 30), (0.3, 56), (0.5, 155)):
        diffs = np.r_[np.full(50, sd), np.full(50, -sd)]                # sd (ddof=1) ~ sd * 1.005
        assert abs(required_paired(diffs)["needed"] - needed) <= 2, (sd, required_paired(diffs))
    assert required_paired([0.5, -0.5] * 20, min_gain=0.2)["needed"] == 40
    assert required_paired([0.0] * 5, floor=50)["needed"] == 50


def test_the_strict_gate_does_not_promote_on_a_handful_of_prompts():
    from training.pipeline.train import decide_gate

    # Three test prompts, every one a win by a whole point: the bootstrap bound is the win itself.
    T = [[0.0, 1.0, np.nan]] * 3
    gate = decide_gate(_picks(1, 3), _picks(0, 3), _split(T), ["a", "b", "c"], "routed_quality",
                       against="live", has_live=True, strict=True)
    assert gate["promoted"] is False
    assert gate["reason"].startswith("kept the live model: 3 paired test prompts, the gate needs at least 30 ("), gate
    assert "80% power" in gate["reason"] and "never fewer than 30" in gate["reason"]
    assert gate["power"]["needed"] == 30 and gate["paired"]["n"] == 3
    # Against the rules (no learned model live) it says which selector it kept.
    gate = decide_gate(_picks(1, 3), _picks(0, 3), _split(T), ["a", "b", "c"], "routed_quality",
                       against="rules", has_live=False, strict=True)
    assert gate["reason"].startswith("kept the rule-based selector: 3 paired test prompts, the gate needs at least 30")


def test_the_strict_gate_wants_more_prompts_when_the_gains_spread_widely():
    from training.pipeline.train import decide_gate

    # 40 paired prompts, 28 wins and 12 losses of a whole point: a gain of +0.4 whose one-sided
    # 95% bound is above 0, but with sd 0.93 the rule asks for ~530 prompts to see a 0.10 gain.
    live = np.zeros(40)
    new = np.r_[np.ones(28), np.full(12, -1.0)] + 0.0
    T = np.c_[live + 0.5, live + 0.5 + new * 0.5, np.full(40, np.nan)]
    gate = decide_gate(_picks(1, 40), _picks(0, 40), _split(T), ["a", "b", "c"], "routed_quality",
                       against="live", has_live=True, strict=True)
    assert not gate["promoted"] and gate["power"]["needed"] > 100, gate
    assert f"40 paired test prompts, the gate needs at least {gate['power']['needed']}" in gate["reason"]
    # A clear, steady gain on 40 prompts passes the rule and the bound.
    steady = np.c_[np.full(40, 0.5), np.r_[np.full(30, 0.9), np.full(10, 0.6)], np.full(40, np.nan)]
    gate = decide_gate(_picks(1, 40), _picks(0, 40), _split(steady), ["a", "b", "c"], "routed_quality",
                       against="live", has_live=True, strict=True)
    assert gate["promoted"] and gate["power"]["needed"] <= 40, gate
    # A floor set higher (ROUTER_GATE_MIN_PAIRED) holds it back.
    gate = decide_gate(_picks(1, 40), _picks(0, 40), _split(steady), ["a", "b", "c"], "routed_quality",
                       against="live", has_live=True, strict=True, min_paired=60)
    assert not gate["promoted"] and "the gate needs at least 60" in gate["reason"]


# ---------------------------------------------------------------- each rater's say is capped
def _comparison(cid, prompt, scores):
    return {"id": cid, "prompt": prompt, "user_best_model": None,
            "results": {m: {"normalized": s, "error": None, "response": "r", "cost_usd": 0.0}
                        for m, s in scores.items()}}


def test_one_raters_ratings_weigh_at_most_a_small_share_of_the_rows():
    from training.pipeline.feedback import CONTRADICTED, UNKNOWN_RATER, _cells, weigh

    comps = [_comparison(f"m{i}", maths(i), {"qwen2.5": 0.3}) for i in range(44)]
    comps += [_comparison(f"o{i}", f"Write a poem about the colour {i}", {"mistral-small": 0.6}) for i in range(56)]
    ratings = {f"m{i}": [{"model": "qwen2.5", "rating": -1, "better_model": WRONG, "rater": "attacker"}]
               for i in range(44)}
    ratings["o0"] = [{"model": "mistral-small", "rating": 1, "better_model": None, "rater": "honest"}]
    ratings["o1"] = [{"model": "mistral-small", "rating": 1, "better_model": None, "rater": None}]
    ratings["o2"] = [{"model": "mistral-small", "rating": -1, "better_model": None}]   # no rater: the same 'unknown'
    weights, report = weigh(comps, ratings, share=0.05)
    # 100 rows: each rater's ratings together weigh at most max(3, 5% of 100) = 5 rows.
    assert report["attacker"] == {"prompts": 44, "weight": round(5 / 44, 4), "budget": 5.0, "contradicted": 0}
    assert sum(weights[(f"m{i}", 0)] for i in range(44)) == pytest.approx(5.0)
    assert report["honest"]["weight"] == 1.0 and report[UNKNOWN_RATER]["prompts"] == 2
    # The thumbs down on an answer the evaluator scored 0.6 contradicts it: a quarter of the weight.
    assert weights[("o2", 0)] == pytest.approx(CONTRADICTED) and report[UNKNOWN_RATER]["contradicted"] == 1
    # A rated maths answer moves by the rating's weight only; the claimed model stays unobserved.
    cells = _cells(comps[0], ratings["m0"], weights, 1.0, claims=True)
    assert cells["qwen2.5"] == pytest.approx(0.3 * (1 - 5 / 44)) and WRONG not in cells
    # An honest rater within the budget is heard in full in training, at most halfway in the gate.
    assert _cells(comps[44], ratings["o0"], weights, 1.0, claims=True)["mistral-small"] == pytest.approx(1.0)
    assert _cells(comps[44], ratings["o0"], weights, 0.5, claims=False)["mistral-small"] == pytest.approx(0.8)


def test_a_rating_against_the_evaluator_and_the_peers_counts_less():
    from training.pipeline.feedback import CONTRADICTED, _cells, weigh

    prompt = "Integrate x**2 from 0 to 3"
    comps = [_comparison("a", prompt, {"qwen2.5": 0.9}), _comparison("b", prompt, {"qwen2.5": 0.9, WRONG: 0.2})]
    comps += [_comparison(f"x{i}", f"filler {i}", {"qwen2.5": 0.5}) for i in range(200)]
    ratings = {"a": [{"model": "qwen2.5", "rating": -1, "better_model": WRONG, "rater": "attacker"},
                     {"model": "qwen2.5", "rating": 1, "better_model": None, "rater": "peer-1"}],
               "b": [{"model": "qwen2.5", "rating": 1, "better_model": None, "rater": "peer-2"}]}
    weights, report = weigh(comps, ratings, share=0.05)
    # Contradicts the evaluator (0.9 rated down; Llama scored 0.2 there) and both peers: 1/16.
    assert weights[("a", 0)] == pytest.approx(CONTRADICTED ** 2)
    assert weights[("a", 1)] == pytest.approx(1.0) and weights[("b", 0)] == pytest.approx(1.0)
    cells = _cells(comps[0], ratings["a"], weights, 1.0, claims=True)
    assert cells["qwen2.5"] > 0.9 and WRONG not in cells


def test_the_feedback_export_caps_the_rater_and_keeps_ratings_out_of_the_gate(tmp_path):
    from routing.learning.outcome_log import OutcomeLog
    from training.pipeline.feedback import write_export, read_gate

    log = OutcomeLog(tmp_path / "data")
    for i in range(44):
        log.record(_comparison(f"{i:032x}", maths(i), {"qwen2.5": 0.3}) | {"selected_model": "qwen2.5",
                                                                           "best_model": "qwen2.5"})
    kwargs = {"rater": "attacker"} if "rater" in inspect.signature(log.record_rating).parameters else {}
    for i in range(44):
        log.record_rating(f"{i:032x}", rating=-1, better_model=WRONG, **kwargs)
    out = tmp_path / "outcome_log.csv"
    result = write_export(log, out, share=0.05)
    frame = result.frame
    assert len(frame) == 44 and (WRONG not in frame or frame[WRONG].isna().all())   # no claim counts
    assert (frame["qwen2.5"] > 0.25).all()                            # 0.3 moved by 3/44 only
    gate = read_gate(out)
    assert all(set(v) == {"qwen2.5"} for v in gate["gate_scores"].values())
    assert gate["raters"] and max(r["weight"] for r in gate["raters"].values()) == pytest.approx(3 / 44, abs=1e-4)
    assert any("capped" in n for n in gate["notes"])


# ---------------------------------------------------------------- retrained selectors live under ROUTER_DATA_DIR
def test_selector_folders_keep_training_out_of_the_checkout(checkout, tmp_path):
    from routing.settings import Settings, selector_folders

    data = tmp_path / "data"
    shipped = checkout / "selector_model"
    folders = selector_folders(Settings(data_dir=data, selector_dir=shipped,
                                        label_encoder_file=checkout / "label_encoder.json"))
    assert folders.target == data / "selector" and folders.target_encoder is None
    assert folders.live == shipped and folders.live_encoder == checkout / "label_encoder.json"
    assert folders.shipped == shipped
    # Once a retrained selector was promoted there, the app reads it.
    (data / "selector").mkdir(parents=True)
    (data / "selector" / "config.json").write_text("{}")
    (data / "selector" / "label_encoder.json").write_text("{}")
    folders = selector_folders(Settings(data_dir=data, selector_dir=shipped,
                                        label_encoder_file=checkout / "label_encoder.json"))
    assert folders.live == data / "selector" and folders.live_encoder == data / "selector" / "label_encoder.json"
    # ROUTER_SELECTOR_DIR elsewhere: an explicit override, read and written as it is.
    env = {"ROUTER_DATA_DIR": str(data), "ROUTER_SELECTOR_DIR": str(tmp_path / "mine"),
           "ROUTER_LABEL_ENCODER": str(tmp_path / "mine.json")}
    folders = selector_folders(Settings.from_env(env))
    assert folders.live == folders.target == tmp_path / "mine" and folders.shipped is None
    assert folders.live_encoder == folders.target_encoder == tmp_path / "mine.json"


def test_the_retrainer_trains_into_the_data_folder_and_gates_against_the_shipped_model(make_service, checkout):
    service = _service(make_service, checkout)
    command = service.learning.retrainer._command()
    data = service.settings.data_dir
    assert command[command.index("--selector-dir") + 1] == str(data / "selector")
    assert command[command.index("--live-dir") + 1] == str(checkout / "selector_model")
    assert "--label-encoder" not in command
    assert command[command.index("--min-paired") + 1] == "30" and command[command.index("--min-gain") + 1] == "0.1"
    assert command[command.index("--rater-share") + 1] == "0.05"
    assert all(str(checkout) not in arg for i, arg in enumerate(command) if command[i - 1] != "--live-dir")


def test_the_app_loads_a_promoted_selector_from_the_data_folder(make_service, checkout):
    service = _service(make_service, checkout)
    assert service.selector.model_dir == checkout / "selector_model"
    shutil.copytree(checkout / "selector_model", service.settings.data_dir / "selector")
    # What a promotion leaves there: the selector and its label encoder (the prior itself needs none).
    shutil.copy(checkout / "label_encoder.json", service.settings.data_dir / "selector" / "label_encoder.json")
    assert service.reload_selector() == "prior"
    assert service.selector.model_dir == service.settings.data_dir / "selector"
    restarted = _service(make_service, checkout)                           # and after a restart
    assert restarted.selector.model_dir == service.settings.data_dir / "selector"


@pytest.mark.slow
def test_a_training_run_on_the_default_folder_never_writes_the_checkout(checkout, tmp_path, monkeypatch):
    """What the Training tab does when ROUTER_SELECTOR_DIR is not set: run_pipeline with the
    checkout's folder. The candidate is gated against the shipped model and promoted under
    ROUTER_DATA_DIR; rollback sets it aside (the shipped model is live again) and brings it back."""
    from routing.pool import load_pool
    from routing.settings import DEFAULT_MODELS_FILE
    from training.pipeline import release
    from training.pipeline.run import run_pipeline

    data = tmp_path / "data"
    monkeypatch.setenv("ROUTER_DATA_DIR", str(data))
    monkeypatch.delenv("ROUTER_SELECTOR_DIR", raising=False)
    monkeypatch.delenv("ROUTER_LABEL_ENCODER", raising=False)
    before = _digest(checkout)
    pool = load_pool(DEFAULT_MODELS_FILE)
    rows = [{"question": p, "scores": {m: (1.0 if m == "gemini-flash" else 0.0) for m in pool.ids}}
            for p in [maths(i) for i in range(60)] + [f"Write a poem about the colour number {i}" for i in range(60)]]
    table = tmp_path / "outcomes.json"
    table.write_text(json.dumps(rows))
    result = run_pipeline("outcomes", str(table), None, 1, 1e-4, 8, tmp_path / "work", pool=pool, strategy="knn",
                          selector_dir=checkout / "selector_model", label_encoder_file=checkout / "label_encoder.json")
    assert result["gate"]["live"] == str(checkout / "selector_model")   # compared with the shipped model
    assert result["gate"]["old_metric"] is not None
    assert result["gate"]["promoted"], result["gate"]
    assert Path(result["model_dir"]) == data / "selector" and (data / "selector" / "config.json").is_file()
    assert json.loads((data / "selector" / "label_encoder.json").read_text())["classes"] == pool.ids
    assert _digest(checkout) == before and sorted(p.name for p in checkout.iterdir()) == [
        "label_encoder.json", "selector_model"]
    # The Training tab's versions table and rollback, given the checkout's folder:
    assert release.versions(checkout / "selector_model")[0]["folder"] == str(data / "selector")
    release.rollback(checkout / "selector_model", checkout / "label_encoder.json")
    assert not (data / "selector").exists() and (release.prev_dir(data / "selector") / "config.json").is_file()
    assert release.versions(checkout / "selector_model")[0]["folder"] == str(checkout / "selector_model")
    release.rollback(checkout / "selector_model", checkout / "label_encoder.json")
    assert (data / "selector" / "config.json").is_file()
    assert _digest(checkout) == before
