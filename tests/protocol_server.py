"""A local HTTP server speaking the OpenAI chat-completions protocol, standing in for OpenRouter.

Tests start one (the ``protocol_server`` fixture, or ``with ProtocolServer() as server:``), point a
client at ``server.base_url`` (``http://127.0.0.1:PORT/v1``) and script how each model behaves.

Endpoints
    ``POST /v1/chat/completions``  JSON answer, or server-sent events when ``"stream": true``.
    ``GET  /v1/models``            ``{"data": server.models_listing}`` (OpenRouter-like listing).
    ``GET  /v1/key``               200 ``{"data": {...}}`` when the bearer key is in
                                   ``server.valid_keys`` (default ``{"good"}``), else 401;
                                   404 when ``server.key_endpoint`` is False.
    With ``server.require_key = True`` chat requests also need a key in ``valid_keys`` (else 401).
    anything else                  404 with an ``{"error": {...}}`` body.

Default answer for any model: ``default_reply(model, messages)``, i.e.
``"[{model}] answer to: {last user message[:60]}"``, with usage (one token per word) and
``usage.cost`` from :func:`cost_for` (PROMPT_PRICE/COMPLETION_PRICE dollars per token).
``max_tokens`` truncates the answer to that many words with ``finish_reason="length"``.

Behaviour per model (``"*"`` applies to every model without its own entry)::

    server.set_model("m", status=500, fail_times=1)     # one 500, then normal answers
    server.set_model("m", status=429, retry_after=1, fail_times=1)
    server.set_model("m", hang=True)                     # never answers (until stop)
    server.set_model("m", delay=0.3, reply="fixed text")
    server.script("m", [dict(status=503), dict(malformed=True), {}])   # one step per request
    server.set_model("m", trickle=0.05)                  # the answer leaves one byte per 0.05 s
    server.set_model("m", reply="x" * 3_000_000, chunked=True)   # 3 MB, no Content-Length
    server.set_model("m", tool_calls=[{"id": "call_1", "type": "function",
                                       "function": {"name": "f", "arguments": "{}"}}])

A *fault* is ``status`` (an error response), ``hang`` or ``malformed``. With ``fail_times=0``
the fault applies to every request; with ``fail_times=N`` to the first N requests, after which
the model answers normally. ``script`` steps are consumed one per request and take precedence;
each step is the keyword arguments of :class:`Behaviour` (``{}`` is a normal answer).

``trickle`` applies to every request (it is not a fault: the answer is complete, only slow):
a JSON answer goes out after its headers one byte at a time, a stream as one-byte HTTP chunks.

Every request is recorded (``server.requests``: :class:`RecordedRequest`) before it is
answered, so hanging requests are recorded too; ``body_bytes_sent`` counts the answer's bytes
written so far (how much of a big answer went out before the client hung up). Handler threads
are daemons and hanging ones wake up on ``stop()``, so the server always shuts down promptly.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

__all__ = ["ProtocolServer", "Behaviour", "RecordedRequest", "default_reply", "usage_for",
           "cost_for", "listing_entry", "PROMPT_PRICE", "COMPLETION_PRICE", "DEFAULT_LISTING"]

#: Dollars per token the server charges (reported as ``usage.cost``).
PROMPT_PRICE = 1e-6
COMPLETION_PRICE = 2e-6

Reply = str | Callable[[str, list], str] | None


def default_reply(model: str, messages: list) -> str:
    """The deterministic answer the server gives when no reply is scripted."""
    last_user = next((m.get("content", "") for m in reversed(messages)
                      if isinstance(m, dict) and m.get("role") == "user"), "")
    if not isinstance(last_user, str):
        last_user = json.dumps(last_user)
    return f"[{model}] answer to: {last_user[:60]}"


def usage_for(messages: list, reply: str) -> dict[str, int]:
    """Token usage the server reports: one token per whitespace-separated word."""
    prompt = sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict))
    completion = len(reply.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def cost_for(usage: dict) -> float:
    """The ``usage.cost`` (USD) the server reports for ``usage``."""
    return usage["prompt_tokens"] * PROMPT_PRICE + usage["completion_tokens"] * COMPLETION_PRICE


def listing_entry(model_id: str, prompt_per_m: float = 1.0, completion_per_m: float = 2.0,
                  context_length: int = 32768) -> dict:
    """One OpenRouter-style ``/models`` entry; prices are USD per token, as strings."""
    return {"id": model_id, "name": model_id, "context_length": context_length,
            "pricing": {"prompt": f"{prompt_per_m / 1e6:.10f}".rstrip("0"),
                        "completion": f"{completion_per_m / 1e6:.10f}".rstrip("0")}}


DEFAULT_LISTING = (listing_entry("test/model-a"), listing_entry("test/model-b", 0.5, 1.5, 8192))


@dataclass
class Behaviour:
    """How a model answers. See the module docstring for the meaning of a *fault*."""

    reply: Reply = None                 # str, or callable(model, messages) -> str; None: default
    reasoning: str | None = None        # sent as message.reasoning / delta.reasoning (DeepSeek R1)
    delay: float = 0.0                  # seconds to sleep before answering (every request)
    status: int | None = None           # fault: answer with this HTTP status and an error body
    error_message: str | None = None    # the error body's message
    retry_after: float | str | None = None   # Retry-After header sent with the status fault
    fail_times: int = 0                 # 0: fault on every request; N: first N requests only
    hang: bool = False                  # fault: never answer (until the server stops)
    malformed: bool = False             # fault: HTTP 200 with invalid JSON (or a bad SSE line)
    include_cost: bool = True           # False: usage without "cost" (client must estimate)
    include_usage: bool = True          # False: no usage at all
    stream_error: str | None = None     # stream only: send an {"error"} event mid-stream
    stream_error_code: int = 502        # ... with this code
    stream_error_after: int = 1         # ... after this many content chunks
    chunk_delay: float = 0.0            # stream only: seconds between content chunks
    trickle: float = 0.0                # seconds between bytes: the answer goes out a byte at a time
    chunked: bool = False               # JSON answer with chunked encoding, no Content-Length
    tool_calls: list | None = None      # answer with these tool calls (content null, finish "tool_calls");
                                        # streamed as OpenAI does: id and name first, arguments in pieces


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    time: float = field(default_factory=time.monotonic)
    body_bytes_sent: int = 0            # bytes of the answer's body written so far

    @property
    def model(self) -> str | None:
        return self.json.get("model") if isinstance(self.json, dict) else None

    @property
    def authorization(self) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == "authorization"), None)


class _Stopping(Exception):
    """The server stops while a trickled answer is going out."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # socketserver's default listen backlog is 5: a burst of more parallel connections (tests that
    # fire 8 requests at once, plus their shadows) overflowed it on a loaded machine, the kernel
    # dropped the SYN, and the client's retry came after its 1 s connect timeout (a flaky
    # "could not connect within 1 s")
    request_queue_size = 128
    owner: "ProtocolServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (timeouts in tests) are expected: stay quiet about them."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class ProtocolServer:
    """Scriptable OpenAI-compatible server on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self) -> None:
        self.models_listing: list[dict] = [dict(e) for e in DEFAULT_LISTING]
        self.valid_keys: set[str] = {"good"}
        self.require_key = False          # True: chat requests need a key in valid_keys (else 401)
        self.key_endpoint = True          # False: GET /v1/key answers 404, like non-OpenRouter servers
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._behaviours: dict[str, Behaviour] = {}
        self._faults_served: dict[str, int] = {}
        self._scripts: dict[str, list[Behaviour]] = {}
        self._requests: list[RecordedRequest] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "ProtocolServer":
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="protocol-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging and delayed handlers wake up and exit."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> "ProtocolServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("ProtocolServer is not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: what a client takes as its base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    # ------------------------------------------------------------------ scripting

    def set_model(self, model_name: str, reply: Reply = None, delay: float = 0.0,
                  status: int | None = None, error_message: str | None = None,
                  retry_after: float | str | None = None, fail_times: int = 0,
                  hang: bool = False, malformed: bool = False, **more: Any) -> None:
        """Set how ``model_name`` (or ``"*"``: every other model) answers; resets its fault count.

        ``more`` takes the other :class:`Behaviour` fields (reasoning, include_cost, ...).
        """
        behaviour = Behaviour(reply=reply, delay=delay, status=status, error_message=error_message,
                              retry_after=retry_after, fail_times=fail_times, hang=hang,
                              malformed=malformed, **more)
        with self._lock:
            self._behaviours[model_name] = behaviour
            self._faults_served[model_name] = 0

    def script(self, model_name: str, steps: list[dict | Behaviour]) -> None:
        """Queue one behaviour per coming request to ``model_name`` (then back to set_model)."""
        queued = [s if isinstance(s, Behaviour) else Behaviour(**s) for s in steps]
        with self._lock:
            self._scripts.setdefault(model_name, []).extend(queued)

    def reset(self) -> None:
        """Forget behaviours, scripts and recorded requests."""
        with self._lock:
            self._behaviours.clear()
            self._faults_served.clear()
            self._scripts.clear()
            self._requests.clear()

    # ------------------------------------------------------------------ inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def chat_requests(self, model: str | None = None) -> list[RecordedRequest]:
        """Recorded chat-completion requests (for ``model`` only, if given)."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")
                and (model is None or r.model == model)]

    # ------------------------------------------------------------------ used by the handler

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _behaviour_for(self, model: str) -> tuple[Behaviour, bool]:
        """The behaviour for one request to ``model`` and whether its fault applies now."""
        with self._lock:
            for key in (model, "*"):
                if self._scripts.get(key):
                    return self._scripts[key].pop(0), True
            key = model if model in self._behaviours else "*"
            behaviour = self._behaviours.get(key, Behaviour())
            if behaviour.fail_times <= 0:
                return behaviour, True
            served = self._faults_served.get(key, 0)
            if served < behaviour.fail_times:
                self._faults_served[key] = served + 1
                return behaviour, True
            return behaviour, False

    def _wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if the server is stopping."""
        return self._stopping.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True      # stream chunks leave at once (no 40 ms delayed-ACK stalls)
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        pass

    # ------------------------------------------------------------------ plumbing

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error_body(self, status: int, message: str,
                         headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"code": status, "message": message}}, headers)

    def _bearer(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[7:] if auth.startswith("Bearer ") else None

    def _read_json(self) -> tuple[Any, bool]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return (json.loads(raw) if raw else None), True
        except ValueError:
            return raw.decode("utf-8", "replace"), False

    def _record(self, body: Any) -> None:
        self.recorded = RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
        self.server.owner._record(self.recorded)

    def _write_body(self, data: bytes, behaviour: Behaviour, *, chunked: bool) -> bool:
        """Write ``data`` (as HTTP chunks if ``chunked``), a byte at a time if ``behaviour.trickle``.

        Counts what went out in ``recorded.body_bytes_sent``; False if the server is stopping.
        """
        owner = self.server.owner
        step = 1 if behaviour.trickle else 64 * 1024
        for start in range(0, len(data), step):
            piece = data[start:start + step]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            self.wfile.flush()
            self.recorded.body_bytes_sent += len(piece)
            if behaviour.trickle and owner._wait(behaviour.trickle):
                return False
        return True

    def _send_answer(self, body: Any, behaviour: Behaviour) -> None:
        """A 200 JSON answer, sent as ``behaviour`` says (trickled, chunked or all at once)."""
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if behaviour.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            finished = self._write_body(data, behaviour, chunked=behaviour.chunked)
            if finished and behaviour.chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            finished = False            # the client hung up (e.g. it refused a big answer)
        if not finished:
            self.close_connection = True

    # ------------------------------------------------------------------ routes

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        owner = self.server.owner
        self._record(None)
        path = self.path.split("?")[0].rstrip("/")
        if path == "/v1/models":
            self._send_json(200, {"data": list(owner.models_listing)})
        elif path == "/v1/key" and owner.key_endpoint:
            if self._bearer() in owner.valid_keys:
                self._send_json(200, {"data": {"label": "test-key", "usage": 0.0, "limit": None,
                                               "is_free_tier": False}})
            else:
                self._send_error_body(401, "No auth credentials found" if self._bearer() is None
                                      else "Invalid API key")
        else:
            self._send_error_body(404, f"no route {path}")

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        owner = self.server.owner
        body, ok = self._read_json()
        self._record(body)
        if self.path.split("?")[0].rstrip("/") != "/v1/chat/completions":
            self._send_error_body(404, f"no route {self.path}")
            return
        if not ok or not isinstance(body, dict) or not isinstance(body.get("messages"), list) \
                or not isinstance(body.get("model"), str):
            self._send_error_body(400, "body must be JSON with 'model' and 'messages'")
            return
        if owner.require_key and self._bearer() not in owner.valid_keys:
            self._send_error_body(401, "Invalid API key")
            return
        model = body["model"]
        behaviour, fault = owner._behaviour_for(model)
        if behaviour.delay and owner._wait(behaviour.delay):
            self.close_connection = True
            return
        if fault and behaviour.hang:
            owner._wait(1e9)
            self.close_connection = True
            return
        if fault and behaviour.status is not None:
            headers = ({"Retry-After": str(behaviour.retry_after)}
                       if behaviour.retry_after is not None else None)
            message = behaviour.error_message or f"scripted {behaviour.status} for {model}"
            self._send_error_body(behaviour.status, message, headers)
            return
        reply = behaviour.reply(model, body["messages"]) if callable(behaviour.reply) else (
            behaviour.reply if behaviour.reply is not None else default_reply(model, body["messages"]))
        finish_reason = "stop"
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, int) and len(reply.split()) > max_tokens:
            reply = " ".join(reply.split()[:max_tokens])
            finish_reason = "length"
        usage: dict[str, Any] | None = None
        if behaviour.include_usage:
            usage = dict(usage_for(body["messages"], reply))
            if behaviour.include_cost:
                usage["cost"] = cost_for(usage)
        malformed = fault and behaviour.malformed
        if behaviour.tool_calls is not None:
            finish_reason = "tool_calls"
        if body.get("stream"):
            self._stream(model, reply, finish_reason, usage, behaviour, malformed)
        elif malformed:
            data = b'{"id": "broken", "choices": [{"message": '
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            message: dict[str, Any] = {"role": "assistant", "content": reply}
            if behaviour.tool_calls is not None:
                message = {"role": "assistant", "content": None, "tool_calls": behaviour.tool_calls}
            if behaviour.reasoning is not None:
                message["reasoning"] = behaviour.reasoning
            answer: dict[str, Any] = {
                "id": f"gen-{len(owner.requests)}", "object": "chat.completion",
                "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}]}
            if usage is not None:
                answer["usage"] = usage
            self._send_answer(answer, behaviour)

    def _stream(self, model: str, reply: str, finish_reason: str, usage: dict | None,
                behaviour: Behaviour, malformed: bool) -> None:
        """Answer as OpenRouter streams: SSE over chunked transfer encoding."""
        owner = self.server.owner
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(text: str) -> None:
            if not self._write_body(text.encode(), behaviour, chunked=True):
                raise _Stopping

        def event(delta: dict, finish: str | None = None, **extra: Any) -> None:
            chunk = {"id": "gen-stream", "object": "chat.completion.chunk", "created": 0,
                     "model": model, "choices": [{"index": 0, "delta": delta,
                                                  "finish_reason": finish}], **extra}
            send(f"data: {json.dumps(chunk)}\n\n")

        try:
            send(": OPENROUTER PROCESSING\n\n")
            event({"role": "assistant", "content": ""})
            if malformed:
                send('data: {"choices": [{"delta": \n\n')
                send("data: [DONE]\n\n")
                return
            if behaviour.reasoning:
                event({"reasoning": behaviour.reasoning})
            if behaviour.tool_calls is not None:
                for index, call in enumerate(behaviour.tool_calls):
                    function = call["function"]
                    event({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                           "function": {"name": function["name"], "arguments": ""}}]})
                    args = function["arguments"]
                    for piece in (args[:len(args) // 2], args[len(args) // 2:]):
                        event({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                event({}, finish_reason)
                if usage is not None:
                    send("data: " + json.dumps({"id": "gen-stream", "object": "chat.completion.chunk",
                                                "model": model, "choices": [], "usage": usage}) + "\n\n")
                send("data: [DONE]\n\n")
                return
            words = reply.split(" ")
            pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
            for index, piece in enumerate(pieces):
                if behaviour.stream_error is not None and index == behaviour.stream_error_after:
                    break
                if index and behaviour.chunk_delay and owner._wait(behaviour.chunk_delay):
                    return
                event({"content": piece})
                if index == 1:
                    send(": OPENROUTER PROCESSING\n\n")
            if behaviour.stream_error is not None:
                send("data: " + json.dumps({
                    "id": "gen-stream", "object": "chat.completion.chunk", "model": model,
                    "error": {"code": behaviour.stream_error_code,
                              "message": behaviour.stream_error},
                    "choices": [{"index": 0, "delta": {"content": ""},
                                 "finish_reason": "error"}]}) + "\n\n")
                send("data: [DONE]\n\n")
                return
            event({}, finish_reason)
            if usage is not None:
                send("data: " + json.dumps({"id": "gen-stream", "object": "chat.completion.chunk",
                                            "model": model, "choices": [], "usage": usage})
                     + "\n\n")
            send("data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError, _Stopping):
            self.close_connection = True
            return
        finally:
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                self.close_connection = True



def main(argv: list[str] | None = None) -> None:
    """``python -m tests.protocol_server [--reply-words N] [--chunk-delay S]``: serve until killed.

    Prints the base URL on the first line of stdout (benchmarks run it in its own process, so
    that the server and the app do not share one interpreter).
    """
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reply-words", type=int, default=0, help="answer with this many words (0: default reply)")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed words")
    args = parser.parse_args(argv)
    server = ProtocolServer().start()
    reply = " ".join(f"word{i}" for i in range(args.reply_words)) if args.reply_words else None
    server.set_model("*", reply=reply, chunk_delay=args.chunk_delay)
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
