"""Validated pool edits, saved atomically to the override file, then swapped into the running service.

One source of truth: the live pool file (``routing.settings.pool_files``: ``<ROUTER_DATA_DIR>/models.json``
when it exists, else ROUTER_MODELS_FILE / ``assets/models.json``) is read as JSON, the change is
made to that data (every other key of every entry, ``evidence`` blocks included, kept as it is),
the result is checked by :func:`routing.pool.pool_from_data` (the checks the app's start-up makes)
and written to the override with a temporary file and ``os.replace``; then
``service.reload_pool()`` swaps the new pool in. If the reload fails, the previous override (or
its absence) is put back: nothing is saved and the live pool is unchanged. The shipped file and
ROUTER_MODELS_FILE are never written.

The form's values are hostile until checked (:func:`check_entry`): ids and names without control
or invisible characters and of sane length, an ``http(s)`` base URL with a host (no credentials,
query or fragment), finite prices, and ``api_key_env`` the *name* of an environment variable
(``[A-Z_][A-Z0-9_]*``), never a key, and never one of the app's own secrets: the OpenRouter key
goes to OpenRouter models only.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from routing.categories import CATEGORIES
from routing.errors import PoolFileError, UserError
from routing.files import replace_bytes
from routing.pool import pool_from_data
from routing.router import LOCAL_ANSWERER
from routing.safety.validation import InvalidInput, check_float, check_int, show
from routing.pool_editor.policy import require_editing
from routing.pool_editor.view import pool_view
from routing.settings import PoolFiles, pool_files

#: The "Model to edit" choice (and ``edit_id=""`` in the API) that adds a model.
NEW_MODEL = "(add a new model)"

MAX_ID_CHARS = 64
MAX_NAME_CHARS = 100
MAX_MODEL_NAME_CHARS = 200
MAX_URL_CHARS = 500
MAX_STRENGTHS_CHARS = 500
MAX_ENV_CHARS = 100
#: USD per million tokens: the priciest models cost well under this.
MAX_PRICE_PER_M = 10_000.0
MAX_CONTEXT = 100_000_000
DEFAULT_CONTEXT = 8192

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
ENV_PATTERN = re.compile(r"[A-Z_][A-Z0-9_]*")
#: Ids that mean something else to the gateway (``model: "router"``) or the app (the local answerer).
RESERVED_IDS = {"router", LOCAL_ANSWERER}
#: Environment variables a page-edited model may not send as its key: the app's own secrets and settings.
RESERVED_ENV = {"OPENROUTER_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}
RESERVED_ENV_PREFIXES = ("ROUTER_", "GRADIO_", "OAUTH_")

#: One edit at a time (read, change, write, reload).
_EDIT_LOCK = threading.Lock()


# --------------------------------------------------------------------------- checking the form

def check_text(value: Any, name: str, max_chars: int, *, required: bool = True, no_spaces: bool = False,
               what: str = "") -> str | None:
    """A stripped single-line text of at most ``max_chars`` printable characters (None when empty and not
    ``required``); ``what`` says what to give when it is missing."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(name, f"{name} must be text (got {type(value).__name__} {show(value)}).")
    value = value.strip()
    if not value:
        if required:
            raise InvalidInput(name, f"{name} is empty: give {what or 'a value'}.")
        return None
    if len(value) > max_chars:
        raise InvalidInput(name, f"{name} must be at most {max_chars} characters (got {len(value):,}).")
    bad = next((c for c in value if not c.isprintable()), None)
    if bad is not None:
        raise InvalidInput(name, f"{name} holds a control or invisible character (U+{ord(bad):04X}); "
                                 "type it again without it.")
    if no_spaces and any(c.isspace() for c in value):
        raise InvalidInput(name, f"{name} must have no spaces (got {show(value)}).")
    return value


def check_model_name(value: Any, name: str = "model_name") -> str:
    return check_text(value, name, MAX_MODEL_NAME_CHARS, no_spaces=True,
                      what="the endpoint's own name for the model, e.g. llama3.2")


def check_model_id(value: Any, name: str = "model_id") -> str:
    model_id = check_text(value, name, MAX_ID_CHARS, what="a short id such as llama-local")
    if not ID_PATTERN.fullmatch(model_id):
        raise InvalidInput(name, f"{name} may hold letters, digits, '.', '_' and '-', starting with a letter or "
                                 f"digit (got {show(model_id)}).")
    if model_id.lower() in RESERVED_IDS:
        raise InvalidInput(name, f"{name} {model_id!r} is reserved ({', '.join(sorted(RESERVED_IDS))}): pick another.")
    return model_id


def check_base_url(value: Any, name: str = "base_url") -> str:
    """An ``http(s)://host[:port][/path]`` URL: no credentials, query or fragment; trailing ``/`` dropped."""
    url = check_text(value, name, MAX_URL_CHARS, no_spaces=True,
                     what="the endpoint's OpenAI-compatible base URL, e.g. http://localhost:11434/v1")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        raise InvalidInput(name, f"{name} {show(url)} is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(name, f"{name} must start with http:// or https:// (got {show(url)}).")
    if not parts.hostname:
        raise InvalidInput(name, f"{name} must name a host, e.g. http://localhost:11434/v1 (got {show(url)}).")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(name, f"{name} must not hold a user name or password; put the key in an environment "
                                 "variable and name it in api_key_env.")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InvalidInput(name, f"{name} must not have a query or fragment (got {show(url)}).")
    return url.rstrip("/")


def check_key_env(value: Any, name: str = "api_key_env") -> str | None:
    """The NAME of the environment variable holding the endpoint's key (None: no key)."""
    env = check_text(value, name, MAX_ENV_CHARS, required=False)
    if env is None:
        return None
    if not ENV_PATTERN.fullmatch(env):
        looks_like_key = len(env) >= 16 or env.lower().startswith("sk")
        raise InvalidInput(name, f"{name} must be the NAME of an environment variable (capital letters, digits "
                                 "and _, e.g. TOGETHER_API_KEY)" + (", never the key itself: set the key in that "
                                 "variable on the server" if looks_like_key else f" (got {show(env)})") + ".")
    if env in RESERVED_ENV or env.startswith(RESERVED_ENV_PREFIXES):
        raise InvalidInput(name, f"{name} may not be {env}: the app's own keys and settings are never sent to "
                                 "another endpoint (the OpenRouter key goes to OpenRouter models only). Name a "
                                 "variable that holds this endpoint's key.")
    return env


def check_categories(value: Any, name: str = "categories") -> list[str]:
    if value is None or value == "":
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(c, str) for c in value):
        raise InvalidInput(name, f"{name} must be a list of category names (got {show(value)}).")
    unknown = [c for c in value if c not in CATEGORIES]
    if unknown:
        raise InvalidInput(name, f"{name}: unknown {', '.join(repr(c) for c in unknown[:5])}; use "
                                 f"{', '.join(CATEGORIES)}.")
    return list(dict.fromkeys(value))


def check_entry(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The pool entry (``provider: openai_compatible``) a form or API call describes, every field checked.

    ``fields``: ``id``, ``display_name``, ``base_url``, ``model_name``, ``api_key_env``,
    ``input_price_per_m``, ``output_price_per_m`` (USD per million tokens; empty: 0),
    ``context_length`` (empty: 8192), ``strengths``, ``categories``. Raises InvalidInput naming the field.
    """
    model_id = check_model_id(fields.get("id"), "model_id")
    display_name = check_text(fields.get("display_name"), "display_name", MAX_NAME_CHARS, required=False) or model_id
    base_url = check_base_url(fields.get("base_url"))
    model_name = check_model_name(fields.get("model_name"))
    key_env = check_key_env(fields.get("api_key_env"))
    price_in = check_float(fields.get("input_price_per_m"), "input_price_per_m", 0.0, MAX_PRICE_PER_M, default=0.0)
    price_out = check_float(fields.get("output_price_per_m"), "output_price_per_m", 0.0, MAX_PRICE_PER_M, default=0.0)
    context = check_int(fields.get("context_length"), "context_length", 1, MAX_CONTEXT, default=DEFAULT_CONTEXT)
    strengths = check_text(fields.get("strengths"), "strengths", MAX_STRENGTHS_CHARS, required=False) or ""
    categories = check_categories(fields.get("categories"))
    return {"id": model_id, "display_name": display_name, "provider": "openai_compatible", "model_name": model_name,
            "base_url": base_url, "api_key_env": key_env, "input_price_per_m": price_in,
            "output_price_per_m": price_out, "context_length": context, "strengths": strengths,
            "categories": categories}


# --------------------------------------------------------------------------- the file

def read_pool_data(path: Path) -> dict[str, Any]:
    """The pool file's JSON as ``{"models": [...], ...other top-level keys}``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PoolFileError(f"Model pool file {path} not found.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoolFileError(f"Model pool file {path} cannot be read as JSON: {exc}.") from None
    if isinstance(data, list):
        data = {"models": data}
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise PoolFileError(f"Model pool file {path} must hold a list under \"models\".")
    return data


def write_atomically(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so a reader sees the old file or the new, never half of one."""
    replace_bytes(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def _commit(service: Any, files: PoolFiles, data: dict[str, Any]) -> str:
    """Check ``data`` as start-up would, save it to the override and reload the service; on any failure
    the previous override (or none) is put back and the live pool stays as it was. Returns the selector."""
    pool_from_data(data, str(files.override))   # the same checks as loading the file at start-up
    previous = files.override.read_bytes() if files.override.is_file() else None
    write_atomically(files.override, data)
    try:
        return service.reload_pool()
    except BaseException:
        if previous is None:
            files.override.unlink(missing_ok=True)
        else:
            replace_bytes(files.override, previous)
        raise


def _result(service: Any, message: str, selector: str, model_id: str | None) -> dict[str, Any]:
    notes = [w for w in service.warnings if w]
    return {"message": message, "model_id": model_id, "selector": selector, "warnings": notes,
            "pool": pool_view(service)}


# --------------------------------------------------------------------------- the edits

def save_model(service: Any, fields: Mapping[str, Any], edit_id: str | None = None) -> dict[str, Any]:
    """Add a model (``edit_id`` None or empty) or change the OpenAI-compatible model ``edit_id`` (its id
    may change too), save to the override and reload. Returns ``message``, ``selector``,
    ``warnings`` and the new ``pool`` view."""
    require_editing(service.settings)
    entry = check_entry(fields)
    edit_id = (edit_id or "").strip() or None
    if edit_id == NEW_MODEL:
        edit_id = None
    with _EDIT_LOCK:
        files = pool_files(service.settings)
        data = read_pool_data(files.live)
        models = data["models"]
        ids = [m.get("id") if isinstance(m, dict) else None for m in models]
        if entry["id"] in ids and entry["id"] != edit_id:
            raise InvalidInput("model_id", f"The pool already has a model with id {entry['id']!r}. "
                               + ("Pick another id." if edit_id else
                                  "Choose it under \"Model to edit\" to change it, or pick another id."))
        note = ""
        if edit_id is None:
            models.append(entry)
            what = f"Added {entry['id']}"
            note = (" The Ask tab lists it once the page is reloaded; the Compare tab's columns are the models "
                    "the app started with, so it gets a column there after a restart.")
        else:
            if edit_id not in ids:
                raise InvalidInput("edit_id", f"No model {edit_id!r} in the pool to edit (it has {', '.join(map(str, ids))}).")
            at = ids.index(edit_id)
            old = models[at]
            if old.get("provider") != "openai_compatible":
                raise UserError(f"{edit_id} is an {old.get('provider')} model: this page edits OpenAI-compatible "
                                "endpoint models. Remove it here, or edit the pool file by hand.")
            updated = dict(old)
            updated.update(entry)        # every other key (evidence, ...) kept as it was, in its place
            models[at] = updated
            if old.get("evidence") and old.get("model_name") != entry["model_name"]:
                note = (" Its evidence block was kept as it was, though the model name changed: "
                        "`python -m routing.evidence refresh` matches ratings to the new name.")
            what = f"Saved {entry['id']}" + (f" (was {edit_id})" if edit_id != entry["id"] else "")
        selector, size = _commit(service, files, data), len(service.pool)
    return _result(service, f"{what} to {files.override} and reloaded: the pool has {size} models; "
                            f"routing with {selector}.{note}", selector, entry["id"])


def remove_model(service: Any, model_id: Any) -> dict[str, Any]:
    """Remove ``model_id`` (any provider) from the pool, save to the override and reload."""
    require_editing(service.settings)
    if not isinstance(model_id, str) or not model_id.strip() or model_id.strip() == NEW_MODEL:
        raise InvalidInput("model_id", "Choose the model to remove.")
    model_id = model_id.strip()
    with _EDIT_LOCK:
        files = pool_files(service.settings)
        data = read_pool_data(files.live)
        models = data["models"]
        keep = [m for m in models if not (isinstance(m, dict) and m.get("id") == model_id)]
        if len(keep) == len(models):
            ids = [m.get("id") for m in models if isinstance(m, dict)]
            raise InvalidInput("model_id", f"No model {model_id!r} in the pool (it has {', '.join(map(str, ids))}).")
        if not keep:
            raise UserError(f"{model_id} is the pool's only model: add another before removing it.")
        data["models"] = keep
        selector, size = _commit(service, files, data), len(service.pool)
    return _result(service, f"Removed {model_id}; saved to {files.override} and reloaded: the pool has "
                            f"{size} models; routing with {selector}.", selector, model_id)


def revert_pool(service: Any) -> dict[str, Any]:
    """Delete the override and reload the base pool (ROUTER_MODELS_FILE, default the shipped file)."""
    require_editing(service.settings)
    with _EDIT_LOCK:
        files = pool_files(service.settings)
        if files.is_base_itself:
            raise UserError(f"ROUTER_MODELS_FILE names {files.override} itself: the page's edits are that file, "
                            "so there is no other pool to revert to.")
        if not files.override.is_file():
            raise UserError(f"The live pool is already {files.base}: nothing to revert.")
        pool_from_data(read_pool_data(files.base), str(files.base))   # never revert onto a file that fails
        previous = files.override.read_bytes()
        files.override.unlink()
        try:
            selector = service.reload_pool()
        except BaseException:
            replace_bytes(files.override, previous)
            raise
        size = len(service.pool)
    return _result(service, f"Reverted: deleted {files.override}; the pool is {files.base} again "
                            f"({size} models); routing with {selector}.", selector, None)
