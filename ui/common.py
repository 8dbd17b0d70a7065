"""Helpers shared by the tab builders."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from routing.safety.access import Caller, header, identify
from routing.errors import UserError
from routing.safety.redact import redact, redact_data
from routing.safety.untrusted import escape_html

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageLoad:
    """What a tab refreshes each time the page loads: ``fn()`` returns updates for ``outputs``
    (app.py registers it with ``demo.load``). Lists of pool models use it: the Pool tab can change
    the pool without a restart, and a component's choices are otherwise fixed when the app starts."""

    fn: Callable[[], Any]
    outputs: list[Any]


def user_errors(fn: Callable) -> Callable:
    """Turn expected failures (UserError) into gr.Error with a message that says what to do.

    Also the boundary where text leaves an endpoint: API keys are redacted (routing.safety.redact) in
    everything it returns or yields and in its error message, which is HTML-escaped (Gradio
    renders toast messages as HTML, and they can quote provider text).

    Any other exception is logged with its traceback and becomes a gr.Error that says so, so a
    client never gets Gradio's opaque "upstream app raised an exception" (or ``{"error": null}``);
    the exception's own text, which may name server paths, stays in the log.
    """

    def convert(exc: Exception) -> gr.Error:
        # Toasts render HTML and messages can quote provider text: shown as text, keys redacted.
        return gr.Error(escape_html(redact(str(exc.args[0]) if exc.args else str(exc))))

    def unexpected(exc: Exception) -> gr.Error:
        log.exception("%s failed", getattr(fn, "__qualname__", fn))
        return gr.Error(f"The server failed on this request ({type(exc).__name__}); the details are in its log. "
                        "Check the inputs against the API documentation (README.md), or try again.")

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                frames = fn(*args, **kwargs)
                try:
                    for frame in frames:
                        yield redact_data(frame)
                finally:
                    frames.close()  # a client that went away stops the handler at once (as yield from did)
            except UserError as exc:
                raise convert(exc) from exc
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - the last line before Gradio's opaque error
                raise unexpected(exc) from exc
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return redact_data(fn(*args, **kwargs))
        except UserError as exc:
            raise convert(exc) from exc
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - the last line before Gradio's opaque error
            raise unexpected(exc) from exc
    return wrapper


def _input_names(block_fn: Any) -> list[str]:
    """The handler's parameter names, one per input component (gr.Progress parameters left out)."""
    try:
        params = inspect.signature(block_fn.fn).parameters.values()
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
             and not isinstance(p.default, gr.Progress)]
    n = len(block_fn.inputs)
    return names[:n] if len(names) >= n else [f"input {i + 1}" for i in range(n)]


def _holds_file(value: Any) -> bool:
    if isinstance(value, dict):
        meta = value.get("meta")
        return (isinstance(meta, dict) and meta.get("_type") == "gradio.FileData") or any(
            _holds_file(v) for v in value.values())
    return isinstance(value, list) and any(_holds_file(v) for v in value)


def input_error(block_fn: Any, inputs: list[Any], exc: Exception) -> gr.Error:
    """A gr.Error naming the parameter for a request Gradio refused before the handler ran."""
    from gradio.exceptions import InvalidPathError

    names = _input_names(block_fn)
    endpoint = f"/{block_fn.api_name}" if getattr(block_fn, "api_name", None) else "this endpoint"
    upload = "must be an upload: send it with gradio_client.handle_file(path); server paths are not accepted."
    if len(inputs) < len(names):
        return gr.Error(f"{endpoint} takes {len(names)} inputs, in this order: {', '.join(names)}; the request "
                        f"has {len(inputs)}. Send every one (gradio_client fills in the defaults).")
    if isinstance(exc, InvalidPathError):
        bad = next((n for n, v in zip(names, inputs) if _holds_file(v)), "a file parameter")
        return gr.Error(f"`{bad}` {upload}")
    for name, block, value in zip(names, block_fn.inputs, inputs):
        model = getattr(block, "data_model", None)
        if model is not None and value is not None:
            try:
                model.model_validate(value, context={"validate_meta": True})
            except Exception:  # noqa: BLE001 - this is the input that does not fit
                return gr.Error(f"`{name}` {upload}" if "File" in model.__name__
                                else f"`{name}` does not have the shape {endpoint} expects.")
    log.warning("%s: inputs refused before the handler ran: %r", endpoint, exc)
    return gr.Error(f"{endpoint} could not read its inputs ({', '.join(names)}); check their types against the "
                    "API documentation (README.md).")


class Blocks(gr.Blocks):
    """``gr.Blocks`` whose refusals of malformed requests reach clients as messages.

    Gradio checks a request before the handler runs (the number of inputs, file payloads and
    their paths, component payloads) and answers a failure with an opaque error (``{"error":
    null}`` / "upstream app has raised an exception"). Here that becomes a gr.Error naming the
    parameter; the handlers check everything else themselves (routing/safety/validation.py).
    """

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):  # noqa: ANN001 - Gradio's
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - anything else Gradio raises here is opaque to clients
            raise input_error(block_fn, inputs, exc) from exc


def caller_of(request: gr.Request | None, settings: Any) -> Caller:
    """Who sent this Gradio request (routing.safety.access.identify): a gateway key in the Authorization
    header, a user signed in with Gradio's login or with Hugging Face on a Space, else anonymous,
    counted by client address. A request with no Gradio context (a direct call) is anonymous."""
    headers = getattr(request, "headers", None) or {}
    client = getattr(request, "client", None)
    return identify(authorization=header(headers, "authorization"), api_keys=settings.api_keys,
                    username=getattr(request, "username", None) or None, hf_username=_hf_username(request),
                    client_host=getattr(client, "host", None))


def _hf_username(request: gr.Request | None) -> str | None:
    """The Hugging Face account signed in on a Space (Gradio keeps it in the session), else None."""
    try:
        info = request.request.session.get("oauth_info") or {}  # type: ignore[union-attr]
        if info.get("expires_at") is not None and info["expires_at"] < time.time():
            return None
        return (info.get("userinfo") or {}).get("preferred_username") or None
    except Exception:  # noqa: BLE001 - no session middleware (no HF sign-in here) or no request
        return None


def charge_paid(service: Any, request: gr.Request | None, calls: int) -> Caller:
    """Refuse (UserError) a caller who may not spend the owner's key, or has no paid calls left today;
    otherwise count ``calls`` against their day. Returns the caller."""
    caller = caller_of(request, service.settings)
    service.access.charge(caller, calls)
    return caller
