"""HTTP client for OpenAI-compatible chat-completions endpoints (OpenRouter, Ollama, vLLM...).

One job: turn a chat request into a :class:`~routing.providers.base.ChatResult` (or a stream of
:class:`~routing.providers.base.StreamChunk`), retrying transient failures with tenacity and
turning every failure into a :class:`~routing.errors.ProviderError` whose message a person can act
on ("401 Unauthorized from openrouter.ai: check OPENROUTER_API_KEY").

Retry policy (in this client): HTTP 408/429/5xx, connection errors and timeouts are retried up to
``max_retries`` times after the first attempt, with exponential backoff plus jitter capped at
``backoff_max``; a ``Retry-After`` header (seconds or HTTP-date) replaces the backoff when present.
If ``Retry-After`` asks for more than ``max_retry_after`` seconds the client gives up at once with
a retryable error carrying ``retry_after``. 400/401/402/403/404/422 are never retried.
``ProviderError.retryable`` tells the caller whether *another attempt or another model* may work
(True for 429/5xx/timeouts/connection errors/malformed answers).
"""

from __future__ import annotations

import email.utils
import http
import json
import logging
import math
import time
from contextlib import closing
from datetime import timezone
from typing import Any, Callable, Iterator
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity import wait_exponential_jitter
from urllib3.exceptions import ReadTimeoutError

from routing.errors import ProviderError
from routing.providers.base import ChatResult, Messages, StreamChunk

__all__ = ["OpenAICompatibleClient", "estimate_cost", "parse_retry_after", "PROVIDER_NAME"]

log = logging.getLogger(__name__)

PROVIDER_NAME = "openai_compatible"

#: HTTP statuses this client retries by itself (another attempt may succeed).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

PriceLookup = Callable[[str], "tuple[float, float] | None"]

_STATUS_EXPLANATIONS = {
    400: "the request was rejected",
    403: "the key may not use model {model}, or the prompt was refused by moderation",
    404: "no model {model!r} there, or the base URL {base_url} is wrong",
    408: "the provider gave up waiting",
    413: "the prompt is too long",
    422: "the request parameters were not accepted",
    502: "the upstream provider of {model} failed",
    503: "no provider can serve {model} right now",
}


def estimate_cost(usage: dict, in_price_per_m: float, out_price_per_m: float) -> float:
    """Dollar cost of ``usage`` (``prompt_tokens``/``completion_tokens``) at $/million-token prices."""
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    return (prompt * in_price_per_m + completion * out_price_per_m) / 1_000_000


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        now_ts = time.time() if now is None else now
        seconds = when.timestamp() - now_ts
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:g} s" if seconds < 10 else f"{seconds:.0f} s"


def _usage_ints(raw: Any) -> dict[str, int]:
    """prompt/completion/total token counts from a provider ``usage`` object (ints only)."""
    if not isinstance(raw, dict):
        return {}
    usage = {k: int(raw[k]) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
             if isinstance(raw.get(k), (int, float)) and not isinstance(raw.get(k), bool)}
    if "total_tokens" not in usage and ("prompt_tokens" in usage or "completion_tokens" in usage):
        usage["total_tokens"] = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
    return usage


def _content_text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict)
                       and isinstance(p.get("text"), str))
    return ""


def _reasoning_text(message: dict) -> str:
    """Reasoning a model exposes beside its answer (OpenRouter ``reasoning``, DeepSeek ``reasoning_content``)."""
    for key in ("reasoning", "reasoning_content"):
        if isinstance(message.get(key), str):
            return message[key]
    return ""


def _is_read_timeout(exc: BaseException) -> bool:
    """requests reports a read timeout while reading the body as a ConnectionError: look inside."""
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    return any(isinstance(a, ReadTimeoutError) for a in getattr(exc, "args", ()))


class OpenAICompatibleClient:
    """Chat client for one OpenAI-compatible base URL (e.g. ``https://openrouter.ai/api/v1``).

    ``max_retries`` counts retries after the first attempt (``max_retries=0``: one attempt).
    ``prices(model)`` returns (input, output) USD per million tokens, used to estimate the cost
    when the response does not carry ``usage.cost``. ``key_env`` names the setting that holds the
    key, so that a 401 says what to fix. Safe to share between threads.
    """

    provider_name = PROVIDER_NAME

    def __init__(self, base_url: str, api_key: str | None, *, connect_timeout: float = 5.0,
                 read_timeout: float = 60.0, max_retries: int = 3, backoff_base: float = 0.5,
                 backoff_max: float = 8.0, extra_headers: dict | None = None,
                 prices: PriceLookup | None = None, max_retry_after: float = 30.0,
                 key_env: str | None = None, ask_usage_cost: bool = True):
        if not base_url:
            raise ValueError("base_url is empty")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or None
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.max_retry_after = float(max_retry_after)
        self.extra_headers = dict(extra_headers or {})
        self.prices = prices
        self.host = urlparse(self.base_url).netloc or self.base_url
        self.key_env = key_env
        self.ask_usage_cost = ask_usage_cost  # OpenRouter's `usage: {include: true}`; off for other servers
        self._backoff = wait_exponential_jitter(initial=self.backoff_base, max=self.backoff_max,
                                                jitter=self.backoff_base)
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    # ------------------------------------------------------------------ public API

    def chat(self, model: str, messages: Messages, *, max_tokens: int | None = None,
             temperature: float | None = None) -> ChatResult:
        """Ask ``model`` and wait for the whole answer. Raises ProviderError on failure."""
        payload = self._payload(model, messages, max_tokens, temperature, stream=False)
        start = time.monotonic()
        attempts = 0

        def attempt() -> dict:
            nonlocal attempts
            attempts += 1
            return self._post_completion(model, payload)

        data = self._with_retries(attempt, model, lambda: attempts)
        latency_ms = (time.monotonic() - start) * 1000
        choice = data["choices"][0]
        message = choice.get("message") or {}
        usage_raw = data.get("usage")
        data["_client"] = {"attempts": attempts}
        return ChatResult(
            text=_content_text(message.get("content")),
            model=model,
            provider=PROVIDER_NAME,
            usage=_usage_ints(usage_raw),
            cost_usd=self._cost(model, usage_raw),
            latency_ms=latency_ms,
            finish_reason=choice.get("finish_reason"),
            raw=data,
        )

    def stream_chat(self, model: str, messages: Messages, *, max_tokens: int | None = None,
                    temperature: float | None = None) -> Iterator[StreamChunk]:
        """Ask ``model`` and yield the answer as it arrives.

        Yields ``StreamChunk(delta=...)`` per piece of answer text, then one
        ``StreamChunk(done=True, result=ChatResult(...))``. Failures before the first piece of
        text are retried like :meth:`chat`; failures after it raise ProviderError at once.
        """
        payload = self._payload(model, messages, max_tokens, temperature, stream=True)
        start = time.monotonic()
        attempts = 0

        def attempt() -> tuple[requests.Response, Iterator[str], list[dict]]:
            nonlocal attempts
            attempts += 1
            return self._open_stream(model, payload)

        response, events, pending = self._with_retries(attempt, model, lambda: attempts)
        state = _StreamState()
        first_token_ms: float | None = None
        with closing(response):
            for event in pending:
                delta = state.feed(event, self, model)
                if delta:
                    first_token_ms = first_token_ms or (time.monotonic() - start) * 1000
                    yield StreamChunk(delta=delta)
            for data in events:
                if data == "[DONE]":
                    state.done = True
                    break
                delta = state.feed(self._parse_event(data, model), self, model)
                if delta:
                    first_token_ms = first_token_ms or (time.monotonic() - start) * 1000
                    yield StreamChunk(delta=delta)
        if not state.done and state.finish_reason is None:
            raise ProviderError(
                f"the stream from {self.host} (model {model}) ended before the answer was complete",
                retryable=True, model=model)
        latency_ms = (time.monotonic() - start) * 1000
        text = "".join(state.text)
        raw = {
            "id": state.id, "model": state.model or model, "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": state.finish_reason,
                         "message": {"role": "assistant", "content": text,
                                     "reasoning": "".join(state.reasoning) or None}}],
            "usage": state.usage,
            "_client": {"attempts": attempts, "first_token_ms": first_token_ms},
        }
        yield StreamChunk(done=True, result=ChatResult(
            text=text, model=model, provider=PROVIDER_NAME, usage=_usage_ints(state.usage),
            cost_usd=self._cost(model, state.usage), latency_ms=latency_ms,
            finish_reason=state.finish_reason, raw=raw))

    def list_models(self, timeout: float = 3.0) -> list[dict]:
        """The endpoint's model listing (``GET /models`` -> ``data``), no retries."""
        body = self._json_body(self._get("/models", timeout, what="the model list"), None, ok_below=400)
        data = body.get("data") if isinstance(body, dict) else body
        if not isinstance(data, list):
            raise ProviderError(f"malformed model list from {self.host}: no 'data' list",
                                retryable=True)
        return [m for m in data if isinstance(m, dict)]

    def probe(self, timeout: float = 3.0) -> dict:
        """Cheap reachability check that spends no tokens.

        ``GET /models``; when a key is set, also ``GET /key`` (OpenRouter's key check; a 404 there
        means the server has no such endpoint and is fine). Returns
        ``{"ok": bool, "latency_ms": float, "error": str | None}``.
        """
        start = time.monotonic()
        try:
            self.list_models(timeout=timeout)
            latency_ms = (time.monotonic() - start) * 1000
            if self.api_key:
                response = self._get("/key", timeout, what="the key check")
                with closing(response):
                    if response.status_code >= 400 and response.status_code != 404:
                        raise self._http_error(response, None)
        except ProviderError as exc:
            return {"ok": False, "latency_ms": (time.monotonic() - start) * 1000,
                    "error": exc.message}
        return {"ok": True, "latency_ms": latency_ms, "error": None}

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    # ------------------------------------------------------------------ requests

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", **self.extra_headers}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _payload(self, model: str, messages: Messages, max_tokens: int | None,
                 temperature: float | None, *, stream: bool) -> dict:
        payload: dict[str, Any] = {"model": model, "messages": list(messages)}
        if max_tokens is not None:
            payload["max_tokens"] = int(max_tokens)
        if temperature is not None:
            payload["temperature"] = float(temperature)
        if self.ask_usage_cost:
            payload["usage"] = {"include": True}       # OpenRouter: return usage.cost
        if stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}   # OpenAI/Ollama: final usage
        return payload

    def _post(self, model: str, payload: dict, *, stream: bool) -> requests.Response:
        try:
            return self._session.post(f"{self.base_url}/chat/completions", json=payload,
                                      headers=self._headers(), stream=stream,
                                      timeout=(self.connect_timeout, self.read_timeout))
        except requests.exceptions.RequestException as exc:
            raise self._transport_error(exc, model) from None

    def _get(self, path: str, timeout: float, *, what: str) -> requests.Response:
        try:
            return self._session.get(f"{self.base_url}{path}", headers=self._headers(),
                                     timeout=timeout)
        except requests.exceptions.RequestException as exc:
            raise self._transport_error(exc, None, timeout=timeout, what=what) from None

    def _json_body(self, response: requests.Response, model: str | None, *, ok_below: int) -> Any:
        """The parsed JSON of a response (closed after), or the ProviderError its status/body calls for."""
        with closing(response):
            if response.status_code >= ok_below:
                raise self._http_error(response, model)
            try:
                return response.json()
            except ValueError:
                raise self._malformed(response, model) from None

    def _post_completion(self, model: str, payload: dict) -> dict:
        """One non-streaming attempt: the parsed, validated response body."""
        response = self._post(model, payload, stream=False)
        data = self._json_body(response, model, ok_below=300)
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise self._body_error(data["error"], model, response.status_code)
        if (not isinstance(data, dict) or not isinstance(data.get("choices"), list)
                or not data["choices"] or not isinstance(data["choices"][0], dict)):
            raise ProviderError(f"malformed answer from {self.host} (model {model}): no choices",
                                status=response.status_code, retryable=True, model=model)
        return data

    def _open_stream(self, model: str, payload: dict
                     ) -> tuple[requests.Response, Iterator[str], list[dict]]:
        """One streaming attempt, read up to the first piece of answer text.

        Returns the open response, the iterator over its remaining SSE data payloads, and the
        parsed events already read (so that everything up to the first text can be retried).
        """
        response = self._post(model, payload, stream=True)
        try:
            if response.status_code >= 300:
                raise self._http_error(response, model)
            if "json" in response.headers.get("Content-Type", ""):
                return response, iter(()), self._json_as_events(response, model)
            events = self._iter_sse(response, model)
            pending: list[dict] = []
            for data in events:
                if data == "[DONE]":
                    return response, iter(["[DONE]"]), pending
                event = self._parse_event(data, model)
                if isinstance(event.get("error"), dict):
                    raise self._body_error(event["error"], model, None, mid_stream=True)
                pending.append(event)
                if any(_content_text((c.get("delta") or {}).get("content"))
                       for c in event.get("choices") or [] if isinstance(c, dict)):
                    break
            return response, events, pending
        except BaseException:
            response.close()
            raise

    def _json_as_events(self, response: requests.Response, model: str) -> list[dict]:
        """A server that ignored ``stream: true`` and sent one JSON answer: as stream events."""
        try:
            data = response.json()
        except ValueError:
            raise self._malformed(response, model) from None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise self._body_error(data["error"], model, response.status_code)
        try:
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ProviderError(f"malformed answer from {self.host} (model {model}): no choices",
                                retryable=True, model=model) from None
        return [{"id": data.get("id"), "model": data.get("model"), "usage": data.get("usage"),
                 "choices": [{"delta": message, "finish_reason": choice.get("finish_reason")
                              or "stop"}]}]

    def _iter_sse(self, response: requests.Response, model: str) -> Iterator[str]:
        """Data payloads of a server-sent-event stream (comments and other fields skipped)."""
        buffer: list[str] = []
        try:
            for raw_line in response.iter_lines(chunk_size=None):
                line = raw_line.decode("utf-8", errors="replace")
                if not line:
                    if buffer:
                        yield "\n".join(buffer)
                        buffer = []
                    continue
                if line.startswith(":"):          # comment, e.g. ": OPENROUTER PROCESSING"
                    continue
                field, _, value = line.partition(":")
                if field == "data":
                    buffer.append(value[1:] if value.startswith(" ") else value)
        except requests.exceptions.RequestException as exc:
            raise self._transport_error(exc, model, mid_stream=True) from None
        if buffer:
            yield "\n".join(buffer)

    def _parse_event(self, data: str, model: str) -> dict:
        try:
            event = json.loads(data)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            raise ProviderError(
                f"malformed JSON from {self.host} in the stream for model {model}: {data[:80]!r}",
                retryable=True, model=model)
        return event

    # ------------------------------------------------------------------ retries

    def _with_retries(self, fn: Callable[[], Any], model: str, attempts: Callable[[], int]) -> Any:
        retrying = Retrying(
            retry=retry_if_exception(self._should_retry),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            before_sleep=lambda rs: log.warning(
                "retrying %s in %.1f s after: %s", model,
                rs.next_action.sleep if rs.next_action else 0, rs.outcome.exception()),
            reraise=True,
        )
        try:
            return retrying(fn)
        except ProviderError as exc:
            n = attempts()
            if n > 1:
                raise ProviderError(f"{exc.message} (gave up after {n} attempts)",
                                    status=exc.status, retryable=exc.retryable,
                                    retry_after=exc.retry_after, model=exc.model) from exc
            raise

    def _should_retry(self, exc: BaseException) -> bool:
        if not isinstance(exc, ProviderError) or not getattr(exc, "retry_here", False):
            return False
        return exc.retry_after is None or exc.retry_after <= self.max_retry_after

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ProviderError) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_retry_after)
        return self._backoff(state)

    # ------------------------------------------------------------------ errors

    @staticmethod
    def _error(message: str, *, status: int | None, retryable: bool, retry_here: bool,
               retry_after: float | None = None, model: str | None = None) -> ProviderError:
        exc = ProviderError(message, status=status, retryable=retryable,
                            retry_after=retry_after, model=model)
        exc.retry_here = retry_here      # private: this client retries it itself
        return exc

    def _transport_error(self, exc: BaseException, model: str | None, *,
                         timeout: float | None = None, what: str | None = None,
                         mid_stream: bool = False) -> ProviderError:
        target = what or f"model {model}"
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            message = (f"could not connect to {self.host} within "
                       f"{_fmt_seconds(timeout or self.connect_timeout)} ({target})")
        elif _is_read_timeout(exc):
            message = (f"timed out after {_fmt_seconds(timeout or self.read_timeout)} waiting "
                       f"for {target} at {self.host}")
        elif isinstance(exc, requests.exceptions.ConnectionError) and not mid_stream:
            text = str(exc).lower()
            if "refused" in text:
                reason = "connection refused; is the server running?"
            elif "resolve" in text or "name or service" in text or "nodename" in text:
                reason = "host name not found"
            else:
                reason = type(exc).__name__
            message = f"could not connect to {self.host} ({target}): {reason}"
        elif mid_stream:
            message = f"connection to {self.host} broke mid-answer ({target}): {type(exc).__name__}"
        else:
            message = f"request to {self.host} failed ({target}): {exc}"
        return self._error(message, status=None, retryable=True, retry_here=not mid_stream,
                           model=model)

    def _malformed(self, response: requests.Response, model: str | None) -> ProviderError:
        snippet = response.text[:80]
        target = f" for model {model}" if model else ""
        return self._error(
            f"malformed JSON from server {self.host}{target} "
            f"(HTTP {response.status_code}): {snippet!r}",
            status=response.status_code, retryable=True, retry_here=False, model=model)

    def _status_message(self, status: int, model: str | None) -> str:
        if status == 401:
            if self.api_key:
                fix = f"check {self.key_env}" if self.key_env else "check the API key"
            else:
                fix = f"no API key was sent; set {self.key_env or 'the API key'}"
            return f"401 Unauthorized from {self.host}: {fix}"
        if status == 402:
            who = "the OpenRouter account" if "openrouter" in self.host else "the account"
            return (f"402 Payment Required from {self.host}: {who} has no credits; "
                    "add credits or choose a free model")
        if status == 429:
            return f"429 rate limited by {self.host}" + (f" (model {model})" if model else "")
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = "Server Error" if status >= 500 else "Error"
        message = f"{status} {phrase} from {self.host}"
        explanation = _STATUS_EXPLANATIONS.get(status)
        if explanation and (model or "{model" not in explanation):
            message += ": " + explanation.format(model=model, base_url=self.base_url)
        elif model:
            message += f" (model {model})"
        return message

    def _http_error(self, response: requests.Response, model: str | None) -> ProviderError:
        """A ProviderError for an HTTP error response (reads the body for the provider's message)."""
        status = response.status_code
        provider_message = None
        try:
            body = response.json()
            err = body.get("error") if isinstance(body, dict) else None
            if isinstance(err, dict):
                provider_message = err.get("message")
            elif isinstance(err, str):
                provider_message = err
        except ValueError:
            text = response.text.strip()
            provider_message = text[:200] if text and "<html" not in text[:200].lower() else None
        retry_here = status in RETRY_STATUSES or status >= 500
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if retry_here else None
        message = self._status_message(status, model)
        if provider_message:
            message += f" - provider says: {str(provider_message)[:300]}"
        if retry_after is not None and retry_after > self.max_retry_after:
            message += (f"; the server asks to wait {_fmt_seconds(retry_after)} before retrying, "
                        f"more than the {_fmt_seconds(self.max_retry_after)} this client waits; "
                        "try another model or later")
        elif retry_after is not None:
            message += f"; retry after {_fmt_seconds(retry_after)}"
        return self._error(message, status=status, retryable=retry_here, retry_here=retry_here,
                           retry_after=retry_after, model=model)

    def _body_error(self, err: dict, model: str, http_status: int | None, *,
                    mid_stream: bool = False) -> ProviderError:
        """A ProviderError for an ``{"error": {...}}`` object sent with HTTP 200 or in a stream."""
        code = err.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else None
        if status is None and http_status and http_status >= 400:
            status = http_status
        retry_here = status is not None and (status in RETRY_STATUSES or status >= 500)
        retryable = retry_here or status is None
        where = "mid-stream " if mid_stream else ""
        label = f"{status} " if status else ""
        message = f"{label}error {where}from {self.host} (model {model})"
        if err.get("message"):
            message += f": {str(err['message'])[:300]}"
        return self._error(message, status=status, retryable=retryable, retry_here=retry_here,
                           model=model)

    # ------------------------------------------------------------------ cost

    def _cost(self, model: str, usage_raw: Any) -> float | None:
        """``usage.cost`` if the provider sent it, else estimated from ``prices``, else None."""
        if isinstance(usage_raw, dict):
            cost = usage_raw.get("cost")
            if isinstance(cost, (int, float)) and not isinstance(cost, bool):
                return float(cost)
        usage = _usage_ints(usage_raw)
        if not usage or self.prices is None:
            return None
        price = self.prices(model)
        if price is None:
            return None
        return estimate_cost(usage, price[0], price[1])


class _StreamState:
    """What has arrived so far in one streamed answer."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.finish_reason: str | None = None
        self.usage: dict | None = None
        self.id: str | None = None
        self.model: str | None = None
        self.done = False

    def feed(self, event: dict, client: OpenAICompatibleClient, model: str) -> str:
        """Take one parsed event; return its answer text (may be ""). Raises on error events."""
        if isinstance(event.get("error"), dict):
            raise client._body_error(event["error"], model, None, mid_stream=True)
        self.id = self.id or event.get("id")
        self.model = self.model or event.get("model")
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        delta_text = ""
        for choice in event.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            piece = _content_text(delta.get("content"))
            delta_text += piece
            reasoning = _reasoning_text(delta)
            if reasoning:
                self.reasoning.append(reasoning)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if delta_text:
            self.text.append(delta_text)
        return delta_text

