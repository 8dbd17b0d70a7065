"""The endpoint test that spends nothing: ``GET {base_url}/models``, and is the model in the list?

It goes through the app's own client (``ProviderHub``: the settings' timeouts, the listing timeout
the Status tab's probe uses) with the key the app would send: the value of the entry's
``api_key_env``, or none. The OpenRouter key is never sent (``routing.pool_editor.edit`` refuses it
as ``api_key_env``, and an ``openai_compatible`` model takes its key from ``api_key_env`` only).
No chat completion is ever sent: where the endpoint does not list its models, the result says
that a test would need a real, possibly paid, call, which this does not make.

The result's ``message`` is plain text that may quote the endpoint (its model names, its error):
escape it before Markdown renders it (``routing.safety.untrusted.md_text``).
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from routing.errors import ProviderError
from routing.hub import ProviderHub
from routing.pool import ModelPool, ModelSpec
from routing.pool_editor.edit import check_base_url, check_key_env, check_model_name
from routing.pool_editor.policy import require_editing

#: Seconds to wait for the listing: what the Status tab's probe waits (``OpenAICompatibleClient.probe``).
LISTING_TIMEOUT_S = 3.0
#: Model names of the listing quoted in a result (each cut to 100 characters).
SHOWN_NAMES = 10

#: ``state`` values: the model is listed / the list lacks it / there is no list / the key was
#: refused / the endpoint could not be reached / it answered with another error.
STATES = ("listed", "not_listed", "no_listing", "refused", "unreachable", "error")


@dataclass
class EndpointCheck:
    """What the test found. ``ok``: the endpoint lists the model."""

    state: str
    ok: bool
    message: str
    base_url: str
    model_name: str
    listed: list[str] = field(default_factory=list)   # a few of the endpoint's model names
    chat_requests: int = 0                               # always 0: nothing is spent

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sentence(text: str) -> str:
    """``text`` ending in one full stop (or its own ``?``/``!``)."""
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else text + "."


def _short(name: Any) -> str:
    text = str(name)
    return text if len(text) <= 100 else text[:97] + "..."


def test_endpoint(settings: Any, fields: Mapping[str, Any]) -> EndpointCheck:
    """Test ``fields``' ``base_url``, ``model_name`` and ``api_key_env`` without spending anything.

    Refused (UserError) unless the pool may be edited here: the test makes the server fetch a URL.
    """
    require_editing(settings)
    base_url = check_base_url(fields.get("base_url"))
    model_name = check_model_name(fields.get("model_name"))
    key_env = check_key_env(fields.get("api_key_env"))
    spec = ModelSpec(id="endpoint-test", display_name="endpoint test", provider="openai_compatible",
                     model_name=model_name, base_url=base_url, api_key_env=key_env)
    hub = ProviderHub(settings, ModelPool([spec], source="the Pool tab's form"))
    missing = hub.missing_key(spec)
    client = hub.for_spec(spec)   # the client the router would use for this model
    host = urlsplit(base_url).netloc
    key_note = (f" Note: {missing}, so the router cannot call this model until the owner sets it on the server "
                "(the listing was asked without a key)." if missing else "")
    result = dict(base_url=base_url, model_name=model_name)
    try:
        listing = client.list_models(timeout=LISTING_TIMEOUT_S)
    except ProviderError as exc:
        return _failed(exc, host, base_url, key_env, key_note, result)
    finally:
        client.close()
    names = [str(m.get("id")) for m in listing if m.get("id") is not None]
    shown = [_short(n) for n in names[:SHOWN_NAMES]]
    if model_name in names:
        return EndpointCheck("listed", True, f"{host} lists {model_name}: the endpoint answers and has the model. "
                             "No chat request was sent: nothing was spent." + key_note, listed=shown, **result)
    close = difflib.get_close_matches(model_name, names, n=3, cutoff=0.6)
    hint = (" Did you mean " + " or ".join(_short(c) for c in close) + "?") if close else ""
    listed = (f" It lists {len(names)}: " + ", ".join(shown) + (", ..." if len(names) > len(shown) else "") + "."
              if names else " Its list is empty.")
    return EndpointCheck("not_listed", False, f"{host} answers, but does not list {model_name}.{hint}{listed} "
                         "Check the model name (the endpoint's own name for it). No chat request was sent."
                         + key_note, listed=shown, **result)


def _failed(exc: ProviderError, host: str, base_url: str, key_env: str | None, key_note: str,
            result: dict[str, Any]) -> EndpointCheck:
    # A 2xx that is not a model list (the client's "malformed" errors) counts as no list: the endpoint
    # answered, but not with one.
    not_a_list = exc.status in (404, 405, 501) or (exc.status is not None and exc.status < 400) or (
        exc.status is None and exc.message.startswith("malformed model list"))
    if not_a_list:
        return EndpointCheck(
            "no_listing", False,
            f"{host} does not list its models (GET {base_url}/models: {exc.message}). Testing this model would "
            "need a real chat request, which may be paid; this test does not make one. You can still save the "
            "model: its first answer (or the Status tab) shows whether it works." + key_note, **result)
    if exc.status in (401, 403):
        fix = (f"check the key in {key_env} on the server" if key_env else
               "it needs a key: set it in an environment variable on the server and name that variable in "
               "api_key_env")
        return EndpointCheck("refused", False, f"{host} refused the model list (HTTP {exc.status}): {fix}. "
                             f"({exc.message})" + key_note, **result)
    if exc.status is None:
        return EndpointCheck("unreachable", False, f"Could not reach {host}: {_sentence(exc.message)} Check the base URL and "
                             "that the server is running and reachable from this app's machine." + key_note, **result)
    return EndpointCheck("error", False, f"{host} answered the model list with an error: {_sentence(exc.message)} Try "
                         "again later." + key_note, **result)
