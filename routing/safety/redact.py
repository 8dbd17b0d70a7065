"""API keys never leave the app: their values are replaced by ``[redacted NAME]`` in text.

The secrets are the value of ``OPENROUTER_API_KEY`` and of every variable a pool entry names in
``api_key_env`` (read from the environment at each use, so a changed key is still covered), plus
any key registered with :func:`register_secret` (the hub registers every key it sends, also one
given in ``Settings`` rather than the environment). Values shorter than
:data:`MIN_SECRET_CHARS` are ignored: replacing ``"abc"`` everywhere would mangle ordinary text.

Where it is applied (the boundaries text crosses on its way out):

* :class:`routing.errors.ProviderError` redacts its message when it is made, so a provider that
  echoes the ``Authorization`` header in its error body cannot relay the key into fallbacks,
  health rows, batch rows or UI messages;
* the outcome log redacts every row before writing it (and again when reading old rows);
* every Gradio endpoint's return value, streamed frames and error message (``ui.common``);
* logging: a record factory (installed on import) redacts each record's message, exception
  text and stack as the record is made, so every logger and handler gets the clean text
  (a ``logging.Filter`` on a logger would not see records propagated from child loggers).
  The record keeps its shape (``msg`` and each of ``args`` redacted in place): uvicorn's access
  formatter unpacks ``record.args`` and would fail on a record flattened to ``args=None``.

A key cut short by truncation (provider bodies are clipped to a few hundred characters) is
redacted too when at least its first :data:`PARTIAL_MIN_CHARS` characters are there.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Iterable

__all__ = ["redact", "redact_data", "stream_safe", "register_secret", "register_secret_env", "register_pool",
           "secrets", "SecretFilter", "install_log_redaction", "MIN_SECRET_CHARS", "OPENROUTER_KEY_ENV"]

OPENROUTER_KEY_ENV = "OPENROUTER_API_KEY"
MIN_SECRET_CHARS = 8
PARTIAL_MIN_CHARS = 16

_lock = threading.Lock()
_registered: dict[str, str] = {}           # value -> name
_env_names: set[str] = {OPENROUTER_KEY_ENV}


def _usable(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if len(value) >= MIN_SECRET_CHARS else None


def register_secret(value: str | None, name: str | None) -> None:
    """Treat ``value`` as a secret shown as ``[redacted name]`` (ignored when empty or short)."""
    value = _usable(value)
    if value:
        with _lock:
            _registered.setdefault(value, name or "API key")
        install_log_redaction()


def register_secret_env(name: str | None) -> None:
    """Treat the value of environment variable ``name`` as a secret (whatever it is when text is redacted)."""
    if name:
        with _lock:
            _env_names.add(str(name))
        install_log_redaction()


def register_pool(pool: Iterable[Any]) -> None:
    """Every pool entry's ``api_key_env``."""
    for spec in pool:
        register_secret_env(getattr(spec, "api_key_env", None))


def secrets() -> list[tuple[str, str]]:
    """``(value, name)`` of every secret known now, longest first."""
    with _lock:
        pairs = dict(_registered)
        names = sorted(_env_names)
    for name in names:
        value = _usable(os.environ.get(name))
        if value:
            pairs[value] = name  # the variable's name says more than a registration's label
    return sorted(pairs.items(), key=lambda vn: -len(vn[0]))


def _redact(text: str, pairs: list[tuple[str, str]]) -> str:
    for value, name in pairs:
        label = f"[redacted {name}]"
        if value in text:
            text = text.replace(value, label)
        if len(value) > PARTIAL_MIN_CHARS:
            head = value[:PARTIAL_MIN_CHARS]
            start = text.find(head)
            while start != -1:
                end = start + PARTIAL_MIN_CHARS
                while end < len(text) and end - start < len(value) and text[end] == value[end - start]:
                    end += 1
                text = text[:start] + label + text[end:]
                start = text.find(head, start + len(label))
    return text


def redact(text: Any) -> Any:
    """``text`` with every secret replaced by ``[redacted NAME]``; non-strings come back unchanged."""
    if not isinstance(text, str) or not text:
        return text
    pairs = secrets()
    return _redact(text, pairs) if pairs else text


def _walk(obj: Any, pairs: list[tuple[str, str]]) -> Any:
    if isinstance(obj, str):
        return _redact(obj, pairs) if obj else obj
    if isinstance(obj, dict):
        return {_walk(k, pairs): _walk(v, pairs) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_walk(v, pairs) for v in obj]
    if type(obj) is tuple:
        return tuple(_walk(v, pairs) for v in obj)
    if type(obj).__name__ == "DataFrame" and type(obj).__module__.startswith("pandas"):
        from pandas.api.types import is_object_dtype, is_string_dtype

        clean = obj.copy()
        for i in range(clean.shape[1]):
            column = clean.iloc[:, i]
            if is_object_dtype(column.dtype) or is_string_dtype(column.dtype):
                clean.isetitem(i, column.map(lambda v: _walk(v, pairs), na_action="ignore"))
        clean.columns = [_walk(c, pairs) for c in clean.columns]
        return clean
    return obj


def redact_data(obj: Any) -> Any:
    """A copy of ``obj`` (str, dict, list, tuple, pandas DataFrame, nested) with every string redacted.

    Other objects (numbers, figures, Gradio updates' non-text values) come back as they are.
    """
    pairs = secrets()
    return _walk(obj, pairs) if pairs else obj


def stream_safe(text: str) -> str:
    """What of a growing (streamed) ``text`` can be shown now: redacted, without a trailing part
    that may be the start of a secret still arriving (it is shown once it is complete, redacted)."""
    pairs = secrets()
    if not pairs or not text:
        return text
    clean = _redact(text, pairs)
    hold = 0
    for value, _ in pairs:
        for k in range(min(len(value) - 1, len(clean)), hold, -1):
            if clean.endswith(value[:k]):
                hold = k
                break
    return clean[:-hold] if hold else clean


# ---------------------------------------------------------------------- logging


def _clean_arg(value: Any, pairs: list[tuple[str, str]]) -> Any:
    """``value`` redacted: a string in place; another object only when its text holds a secret
    (then it becomes that text, redacted)."""
    if isinstance(value, str):
        return _redact(value, pairs)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    try:
        texts = (str(value), repr(value))
    except Exception:  # noqa: BLE001 - an argument that cannot be shown cannot leak through the message
        return value
    if any(_redact(t, pairs) != t for t in texts):
        return _redact(texts[0], pairs)
    return value


def _redact_record(record: logging.LogRecord) -> None:
    """Redact ``record`` in place, keeping its shape: ``msg`` and each of ``args`` are redacted one
    by one, so formatters that read ``record.args`` themselves (uvicorn's access log unpacks a
    5-tuple) still work. Only when a secret survives that (one split between the format string and
    an argument, say) does the record become its redacted message with no args."""
    pairs = secrets()
    if not pairs:
        return
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is logging's business, not ours
        return
    clean = _redact(message, pairs)
    if clean != message:
        record.msg = _redact(record.msg, pairs) if isinstance(record.msg, str) else _clean_arg(record.msg, pairs)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean_arg(a, pairs) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean_arg(v, pairs) for k, v in record.args.items()}
        try:
            redone = record.getMessage()
        except Exception:  # noqa: BLE001 - e.g. "%d" of an argument that became text
            redone = None
        if redone is None or _redact(redone, pairs) != redone:
            record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        clean = _redact(text, pairs)
        if clean != text:  # handlers use a record's exc_text as it is; otherwise they format it themselves
            record.exc_text = clean
    elif record.exc_text:
        record.exc_text = _redact(record.exc_text, pairs)
    if record.stack_info:
        record.stack_info = _redact(record.stack_info, pairs)


class SecretFilter(logging.Filter):
    """Redacts secrets in each record it sees (attach to a handler); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


_factory_installed = False


def install_log_redaction() -> None:
    """Redact every log record as it is made, for every logger and handler (idempotent)."""
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


install_log_redaction()
