"""/metrics, /healthz and /readyz of the whole app (uvicorn), with real traffic through the gateway
(the openai SDK, streamed and not) and the Gradio API (gradio_client and Gradio's REST calls), the
local protocol server playing OpenRouter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import httpx
import openai
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from tests.app_harness import serve_app  # noqa: E402
from tests.conftest import router_settings  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
LIMERICK = "Write a limerick about a sleepy cat"              # the rules send it to llama-3.3
CODE = "Write a Python function that reverses a linked list and explain the algorithm"
METRICS_TOKEN = "metrics-token-0123456789"


def scrape(url: str, **headers: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """GET /metrics, parsed: sample name -> [(labels, value)]."""
    response = httpx.get(url + "/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), sample.value))
    return samples


def total(samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for found, v in samples.get(name, []) if all(found.get(k) == x for k, x in labels.items()))


def value(samples, name: str, **labels: str) -> float | None:
    found = [v for have, v in samples.get(name, []) if have == labels]
    assert len(found) <= 1
    return found[0] if found else None


@pytest.fixture(scope="module")
def app(server, tmp_path_factory):
    from routing.service import RouterService

    settings = router_settings(server, tmp_path_factory.mktemp("ops"), cooldown_failures=1000,
                               daily_budget_usd=5.0, shadow_budget_usd=1.0)
    service = RouterService(settings, background=False)
    with serve_app(service) as url:
        yield url, service


def test_metrics_count_the_traffic_sent(app, server):
    url, service = app
    server.reset()
    sdk = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=30)
    first = service.pool.get("llama-3.3").model_name

    # 1. Non-streamed; the routed model answers 500 once, so the next one in the ranking answers.
    server.set_model(first, status=500, fail_times=1)
    raw = sdk.chat.completions.with_raw_response.create(model="router",
                                                        messages=[{"role": "user", "content": LIMERICK}])
    assert raw.headers["x-router-selected-model"] == "llama-3.3"
    fallback_answerer = raw.headers["x-router-answered-by"]
    assert fallback_answerer != "llama-3.3" and raw.headers["x-router-fallbacks"] == "1"
    # 2. Streamed: counted when the response starts; the body is read to the end.
    with sdk.chat.completions.with_streaming_response.create(
            model="router", stream=True, messages=[{"role": "user", "content": CODE}]) as response:
        streamer = response.headers["x-router-answered-by"]
        chunks = list(response.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # 3. A refused request: an unknown model is 404.
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="gpt-17", messages=[{"role": "user", "content": "hi"}])
    # 4. /query through gradio_client, and again through Gradio's REST calls (an event id in the path).
    answer = Client(url, verbose=False).predict(prompt=LIMERICK, api_name="/query")
    assert answer["answered_by"] == "llama-3.3"
    posted = httpx.post(url + "/gradio_api/call/query", json={"data": [LIMERICK, 0.0, [], None, 0.0]}, timeout=30)
    event_id = posted.json()["event_id"]
    streamed = httpx.get(url + f"/gradio_api/call/query/{event_id}", timeout=60)
    assert "event: complete" in streamed.text
    service.learning.flush()

    m = scrape(url)
    requests = "router_http_requests_total"
    assert total(m, requests, endpoint="/v1/chat/completions", method="POST", status="200") == 2
    assert value(m, requests, endpoint="/v1/chat/completions", method="POST", status="200",
                 model=fallback_answerer) == (1 if fallback_answerer != streamer else 2)
    assert total(m, requests, endpoint="/v1/chat/completions", status="200", model=streamer) >= 1
    assert total(m, requests, endpoint="/v1/chat/completions", method="POST", status="404") == 1
    assert total(m, requests, endpoint="/gradio_api/queue/join", method="POST", status="200") == 1
    assert total(m, requests, endpoint="/gradio_api/call/{api_name}", method="POST", status="200") == 1
    assert total(m, requests, endpoint="/gradio_api/call/{api_name}/{event_id}", method="GET", status="200") == 1
    # Route templates only: no event id, session hash or other raw path in a label.
    endpoints = {labels["endpoint"] for labels, _ in m[requests]}
    assert not any(event_id in e for e in endpoints), endpoints
    assert all(e == "other" or e.startswith("/") for e in endpoints)

    answers = "router_answers_total"
    assert value(m, answers, source="gateway", model=fallback_answerer) == (1 if fallback_answerer != streamer else 2)
    assert total(m, answers, source="gateway") == 2
    assert value(m, answers, source="query", model="llama-3.3") == 2
    assert total(m, answers) == 4
    assert value(m, "router_fallbacks_total", model="llama-3.3", cause="server_error") == 1
    assert total(m, "router_fallbacks_total") == 1
    # Time to the first token: the stream's only (a whole answer has none).
    assert value(m, "router_time_to_first_token_seconds_count", model=streamer) == 1
    assert total(m, "router_time_to_first_token_seconds_count") == 1
    assert total(m, "router_answer_seconds_count") == 4
    assert total(m, "router_upstream_seconds_count") == 4         # the answering call alone, per model
    assert total(m, "router_routing_decision_seconds_count", source="gateway") == 2
    assert total(m, "router_routing_decision_seconds_count", source="query") == 2

    # Spend and its cap, as the ledgers say.
    ledger, shadow = service.ledger.summary(), service.learning.shadow.ledger.summary()
    assert ledger["spent_usd"] > 0 and ledger["paid_calls"] == 4
    assert value(m, "router_spend_usd", ledger="app") == pytest.approx(ledger["spent_usd"])
    assert value(m, "router_spend_paid_calls", ledger="app") == ledger["paid_calls"]
    assert value(m, "router_spend_limit_usd", ledger="app") == 5.0
    assert value(m, "router_spend_usd", ledger="shadow") == shadow["spent_usd"] == 0
    assert value(m, "router_spend_limit_usd", ledger="shadow") == 1.0
    assert value(m, "router_retrain_runs", outcome="promoted") == 0
    assert value(m, "router_selector_info", selector="rules") == 1


def test_health_and_readiness_and_a_broken_store(app):
    url, service = app
    assert httpx.get(url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(url + "/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready" and body["failed"] == []
    assert [c["name"] for c in body["checks"]] == ["selector", "outcome_log", "spend_ledger"]

    data = Path(service.settings.data_dir)
    log_file = data / "outcomes.sqlite3"
    kept = data.parent / "outcomes-kept"
    kept.mkdir()
    for path in data.glob("outcomes.sqlite3*"):  # the log and its -wal/-shm, put aside
        shutil.move(str(path), kept / path.name)
    log_file.mkdir()                            # a folder where the log's file should be: it cannot be opened
    try:
        broken = httpx.get(url + "/readyz")
        assert broken.status_code == 503
        body = broken.json()
        assert body["status"] == "not ready" and body["failed"] == ["outcome_log"]
        failed = next(c for c in body["checks"] if c["name"] == "outcome_log")
        assert failed["ok"] is False and "outcome log cannot be opened" in failed["error"]
        assert str(data) not in broken.text     # the details (paths) go to the log, not to the public
        assert httpx.get(url + "/healthz").status_code == 200   # alive all the same
    finally:
        log_file.rmdir()
        for path in kept.iterdir():
            shutil.move(str(path), data / path.name)
        kept.rmdir()
    assert httpx.get(url + "/readyz").status_code == 200


def test_a_data_folder_that_is_a_file_fails_both_stores(make_service, tmp_path):
    service = make_service()
    data = Path(service.settings.data_dir)
    with serve_app(service) as url:
        assert httpx.get(url + "/readyz").status_code == 200
        shutil.rmtree(data)
        data.write_text("not a folder")         # ROUTER_DATA_DIR now names a file
        body = httpx.get(url + "/readyz").json()
        assert body["failed"] == ["outcome_log", "spend_ledger"]
        # A service without a selector (the service loads one before it serves today, so this stands
        # for a selector still loading or lost in a reload) is not ready either.
        selector, service.selector = service.selector, None
        try:
            body = httpx.get(url + "/readyz").json()
            assert body["failed"] == ["selector", "outcome_log", "spend_ledger"]
        finally:
            service.selector = selector


def test_the_metrics_token_guards_metrics_only(make_service):
    service = make_service(metrics_token=METRICS_TOKEN)
    with serve_app(service) as url:
        refused = httpx.get(url + "/metrics")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert "router_" not in refused.text
        wrong = {"Authorization": "Bearer wrong-token-0123456789"}
        assert httpx.get(url + "/metrics", headers=wrong).status_code == 401
        assert httpx.get(url + "/metrics", headers={"Authorization": METRICS_TOKEN}).status_code == 401  # no scheme
        samples = scrape(url, Authorization=f"Bearer {METRICS_TOKEN}")
        # the refused scrapes were counted, with their status
        assert total(samples, "router_http_requests_total", endpoint="/metrics", status="401") == 3
        assert httpx.get(url + "/healthz").status_code == 200
        assert httpx.get(url + "/readyz").status_code == 200


def test_the_metrics_token_setting():
    from routing.settings import Settings

    assert Settings.from_env({"ROUTER_METRICS_TOKEN": f"  {METRICS_TOKEN} "}).metrics_token == METRICS_TOKEN
    assert Settings.from_env({}).metrics_token is None


def test_each_service_has_a_registry_of_its_own(make_service):
    from routing.router import QueryResult

    one, two = make_service(), make_service()
    result = QueryResult(prompt="p", selected_model="qwen2.5", response="r", selection_confidence=1.0, reasoning="",
                         answered_by="qwen2.5", fallbacks=[{"model": "llama-3.3", "status": 429, "error": "x"}],
                         usage={}, cost_usd=None, latency_ms=12.0, scores={})
    one.learning.metrics.observe_answer(result, source="query")
    text = one.learning.metrics.exposition().decode()
    assert 'router_answers_total{model="qwen2.5",source="query"} 1.0' in text
    assert 'router_fallbacks_total{cause="rate_limited",model="llama-3.3"} 1.0' in text
    assert "router_answers_total{" not in two.learning.metrics.exposition().decode()


WORKER = textwrap.dedent("""
    import sys
    from routing.metrics import RouterMetrics
    metrics = RouterMetrics()
    for _ in range(int(sys.argv[1])):
        metrics.observe_request("/v1/chat/completions", "POST", 200, "qwen2.5")
    if sys.argv[2] == "show":
        sys.stdout.write(metrics.exposition().decode())
""")


def test_multiprocess_mode_sums_the_workers(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR, what each worker process counted is summed by whichever answers."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "PYTHONPATH": str(REPO)}

    def worker(count: int, show: str) -> str:
        done = subprocess.run([sys.executable, "-c", WORKER, str(count), show], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    worker(2, "")
    worker(3, "")
    text = worker(1, "show")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    key = ("router_http_requests_total", (("endpoint", "/v1/chat/completions"), ("method", "POST"),
                                          ("model", "qwen2.5"), ("status", "200")))
    assert samples[key] == 6
