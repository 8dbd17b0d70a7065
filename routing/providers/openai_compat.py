"""HTTP client for OpenAI-compatible chat-completions endpoints (OpenRouter, Ollama, vLLM...).

One job: turn a chat request into a :class:`~routing.providers.base.ChatResult` (or a stream of
:class:`~routing.providers.base.StreamChunk`), retrying transient failures with tenacity and
turning every failure into a :class:`~routing.errors.ProviderError` whose message a person can act
on ("401 Unauthorized from openrouter.ai: check OPENROUTER_API_KEY").

Retry policy (in this client): HTTP 408/429/5xx, connection errors and socket timeouts are
retried up to ``max_retries`` times after the first attempt, with exponential backoff plus jitter
capped at ``backoff_max``; a ``Retry-After`` header (seconds or HTTP-date) replaces the backoff
when present. If ``Retry-After`` asks for more than ``max_retry_after`` seconds the client gives
up at once with a retryable error carrying ``retry_after``. 400/401/402/403/404/422 are never
retried.
``ProviderError.retryable`` tells the caller whether *another attempt or another model* may work
(True for 429/5xx/timeouts/connection errors/malformed answers).

Time and size limits (each failure is a retryable ProviderError that names the setting to change,
so the router moves on to its next model):

* ``attempt_timeout`` (ROUTER_ATTEMPT_TIMEOUT) bounds one attempt as a whole, from sending the
  request to the last byte of the answer, streamed or not. Socket timeouts cannot do this: they
  bound each wait for a byte, so a server trickling a byte every half second never times out.
  Each attempt therefore runs its HTTP exchange on a worker thread (:class:`_Attempt`) and the
  caller takes the body's pieces with a timeout that ends with the attempt. An attempt that runs
  out of this time is not retried on the same model: it had all the time an attempt gets, and
  the next model is the better bet.
* ``deadline`` (a ``time.monotonic()`` value given to :meth:`~OpenAICompatibleClient.chat` or
  :meth:`~OpenAICompatibleClient.stream_chat`; the router passes each model's share of
  ROUTER_DEADLINE) bounds the whole call, retries and backoff included: every attempt ends by
  it, connect and read timeouts are clipped to what is left, and a retry is started only if at
  least ``MIN_ATTEMPT_S`` would be left after its backoff.
* ``max_response_bytes`` (ROUTER_MAX_RESPONSE_BYTES) caps an answer's body, streamed or not
  (bytes after content decoding; a stream's SSE framing counts too, a few hundred bytes per
  token). The body is read as it arrives (``stream=True``): a ``Content-Length`` over the
  cap is refused before reading, and reading stops as soon as the cap is passed, so a huge
  answer is never held whole. Not retried on the same model (it would send the same answer).
  Error bodies are read only up to 64 kB, for the provider's message.

``list_models`` and ``probe`` (no tokens, short fixed timeouts) do not go through these limits.
"""

from __future__ import annotations

import email.utils
import http
import json
import logging
import math
import queue
import threading
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
from routing.safety.redact import redact
from routing.providers.base import ChatResult, Messages, StreamChunk

__all__ = ["OpenAICompatibleClient", "estimate_cost", "parse_retry_after", "PROVIDER_NAME"]

log = logging.getLogger(__name__)

PROVIDER_NAME = "openai_compatible"

#: HTTP statuses this client retries by itself (another attempt may succeed).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

#: A retry is started only if at least this many seconds would be left before the call's deadline.
MIN_ATTEMPT_S = 1.0
#: The most an attempt's worker reads at once (it takes whatever has arrived, up to this).
_PIECE_BYTES = 64 * 1024
#: Pieces a worker may read ahead of its caller: bounds what a fast, big body holds in memory.
_QUEUE_PIECES = 4
#: Bytes of an HTTP error body read for the provider's message; the rest is not read.
_ERROR_BODY_BYTES = 64 * 1024

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


#: Request fields that ``extra`` may add to a chat request, sent to the provider unchanged.
EXTRA_FIELDS = frozenset({"tools", "tool_choice", "parallel_tool_calls", "top_p", "stop", "user",
                          "seed", "presence_penalty", "frequency_penalty", "response_format"})


def estimate_cost(usage: dict, in_price_per_m: float, out_price_per_m: float) -> float:
    """Dollar cost of ``usage`` (``prompt_tokens``/``completion_tokens``) at $/million-token prices.

    Negative token counts count as 0 (a cost is never below nothing).
    """
    prompt = max(0, usage.get("prompt_tokens") or 0)
    completion = max(0, usage.get("completion_tokens") or 0)
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
    return f"{seconds:.3g} s" if seconds < 10 else f"{seconds:.0f} s"


def _fmt_bytes(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1e6:.3g} MB"
    return f"{size / 1e3:.3g} kB" if size >= 1000 else f"{size} bytes"


def _lines(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """The lines (without their LF or CRLF ending) of a body that arrives in pieces."""
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        end = buffer.rfind(b"\n")
        if end < 0:
            continue
        complete = bytes(buffer[:end])
        del buffer[:end + 1]
        for line in complete.split(b"\n"):
            yield line[:-1] if line.endswith(b"\r") else line
    if buffer:
        yield bytes(buffer[:-1] if buffer.endswith(b"\r") else buffer)


def _usage_ints(raw: Any) -> dict[str, int]:
    """prompt/completion/total token counts from a provider ``usage`` object (ints only)."""
    if not isinstance(raw, dict):
        return {}
    usage = {k: max(0, int(raw[k])) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
             if isinstance(raw.get(k), (int, float)) and not isinstance(raw.get(k), bool)
             and math.isfinite(raw[k])}  # a NaN or infinite count from a provider is no count
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
    """A read timeout: requests' own, urllib3's (reading a body by pieces), or urllib3's wrapped in
    the ConnectionError requests raises for a timeout while reading the body."""
    if isinstance(exc, (requests.exceptions.ReadTimeout, ReadTimeoutError)):
        return True
    return any(isinstance(a, ReadTimeoutError) for a in getattr(exc, "args", ()))


class OpenAICompatibleClient:
    """Chat client for one OpenAI-compatible base URL (e.g. ``https://openrouter.ai/api/v1``).

    ``max_retries`` counts retries after the first attempt (``max_retries=0``: one attempt).
    ``attempt_timeout`` (seconds) bounds one attempt as a whole and ``max_response_bytes`` one
    answer's body (see the module docstring). ``prices(model)`` returns (input, output) USD per
    million tokens, used to estimate the cost when the response does not carry ``usage.cost``.
    ``key_env`` names the setting that holds the key, so that a 401 says what to fix. Safe to
    share between threads.
    """

    provider_name = PROVIDER_NAME

    def __init__(self, base_url: str, api_key: str | None, *, connect_timeout: float = 5.0,
                 read_timeout: float = 60.0, max_retries: int = 3, backoff_base: float = 0.5,
                 backoff_max: float = 8.0, extra_headers: dict | None = None,
                 prices: PriceLookup | None = None, max_retry_after: float = 30.0,
                 key_env: str | None = None, ask_usage_cost: bool = True,
                 attempt_timeout: float = 45.0, max_response_bytes: int = 2_000_000):
        if not base_url:
            raise ValueError("base_url is empty")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or None
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.max_retries = max(0, int(max_retries))
        self.attempt_timeout = float(attempt_timeout)
        self.max_response_bytes = int(max_response_bytes)
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
             temperature: float | None = None, deadline: float | None = None,
             extra: dict[str, Any] | None = None) -> ChatResult:
        """Ask ``model`` and wait for the whole answer. Raises ProviderError on failure.

        ``deadline``: the ``time.monotonic()`` time by which the call ends, retries included
        (None: only ``attempt_timeout`` and ``max_retries`` bound it). ``extra``: more request
        fields sent as they are (``tools``, ``tool_choice``, ``top_p``, ``stop``...; see
        :data:`EXTRA_FIELDS`).
        """
        payload = self._payload(model, messages, max_tokens, temperature, stream=False, extra=extra)
        start = time.monotonic()
        attempts = 0

        def attempt() -> dict:
            nonlocal attempts
            attempts += 1
            return self._post_completion(model, payload, deadline)

        data = self._with_retries(attempt, model, lambda: attempts, deadline)
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
                    temperature: float | None = None, deadline: float | None = None,
                    extra: dict[str, Any] | None = None) -> Iterator[StreamChunk]:
        """Ask ``model`` and yield the answer as it arrives.

        Yields ``StreamChunk(delta=...)`` per piece of answer text, then one
        ``StreamChunk(done=True, result=ChatResult(...))``. Failures before the first piece of
        text are retried like :meth:`chat`; failures after it raise ProviderError at once. The
        whole stream must arrive within the attempt's limits (``attempt_timeout``, ``deadline``,
        ``max_response_bytes``).
        """
        payload = self._payload(model, messages, max_tokens, temperature, stream=True, extra=extra)
        start = time.monotonic()
        attempts = 0

        def attempt() -> tuple[_Attempt, Iterator[str], list[dict]]:
            nonlocal attempts
            attempts += 1
            return self._open_stream(model, payload, deadline)

        exchange, events, pending = self._with_retries(attempt, model, lambda: attempts, deadline)
        state = _StreamState()
        first_token_ms: float | None = None
        def parsed() -> Iterator[dict]:
            yield from pending
            for data in events:
                if data == "[DONE]":
                    state.done = True
                    return
                yield self._parse_event(data, model)

        with closing(exchange):
            for event in parsed():
                delta = state.feed(event, self, model)
                tools = state.take_tool_calls()
                if delta or tools:
                    first_token_ms = first_token_ms or (time.monotonic() - start) * 1000
                    yield StreamChunk(delta=delta, tool_calls=tools)
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
                                     "reasoning": "".join(state.reasoning) or None,
                                     **({"tool_calls": state.tool_calls()} if state.tools else {})}}],
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
                 temperature: float | None, *, stream: bool,
                 extra: dict[str, Any] | None = None) -> dict:
        payload: dict[str, Any] = {"model": model, "messages": list(messages)}
        for key, value in (extra or {}).items():
            if key not in EXTRA_FIELDS:
                raise ValueError(f"request field {key!r} cannot be passed through (allowed: {sorted(EXTRA_FIELDS)})")
            payload[key] = value
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

    def _start_attempt(self, model: str, payload: dict, deadline: float | None) -> "_Attempt":
        """Send one chat request (on a worker thread); it must end within ``attempt_timeout``
        from now and by ``deadline``, whichever is sooner."""
        now = time.monotonic()
        ends_at, limit = now + self.attempt_timeout, "attempt"
        if deadline is not None and deadline < ends_at:
            ends_at, limit = deadline, "deadline"
        if ends_at <= now:
            raise self._error(f"no time was left to ask model {model} at {self.host}: its share "
                              "of the query deadline (ROUTER_DEADLINE) was spent", status=None,
                              retryable=True, retry_here=False, model=model)
        return _Attempt(self, model, payload, ends_at=ends_at, limit=limit)

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
                raise self._malformed(response.status_code, response.content, model) from None

    def _post_completion(self, model: str, payload: dict, deadline: float | None) -> dict:
        """One non-streaming attempt: the parsed, validated response body."""
        with closing(self._start_attempt(model, payload, deadline)) as exchange:
            response = exchange.response()
            if response.status_code >= 300:
                raise self._http_error(response, model, exchange.error_body())
            body = exchange.read_all()
        try:
            data = json.loads(body)
        except ValueError:
            raise self._malformed(response.status_code, body, model) from None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise self._body_error(data["error"], model, response.status_code)
        if (not isinstance(data, dict) or not isinstance(data.get("choices"), list)
                or not data["choices"] or not isinstance(data["choices"][0], dict)):
            raise ProviderError(f"malformed answer from {self.host} (model {model}): no choices",
                                status=response.status_code, retryable=True, model=model)
        return data

    def _open_stream(self, model: str, payload: dict, deadline: float | None
                     ) -> tuple["_Attempt", Iterator[str], list[dict]]:
        """One streaming attempt, read up to the first piece of answer text.

        Returns the open attempt, the iterator over its remaining SSE data payloads, and the
        parsed events already read (so that everything up to the first text can be retried).
        """
        exchange = self._start_attempt(model, payload, deadline)
        try:
            response = exchange.response()
            if response.status_code >= 300:
                raise self._http_error(response, model, exchange.error_body())
            if "json" in response.headers.get("Content-Type", ""):
                events_read = self._json_as_events(response.status_code, exchange.read_all(), model)
                return exchange, iter(()), events_read
            events = self._iter_sse(exchange.pieces(mid_stream=True))
            pending: list[dict] = []
            for data in events:
                if data == "[DONE]":
                    return exchange, iter(["[DONE]"]), pending
                event = self._parse_event(data, model)
                if isinstance(event.get("error"), dict):
                    raise self._body_error(event["error"], model, None, mid_stream=True)
                pending.append(event)
                if any(_content_text((c.get("delta") or {}).get("content")) or (c.get("delta") or {}).get("tool_calls")
                       for c in event.get("choices") or [] if isinstance(c, dict)):
                    break
            return exchange, events, pending
        except BaseException:
            exchange.close()
            raise

    def _json_as_events(self, status: int, body: bytes, model: str) -> list[dict]:
        """A server that ignored ``stream: true`` and sent one JSON answer: as stream events."""
        try:
            data = json.loads(body)
        except ValueError:
            raise self._malformed(status, body, model) from None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise self._body_error(data["error"], model, status)
        try:
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ProviderError(f"malformed answer from {self.host} (model {model}): no choices",
                                retryable=True, model=model) from None
        return [{"id": data.get("id"), "model": data.get("model"), "usage": data.get("usage"),
                 "choices": [{"delta": message, "finish_reason": choice.get("finish_reason")
                              or "stop"}]}]

    @staticmethod
    def _iter_sse(pieces: Iterator[bytes]) -> Iterator[str]:
        """Data payloads of a server-sent-event stream (comments and other fields skipped).

        ``pieces`` is the body as it arrives (:meth:`_Attempt.pieces`, which raises ProviderError
        for transport failures and the attempt's limits). Lines end with LF or CRLF.
        """
        buffer: list[str] = []
        for raw_line in _lines(pieces):
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
        if buffer:
            yield "\n".join(buffer)

    def _parse_event(self, data: str, model: str) -> dict:
        try:
            event = json.loads(data)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            raise ProviderError(
                f"malformed JSON from {self.host} in the stream for model {model}: {redact(data)[:80]!r}",
                retryable=True, model=model)
        return event

    # ------------------------------------------------------------------ retries

    def _with_retries(self, fn: Callable[[], Any], model: str, attempts: Callable[[], int],
                      deadline: float | None = None) -> Any:
        out_of_time = False

        def no_time_left(state: RetryCallState) -> bool:
            """Stop when the next attempt would start with less than MIN_ATTEMPT_S left."""
            nonlocal out_of_time
            if deadline is not None:
                starts_at = time.monotonic() + (state.upcoming_sleep or 0.0)
                out_of_time = starts_at + MIN_ATTEMPT_S > deadline
            return out_of_time

        retrying = Retrying(
            retry=retry_if_exception(self._should_retry),
            stop=stop_after_attempt(self.max_retries + 1) | no_time_left,
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
            notes = [f"gave up after {n} attempts"] if n > 1 else []
            if out_of_time:
                notes.append("no time was left for another attempt in this model's share of "
                             "the query deadline (ROUTER_DEADLINE)")
            if notes:
                raise ProviderError(f"{exc.message} ({'; '.join(notes)})",
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

    def _malformed(self, status: int, body: bytes, model: str | None) -> ProviderError:
        snippet = redact(body[:4096].decode("utf-8", errors="replace"))[:80]
        target = f" for model {model}" if model else ""
        return self._error(
            f"malformed JSON from server {self.host}{target} (HTTP {status}): {snippet!r}",
            status=status, retryable=True, retry_here=False, model=model)

    def _out_of_time(self, model: str, *, limit: str, seconds: float,
                     received: int) -> ProviderError:
        """An attempt ran out of its time: ``limit`` is "attempt" (ROUTER_ATTEMPT_TIMEOUT) or
        "deadline" (the model's share of ROUTER_DEADLINE); ``received``: body bytes so far."""
        progress = (f"it was still sending ({received:,} bytes so far)" if received
                    else "no answer had arrived")
        if limit == "attempt":
            message = (f"model {model} at {self.host} did not finish answering within "
                       f"{_fmt_seconds(seconds)}, the limit for one attempt "
                       f"(ROUTER_ATTEMPT_TIMEOUT); {progress}. Raise ROUTER_ATTEMPT_TIMEOUT if "
                       "this model is just slow")
        else:
            message = (f"model {model} at {self.host} did not finish answering within "
                       f"{_fmt_seconds(seconds)}, its share of the query deadline "
                       f"(ROUTER_DEADLINE); {progress}")
        return self._error(message, status=None, retryable=True, retry_here=False, model=model)

    def _too_large(self, model: str, size: int, *, announced: bool = False) -> ProviderError:
        """An answer's body passed ``max_response_bytes`` (or its Content-Length announced so)."""
        how = (f"it announces {size:,} bytes" if announced
               else f"reading stopped after {size:,} bytes")
        return self._error(
            f"the answer from model {model} at {self.host} is too large: {how}, over the "
            f"{_fmt_bytes(self.max_response_bytes)} cap (ROUTER_MAX_RESPONSE_BYTES); raise "
            "ROUTER_MAX_RESPONSE_BYTES to accept it, or lower ROUTER_MAX_TOKENS",
            status=None, retryable=True, retry_here=False, model=model)

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

    def _http_error(self, response: requests.Response, model: str | None,
                    body: bytes | None = None) -> ProviderError:
        """A ProviderError for an HTTP error response, with the provider's message from its body.

        ``body``: the start of the body where the response is read by pieces (None: read
        ``response.content``).
        """
        status = response.status_code
        raw = response.content if body is None else body
        provider_message = None
        try:
            parsed = json.loads(raw)
            err = parsed.get("error") if isinstance(parsed, dict) else None
            if isinstance(err, dict):
                provider_message = err.get("message")
            elif isinstance(err, str):
                provider_message = err
        except ValueError:
            text = raw.decode("utf-8", errors="replace").strip()
            provider_message = redact(text)[:200] if text and "<html" not in text[:200].lower() else None
        retry_here = status in RETRY_STATUSES or status >= 500
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if retry_here else None
        message = self._status_message(status, model)
        if provider_message:
            message += f" - provider says: {redact(str(provider_message))[:300]}"
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
            message += f": {redact(str(err['message']))[:300]}"
        return self._error(message, status=status, retryable=retryable, retry_here=retry_here,
                           model=model)

    # ------------------------------------------------------------------ cost

    def _cost(self, model: str, usage_raw: Any) -> float | None:
        """``usage.cost`` if the provider sent it, else estimated from ``prices``, else None.

        A ``usage.cost`` that is NaN, infinite or negative is not believed: None (unknown), with
        a warning, and no estimate from the same answer's token counts either. The spend ledger
        records an unknown cost at the bound it held for the call (:mod:`routing.budget`).
        """
        if isinstance(usage_raw, dict) and "cost" in usage_raw:
            cost = usage_raw.get("cost")
            if isinstance(cost, (int, float)) and not isinstance(cost, bool):
                if math.isfinite(cost) and cost >= 0:
                    return float(cost)
                log.warning("%s (model %s) reported usage.cost %r: not a usable cost, treated as unknown",
                            self.host, model, cost)
                return None
        usage = _usage_ints(usage_raw)
        if not usage or self.prices is None:
            return None
        price = self.prices(model)
        if price is None:
            return None
        cost = estimate_cost(usage, price[0], price[1])
        return cost if math.isfinite(cost) and cost >= 0 else None


class _Attempt:
    """One chat request and its answer's body, exchanged on a worker thread within time and size.

    The worker does all the blocking I/O (name lookup, connect, headers, body) and hands the body
    over in pieces (whatever has arrived, at most ``_PIECE_BYTES``) through a queue of at most
    ``_QUEUE_PIECES``; the caller waits on the queue with a timeout that ends at ``ends_at``. So
    the limit holds whatever the server does (hangs, trickles bytes, sends its headers slowly),
    and a fast, big body is never buffered whole: :meth:`pieces` counts it against the client's
    ``max_response_bytes``. :meth:`close` (the caller done, or giving up) stops the worker: it
    shuts the socket down (urllib3's ``HTTPResponse.shutdown``), which wakes a blocked read; a
    worker still waiting for the headers ends at its read timeout, which is clipped to the
    attempt's time. A body read to its end leaves the connection in the pool for later requests.
    """

    def __init__(self, client: OpenAICompatibleClient, model: str, payload: dict, *,
                 ends_at: float, limit: str):
        self.client = client
        self.model = model
        self.ends_at = ends_at
        self.limit = limit                   # which limit ends_at is: "attempt" or "deadline"
        self.started = time.monotonic()
        self.received = 0                    # body bytes handed to the caller so far
        remaining = ends_at - self.started
        self.connect_timeout = min(client.connect_timeout, remaining)
        self.read_timeout = min(client.read_timeout, remaining)
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=_QUEUE_PIECES)
        self._cancelled = threading.Event()
        self._lock = threading.Lock()        # orders close() against the worker's release/close
        self._response: requests.Response | None = None
        self._headers: requests.Response | None = None   # what the caller got from response()
        self._released = False               # the body was read to its end, connection pooled
        threading.Thread(target=self._work, args=(payload,), daemon=True,
                         name=f"chat-attempt {model}").start()

    # ---------------------------------------------------------------- the worker thread

    def _work(self, payload: dict) -> None:
        client = self.client
        try:
            response = client._session.post(
                f"{client.base_url}/chat/completions", json=payload, headers=client._headers(),
                stream=True, timeout=(self.connect_timeout, self.read_timeout))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it
            self._hand_over("error", exc)
            return
        with self._lock:
            self._response = response
        try:
            if not self._hand_over("response", response):
                return
            while not self._cancelled.is_set():
                piece = response.raw.read1(_PIECE_BYTES, decode_content=True)
                if not piece:
                    with self._lock:
                        if not self._cancelled.is_set():
                            response.raw.release_conn()
                            self._released = True
                    self._hand_over("end", None)
                    return
                if not self._hand_over("data", piece):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it
            self._hand_over("error", exc)
        finally:
            with self._lock:
                response.close()

    def _hand_over(self, kind: str, value: Any) -> bool:
        """Queue one item for the caller; False (dropped) once the caller has given up."""
        while not self._cancelled.is_set():
            try:
                self._queue.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    # ---------------------------------------------------------------- the caller's side

    def _take(self) -> tuple[str, Any]:
        timeout = self.ends_at - time.monotonic()
        try:
            if timeout <= 0:
                raise queue.Empty
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            raise self._out_of_time() from None

    def _out_of_time(self) -> ProviderError:
        return self.client._out_of_time(self.model, limit=self.limit,
                                        seconds=self.ends_at - self.started, received=self.received)

    def _failure(self, exc: BaseException, *, mid_stream: bool) -> ProviderError:
        """The ProviderError for what the worker raised."""
        if isinstance(exc, ProviderError):
            return exc
        connect = isinstance(exc, requests.exceptions.ConnectTimeout)
        if connect or _is_read_timeout(exc):
            used = self.connect_timeout if connect else self.read_timeout
            if used < (self.client.connect_timeout if connect else self.client.read_timeout):
                return self._out_of_time()       # the timeout was clipped to the attempt's end
            return self.client._transport_error(exc, self.model, timeout=used,
                                                mid_stream=mid_stream)
        return self.client._transport_error(exc, self.model, mid_stream=mid_stream)

    def response(self) -> requests.Response:
        """The response once its headers have arrived; its body comes from :meth:`pieces`."""
        kind, value = self._take()
        if kind == "error":
            raise self._failure(value, mid_stream=False)
        self._headers = value
        return value

    def pieces(self, *, mid_stream: bool) -> Iterator[bytes]:
        """The body as it arrives, within the attempt's time and the client's size cap.

        ``mid_stream``: transport failures are not retried by the client (a stream's).
        """
        cap = self.client.max_response_bytes
        announced = self._headers.headers.get("Content-Length") if self._headers else None
        if announced and announced.isdigit() and int(announced) > cap:
            raise self.client._too_large(self.model, int(announced), announced=True)
        while True:
            kind, value = self._take()
            if kind == "end":
                return
            if kind == "error":
                raise self._failure(value, mid_stream=mid_stream)
            self.received += len(value)
            if self.received > cap:
                raise self.client._too_large(self.model, self.received)
            yield value

    def read_all(self) -> bytes:
        """The whole body (non-streamed answers)."""
        return b"".join(self.pieces(mid_stream=False))

    def error_body(self) -> bytes:
        """The start of an error response's body (up to ``_ERROR_BODY_BYTES``), for its message;
        whatever stops the reading (time, size, a broken connection) just ends it."""
        body = bytearray()
        try:
            for piece in self.pieces(mid_stream=False):
                body += piece
                if len(body) >= _ERROR_BODY_BYTES:
                    break
        except ProviderError:
            pass
        return bytes(body[:_ERROR_BODY_BYTES])

    def close(self) -> None:
        """Stop the attempt (idempotent): the worker stops and the connection closes, unless the
        body was read to its end (then the connection is back in the pool)."""
        with self._lock:
            if self._cancelled.is_set():
                return
            self._cancelled.set()
            response = self._response
            if response is None or self._released:
                return
            shutdown = getattr(response.raw, "shutdown", None)     # urllib3 >= 2.3
            if shutdown is not None:
                try:
                    shutdown()               # wakes a worker blocked reading the socket
                except (OSError, RuntimeError, ValueError, AttributeError):
                    pass


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
        self.tools: dict[int, dict] = {}        # tool calls assembled from their deltas, by index
        self._new_tools: list[dict] = []        # this event's tool-call deltas, as sent

    def take_tool_calls(self) -> list[dict] | None:
        """The tool-call deltas of the last event fed (passed on as they are), or None."""
        new, self._new_tools = self._new_tools, []
        return new or None

    def tool_calls(self) -> list[dict]:
        """The whole tool calls, as a non-streamed answer's ``message.tool_calls`` holds them."""
        return [self.tools[i] for i in sorted(self.tools)]

    def _add_tool_delta(self, piece: Any) -> None:
        if not isinstance(piece, dict):
            return
        index = piece.get("index") if isinstance(piece.get("index"), int) else len(self.tools)
        self._new_tools.append({**piece, "index": index})  # OpenAI's stream chunks always carry it
        call = self.tools.setdefault(index, {"id": None, "type": "function",
                                             "function": {"name": "", "arguments": ""}})
        if isinstance(piece.get("id"), str):
            call["id"] = piece["id"]
        if isinstance(piece.get("type"), str):
            call["type"] = piece["type"]
        function = piece.get("function")
        if isinstance(function, dict):
            for key in ("name", "arguments"):
                if isinstance(function.get(key), str):
                    call["function"][key] += function[key]

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
            tool_calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            if isinstance(tool_calls, list):
                for piece in tool_calls:
                    self._add_tool_delta(piece)
            reasoning = _reasoning_text(delta)
            if reasoning:
                self.reasoning.append(reasoning)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if delta_text:
            self.text.append(delta_text)
        return delta_text

