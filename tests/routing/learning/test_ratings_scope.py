"""Ratings come only from whoever got the answer, are rate limited, count once; exports are per caller.

Attacks from the audit, each through the real app (``serve_app``: the gateway and Gradio on one
port) with the clients an attacker would use: the ``openai`` SDK and ``requests`` for ``/v1``,
``gradio_client`` and raw Gradio queue calls for the page's events.
"""

from __future__ import annotations

import json
import uuid

import httpx
import openai
import pytest
import requests

from routing.learning.recorder import RATINGS_PER_WINDOW, SlidingWindowLimiter
from routing.learning.outcome_log import OutcomeLog, gateway_scope
from tests.app_harness import serve_app

LIMERICK = "Write a limerick about a sleepy cat"


def frozen_limiter(service, limit=RATINGS_PER_WINDOW):
    """The rating limiter on a clock that never moves: a burst is a burst, however slow the machine."""
    service.learning.recorder.limiter = SlidingWindowLimiter(limit, 60.0, clock=lambda: 1000.0)


def test_gateway_key_b_cannot_rate_key_a_answers_and_ids_cannot_be_probed(make_service):
    service = make_service(api_keys=("key-a", "key-b"))
    with serve_app(service) as url:
        a = openai.OpenAI(base_url=url + "/v1", api_key="key-a", max_retries=0, timeout=30)
        plain = a.chat.completions.create(model="router", messages=[{"role": "user", "content": LIMERICK}])
        streamed = list(a.chat.completions.create(model="router", stream=True,
                                                  messages=[{"role": "user", "content": LIMERICK + "!"}]))[0].id
        as_b = {"Authorization": "Bearer key-b"}
        for ident in (plain.id, streamed):
            other = uuid.uuid4().hex
            stolen = httpx.post(url + "/v1/feedback", json={"id": ident, "rating": "down"}, headers=as_b, timeout=30)
            unknown = httpx.post(url + "/v1/feedback", json={"id": "chatcmpl-" + other, "rating": "down"},
                                 headers=as_b, timeout=30)
            assert stolen.status_code == 404, stolen.text          # exactly as if the id did not exist ...
            assert (stolen.json()["error"]["message"].replace(ident[len("chatcmpl-"):], "ID")
                    == unknown.json()["error"]["message"].replace(other, "ID"))
            assert stolen.json()["error"]["code"] == unknown.json()["error"]["code"] == "answer_not_found"
        assert OutcomeLog.for_settings(service.settings).ratings(history=True) == []   # ... and nothing stored
        for ident in (plain.id, streamed):                          # the owner rates them
            mine = httpx.post(url + "/v1/feedback", json={"id": ident, "rating": "up"},
                              headers={"Authorization": "Bearer key-a"}, timeout=30)
            assert mine.status_code == 200 and mine.json()["recorded"] is True
    log = OutcomeLog.for_settings(service.settings)
    ratings = log.ratings()
    assert len(ratings) == 2 and {r["rater"] for r in ratings} == {gateway_scope("Bearer key-a")}
    with open(log.path, "rb") as fh:                                # the raw key is never stored
        assert b"key-a" not in fh.read()


def test_ratings_are_rate_limited_per_rater_and_a_second_rating_replaces_the_first(make_service):
    """The audit's 200 ratings on one answer in 4 s, all accepted."""
    service = make_service()
    frozen_limiter(service)
    with serve_app(service) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=30)
        answer = client.chat.completions.create(model="router", messages=[{"role": "user", "content": LIMERICK}])
        statuses = []
        for i in range(200):
            response = httpx.post(url + "/v1/feedback", json={"id": answer.id, "rating": "up" if i % 2 else "down"},
                                  timeout=30)
            statuses.append(response.status_code)
            if response.status_code == 429:
                break
        assert statuses == [200] * RATINGS_PER_WINDOW + [429]
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["error"]["type"] == "rate_limit_error"
        assert "Too many ratings" in response.json()["error"]["message"]
    log = OutcomeLog.for_settings(service.settings)
    (effective,) = log.ratings()                                    # one rater, one answer: counted once
    assert effective["rating"] == 1 and effective["rater"] == gateway_scope("")   # the last one given (up)
    assert len(log.ratings(history=True)) == RATINGS_PER_WINDOW
    assert log.to_frame().iloc[0][next(iter(log.comparisons()[0]["results"]))] == 1.0


def _queue_call(url: str, api_name: str, data: list, session: str) -> dict:
    """One raw call of a Gradio event through the queue (what any client can do, private or not)."""
    config = requests.get(f"{url}/config", timeout=30).json()
    fn_index = next(d.get("id", i) for i, d in enumerate(config["dependencies"]) if d.get("api_name") == api_name)
    joined = requests.post(f"{url}/gradio_api/queue/join",
                           json={"data": data, "fn_index": fn_index, "session_hash": session}, timeout=30)
    assert joined.status_code == 200, joined.text
    stream = requests.get(f"{url}/gradio_api/queue/data", params={"session_hash": session}, timeout=120).text
    for line in stream.splitlines():
        if line.startswith("data:"):
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                return message
    raise AssertionError(f"no result for {api_name}: {stream[-2000:]}")


def _file_text(message: dict) -> str | None:
    """The text of the file a completed event returned (None: it returned an error)."""
    if not message.get("success"):
        return None
    found = json.dumps(message["output"]["data"])
    path = json.loads(found)
    stack = [path]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("path"), str):
                with open(item["path"], encoding="utf-8") as fh:
                    return fh.read()
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item
    raise AssertionError(f"no file in {found[:500]}")


def test_gradio_feedback_only_from_the_session_that_got_the_answer(make_service):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    service = make_service()
    with serve_app(service) as url:
        owner, stranger = Client(url, verbose=False), Client(url, verbose=False)
        answer = owner.predict(prompt=LIMERICK, api_name="/query")
        with pytest.raises(AppError, match="No answer"):
            stranger.predict(answer_id=answer["answer_id"], rating="down", api_name="/feedback")
        session = uuid.uuid4().hex                                   # a raw queue call, no client at all
        raw = _queue_call(url, "feedback", [answer["answer_id"], "down", "", ""], session)
        assert raw["success"] is False and "No answer" in json.dumps(raw)
        assert OutcomeLog.for_settings(service.settings).ratings(history=True) == []
        assert owner.predict(answer_id=answer["answer_id"], rating="up", api_name="/feedback")["recorded"] is True
        frozen_limiter(service, limit=2)
        owner.predict(answer_id=answer["answer_id"], rating="down", api_name="/feedback")
        owner.predict(answer_id=answer["answer_id"], rating="up", api_name="/feedback")
        with pytest.raises(AppError, match="Too many ratings"):
            owner.predict(answer_id=answer["answer_id"], rating="down", api_name="/feedback")
    (rating,) = OutcomeLog.for_settings(service.settings).ratings()
    assert rating["rating"] == 1 and rating["rater"]


def test_the_compare_export_gives_a_caller_only_their_own_rows(make_service):
    """The Compare tab's download (private in the UI) answered a raw queue call with everyone's rows."""
    service = make_service()
    secret = f"My secret plan {uuid.uuid4().hex}: write a limerick about it"
    with serve_app(service) as url:
        victim, attacker = uuid.uuid4().hex, uuid.uuid4().hex
        asked = _queue_call(url, "query", [secret, 0.0, [], None, 0.0], victim)
        assert asked["success"], asked
        answer_id = asked["output"]["data"][0]["answer_id"]
        service.learning.flush()           # scored, so the export (training data) holds it
        stolen = _file_text(_queue_call(url, "compare-export", [], attacker))
        assert stolen is None or (secret not in stolen and answer_id not in stolen)
        mine = _file_text(_queue_call(url, "compare-export", [], victim))
        assert mine is not None and secret in mine and answer_id in mine
