"""Provider text is untrusted: HTML in it is shown as text, and API keys never leave the app.

* Markdown the UI builds from provider errors, pool display names and ids, batch errors or uploaded
  file names renders (CommonMark, as the browser's renderer does) without any HTML tag or image
  coming from that text.
* The values of OPENROUTER_API_KEY and of every pool entry's ``api_key_env`` variable are replaced
  by ``[redacted NAME]`` in errors, answers, fallbacks, API results, the outcome log and logs,
  also when a provider echoes the Authorization header back in its error body.
"""

from __future__ import annotations

import html as html_lib
import io
import json
import logging
import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from routing.errors import ProviderError, UserError
from routing.pool import ModelPool, ModelSpec
from tests.conftest import router_settings

REPO = Path(__file__).resolve().parents[3]
PIXEL = "http://127.0.0.1:9/pixel.png"
HOSTILE = f'<img src="{PIXEL}"> ![p]({PIXEL}) <script>alert(1)</script> **bold** `tick` [a](javascript:x) # h'
OPENROUTER_KEY = "sk-or-v1-" + "0123456789abcdef" * 4
POOL_KEY = "pool-key-" + "fedcba9876543210" * 2
POOL_KEY_ENV = "ROUTER_TEST_POOL_KEY"


# ---------------------------------------------------------------------- rendering helpers


def render(markdown_text: str) -> str:
    """The HTML a CommonMark renderer makes of ``markdown_text`` (Gradio's front end uses marked)."""
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable("table").render(markdown_text)


def assert_inert(markdown_text: str, *visible: str) -> None:
    """No tag in the rendered HTML comes from untrusted text; ``visible`` strings show literally."""
    html = render(markdown_text)
    assert not re.search(r"<(img|script|a|iframe)\b", html, re.I), html
    shown = html_lib.unescape(re.sub(r"<[^>]+>", "", html))
    for v in visible:
        assert v in shown, (v, shown)


def hostile_pool() -> ModelPool:
    return ModelPool([
        ModelSpec(id="evil", display_name=f"Evil {HOSTILE}", provider="openrouter", model_name="x/evil",
                  categories=("chat",)),
        ModelSpec(id="good`<b>x</b>", display_name="Good", provider="openrouter", model_name="x/good",
                  input_price_per_m=1.0, categories=("coding",)),
    ])


def test_helpers_escape_html_and_markdown_but_keep_the_text():
    from routing.safety.untrusted import escape_html, md_code, md_text

    assert escape_html('<img src="x"> & co') == '&lt;img src="x"&gt; &amp; co'
    assert_inert(md_text(HOSTILE), '<img src="http://127.0.0.1:9/pixel.png">', "<script>alert(1)</script>",
                 "**bold**", "`tick`", f"![p]({PIXEL})", "# h")
    assert_inert("# " + md_text("1. not a list\n# nor a heading"), "1. not a list # nor a heading")
    for hostile in ("`a`", "``", "x`` <img src=y>", "<img src=y>", "` <img>`"):
        code = md_code(hostile)
        html = render(code)
        assert "<code>" in html and "<img" not in html, (hostile, html)
    assert md_text(None) == "" and md_text("plain words, ok") == "plain words, ok"


def test_ask_decision_markdown_shows_hostile_names_and_errors_as_text():
    from ui.ask_tab import decision_markdown

    pool = hostile_pool()
    sel = SimpleNamespace(selected_model="evil", confidence=0.5, reasoning=f"Evil {HOSTILE} scores 50%.")
    out = decision_markdown(sel, pool, "extra is markdown the tab built itself")
    assert_inert(out, f"Evil {HOSTILE}", "evil")
    sel = SimpleNamespace(selected_model="good`<b>x</b>", confidence=0.5, reasoning="fine")
    assert_inert(decision_markdown(sel, pool), "good`<b>x</b>")


def test_answers_render_their_markdown_but_no_html_and_no_images():
    from routing.safety.untrusted import md_answer

    answer = (f"# Title\n\n**bold** and a list:\n\n- one\n- two\n\n{HOSTILE}\n\n"
              "```html\n<img src=\"kept-in-code.png\">\n```\n\nAT&T uses `a<b` and <https://example.com>")
    html = render(md_answer(answer))
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html and "<li>one</li>" in html
    assert not re.search(r"<(img|script|iframe)\b", html, re.I), html
    assert '<code class="language-html">&lt;img src=&quot;kept-in-code.png&quot;&gt;' in html  # code shows as code
    assert "<code>a&lt;b</code>" in html and "AT&amp;T" in html
    shown = html_lib.unescape(re.sub(r"<[^>]+>", "", html))
    assert f'<img src="{PIXEL}">' in shown and "<script>alert(1)</script>" in shown  # the text, literally
    assert "image: p" in shown and "<https://example.com>" in shown
    assert md_answer(None) == "" and md_answer("unclosed ```\n<b>") == "unclosed ```\n&lt;b>"


def test_ask_status_lines_escape_provider_errors():
    from routing.chat.turns import failure_line, fallback_line

    assert_inert(failure_line("evil", f"400 Bad Request - provider says: {HOSTILE}"), PIXEL, "evil")
    assert_inert(fallback_line({"model": "evil", "error": HOSTILE, "skipped": True}), "skipped", PIXEL)
    assert_inert(fallback_line({"model": "evil", "error": HOSTILE}), "failed", PIXEL)


def test_compare_and_batch_markdown_escape_names_errors_and_notes():
    from routing.compare.run import Comparison, ModelOutcome
    from ui import batch_tab, compare_tab

    pool = hostile_pool()
    evil = ModelOutcome("evil", f"Evil {HOSTILE}")
    evil.response, evil.normalized, evil.total = "an answer", 0.9, 9.0
    bad = ModelOutcome("good`<b>x</b>", "Good")
    bad.error = HOSTILE
    comparison = Comparison(id="c1", prompt="p", selected_model="evil", selection=None,
                            results={"evil": evil, "good`<b>x</b>": bad}, judge_model="evil",
                            warnings=[f"warned: {HOSTILE}"])
    comparison.best_model = "evil"
    comparison.judge_details = {"note": HOSTILE}
    assert_inert(compare_tab.summary_markdown(comparison, pool), "Winner by the evaluator", "Evil")
    assert_inert(compare_tab.column_stats(bad), "failed")
    assert_inert(compare_tab.column_header(pool.get("evil")), "Evil", "evil")

    summary = {"rows": 2, "ok": 1, "failed": 1, "traffic_share": {"evil": 0.5, "good`<b>x</b>": 0.5},
               "cost_estimate_usd": {"routed": 0.1, "all_priciest": 0.2, "priciest_model": "evil",
                                     "all_cheapest": 0.05, "cheapest_model": "good`<b>x</b>",
                                     "rows_with_estimated_tokens": 0},
               "errors": [{"row": 0, "error": f"500 from provider: {HOSTILE}"}]}
    assert_inert(batch_tab.summary_markdown(summary, pool), "Done: 2 rows", "row 1", PIXEL)


def test_selection_summary_escapes_the_uploaded_file_name():
    from ui.selection_tab import summary_markdown

    result = {"samples": 1, "source": f"{HOSTILE}.csv", "disagreements": [],
              "selectors": {"rules": {"accuracy": 1.0, "correct": 1, "samples": 1,
                                      "latency_ms": {"median": 0.1, "p95": 0.2}}}}
    assert_inert(summary_markdown(result), "accuracy", PIXEL)


def test_user_error_toasts_show_html_as_text():
    import gradio as gr

    from ui.common import user_errors

    @user_errors
    def fails():
        raise UserError(f"No model could answer (evil: {HOSTILE})")

    with pytest.raises(gr.Error) as info:
        fails()
    assert "<img" not in info.value.message and "&lt;img" in info.value.message


# ---------------------------------------------------------------------- redaction helpers


@pytest.fixture
def keys(monkeypatch):
    """OPENROUTER_API_KEY and a pool key set in the environment, registered as secrets."""
    from routing.safety.redact import register_secret_env

    monkeypatch.setenv("OPENROUTER_API_KEY", OPENROUTER_KEY)
    monkeypatch.setenv(POOL_KEY_ENV, POOL_KEY)
    register_secret_env(POOL_KEY_ENV)
    return OPENROUTER_KEY, POOL_KEY


def test_redact_replaces_every_key_value_with_its_name(keys, monkeypatch):
    from routing.safety.redact import redact, redact_data, register_secret

    text = f"Authorization: Bearer {OPENROUTER_KEY}; x-key {POOL_KEY}; again {OPENROUTER_KEY}"
    assert redact(text) == ("Authorization: Bearer [redacted OPENROUTER_API_KEY]; x-key "
                            f"[redacted {POOL_KEY_ENV}]; again [redacted OPENROUTER_API_KEY]")
    assert redact("nothing secret here") == "nothing secret here"
    # a key cut by truncation (provider bodies are clipped) does not leak its first characters
    assert OPENROUTER_KEY[:30] not in redact(f"provider says: Bearer {OPENROUTER_KEY[:30]}")
    data = redact_data({"a": [f"k={POOL_KEY}", (1, OPENROUTER_KEY)], "n": 3, "none": None})
    assert data == {"a": [f"k=[redacted {POOL_KEY_ENV}]", (1, "[redacted OPENROUTER_API_KEY]")], "n": 3,
                    "none": None}
    pd = pytest.importorskip("pandas")
    preview = pd.read_csv(io.StringIO(f"error,n\nBearer {OPENROUTER_KEY},1\n"), dtype=str)
    assert redact_data(preview).to_dict("list") == {"error": ["Bearer [redacted OPENROUTER_API_KEY]"], "n": ["1"]}
    # short values are never treated as secrets (they would mangle ordinary text)
    monkeypatch.setenv("OPENROUTER_API_KEY", "abc")
    register_secret("good", "SHORT_KEY")
    assert redact("abc good goodness") == "abc good goodness"


def test_stream_safe_holds_back_a_key_that_is_still_arriving(keys):
    from routing.safety.redact import stream_safe

    answer = f"The header was Bearer {OPENROUTER_KEY} and that is all"
    shown = [stream_safe(answer[:i]) for i in range(len(answer) + 1)]
    assert all(OPENROUTER_KEY[:12] not in s for s in shown)
    assert shown[-1] == "The header was Bearer [redacted OPENROUTER_API_KEY] and that is all"


def test_provider_errors_are_redacted_when_made(keys):
    exc = ProviderError(f"401 Unauthorized - provider says: got 'Bearer {OPENROUTER_KEY}'", status=401)
    assert OPENROUTER_KEY not in exc.message and OPENROUTER_KEY not in str(exc)
    assert "[redacted OPENROUTER_API_KEY]" in exc.message


def test_logs_never_carry_a_key(keys, caplog):
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("routing.some.module")
    log.warning("provider said %s", f"Bearer {OPENROUTER_KEY}")
    log.info(f"pool key {POOL_KEY} in the message itself")
    try:
        raise RuntimeError(f"boom with {POOL_KEY}")
    except RuntimeError:
        log.exception("failed")
    assert OPENROUTER_KEY not in caplog.text and POOL_KEY not in caplog.text
    assert all(OPENROUTER_KEY not in r.getMessage() and POOL_KEY not in r.getMessage() for r in caplog.records)
    assert "[redacted OPENROUTER_API_KEY]" in caplog.text and f"[redacted {POOL_KEY_ENV}]" in caplog.text


# ---------------------------------------------------------------------- end to end through the API


def _pool_file(tmp_path: Path, base_url: str) -> Path:
    """The shipped pool, with deepseek-r1 served by an openai_compatible endpoint needing POOL_KEY_ENV."""
    data = json.loads((REPO / "assets" / "models.json").read_text(encoding="utf-8"))
    for m in data["models"]:
        if m["id"] == "deepseek-r1":
            m.update(provider="openai_compatible", base_url=base_url, api_key_env=POOL_KEY_ENV)
    path = tmp_path / "models.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def echoing_app(protocol_server, tmp_path, monkeypatch):
    """The app with OpenRouter (Settings key) and one pool endpoint (env key) whose errors echo the header."""
    from gradio_client import Client

    from routing.service import RouterService
    from tests.app_harness import launch_app

    monkeypatch.setenv(POOL_KEY_ENV, POOL_KEY)
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    settings = router_settings(protocol_server, tmp_path, openrouter_api_key=OPENROUTER_KEY, max_retries=1,
                               models_file=_pool_file(tmp_path, protocol_server.base_url))
    service = RouterService(settings, background=False)
    prompt = "Write a Python function that reverses a string"
    ranking = service.router.route(prompt).ranking
    names = [service.pool.get(m).model_name for m in ranking]
    assert ranking[0] == "deepseek-r1"
    protocol_server.set_model(names[0], status=401, error_message=f"bad header: Authorization: Bearer {POOL_KEY}")
    protocol_server.set_model(names[1], status=503,
                              error_message=f"upstream refused Authorization: Bearer {OPENROUTER_KEY}")
    protocol_server.set_model("*", reply=f"Echo: {OPENROUTER_KEY} and {POOL_KEY} - done")
    with launch_app(service) as url:
        yield SimpleNamespace(client=Client(url, verbose=False), service=service, prompt=prompt, ranking=ranking,
                              names=names, server=protocol_server)


def _assert_no_key(blob: str) -> None:
    assert OPENROUTER_KEY not in blob, "OPENROUTER_API_KEY leaked"
    assert POOL_KEY not in blob, f"{POOL_KEY_ENV} leaked"
    assert OPENROUTER_KEY[:16] not in blob and POOL_KEY[:16] not in blob, "a key's start leaked"


def test_echoed_keys_appear_nowhere_in_query_results_fallbacks_or_logs(echoing_app, caplog):
    from gradio_client.exceptions import AppError

    caplog.set_level(logging.DEBUG)
    app = echoing_app
    result = app.client.predict(prompt=app.prompt, api_name="/query")
    # the keys really were sent, and really were echoed back
    sent = {r.authorization for r in app.server.chat_requests()}
    assert f"Bearer {POOL_KEY}" in sent and f"Bearer {OPENROUTER_KEY}" in sent
    assert [f["model"] for f in result["fallbacks"]] == app.ranking[:2]
    assert result["answered_by"] == app.ranking[2]
    _assert_no_key(json.dumps(result))
    assert f"[redacted {POOL_KEY_ENV}]" in result["fallbacks"][0]["error"]
    assert "[redacted OPENROUTER_API_KEY]" in result["fallbacks"][1]["error"]
    assert result["response"] == f"Echo: [redacted OPENROUTER_API_KEY] and [redacted {POOL_KEY_ENV}] - done"

    # one model, no fallback: its failure (a refused key) comes back as the error message
    with pytest.raises(AppError, match="401 Unauthorized") as info:
        app.client.predict(prompt="hello", model=app.ranking[0], api_name="/query-specific")
    _assert_no_key(str(info.value))

    health = app.client.predict(api_name="/health")
    _assert_no_key(json.dumps(health))
    assert any("[redacted" in (row.get("last_error") or "") for row in health)
    _assert_no_key(caplog.text)
    assert "retrying" in caplog.text  # the 503 was retried and logged, redacted


def test_echoed_keys_are_not_stored_in_the_outcome_log(echoing_app, caplog):
    caplog.set_level(logging.DEBUG)
    app = echoing_app
    result = app.client.predict(prompt=app.prompt, api_name="/query-compare")
    _assert_no_key(json.dumps(result))
    assert result["results"][app.ranking[0]]["error"] and result["results"][app.ranking[2]]["response"]
    path = Path(app.service.settings.data_dir) / "outcomes.sqlite3"
    with sqlite3.connect(path) as conn:
        rows = [r for t in ("comparisons", "results", "feedback") for r in conn.execute(f"SELECT * FROM {t}")]
    assert len(rows) == 1 + len(app.ranking)
    _assert_no_key(json.dumps(rows))
    raw = b"".join(p.read_bytes() for p in path.parent.glob("outcomes.sqlite3*"))
    assert OPENROUTER_KEY.encode() not in raw and POOL_KEY.encode() not in raw
    assert b"[redacted OPENROUTER_API_KEY]" in raw
    _assert_no_key(caplog.text)


def test_answers_echoing_a_key_are_redacted_where_the_router_makes_them(protocol_server, tmp_path, monkeypatch):
    """The router's own results (what batch files, compare and the judge are built from) carry no key."""
    from routing.safety.redact import register_secret
    from routing.service import RouterService

    settings = router_settings(protocol_server, tmp_path, openrouter_api_key=OPENROUTER_KEY)
    service = RouterService(settings, background=False)
    register_secret(OPENROUTER_KEY, "OPENROUTER_API_KEY")
    protocol_server.set_model("*", reply=f"Here is your key: {OPENROUTER_KEY} - keep it safe")
    routed = service.router.ask("Say hello")
    direct = service.router.ask_model(service.pool.ids[0], "Say hello")
    for text in (routed.response, direct.text):
        assert OPENROUTER_KEY not in text
        assert "[redacted OPENROUTER_API_KEY]" in text
