"""The routes file: read, check and write ``ROUTER_ROUTES_FILE`` (default ``<ROUTER_DATA_DIR>/routes.json``).

Format::

    {"routes": [{"name": "legal",
                 "examples": ["Can my landlord keep my deposit?", ...],      # 3 to 10 prompts
                 "negatives": ["Write a courtroom drama scene", ...],         # optional, up to 10
                 "description": "Questions about the law",                   # optional
                 "target": "deepseek-r1"}]}                                  # a pool id, or
                                                                             # {"rule": "cheapest"}, or
                                                                             # {"exclude": ["deepseek-r1"]}

No file means no routes. Everything in it is checked before it is used (:func:`parse_routes`), and
every failure is a :class:`RoutesFileError` that names the route and the field: a file over 1 MB
(refused from its size, before it is read), JSON that does not parse, a route with fewer than 3 or
more than 10 examples, a repeated name or prompt, a target that is not a pool id. Writes go to a
temporary file beside it, then ``os.replace`` (:func:`write_routes`): a reader sees the old file
or the new, never half of one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from routing.errors import UserError
from routing.files import replace_bytes

MAX_FILE_BYTES = 1_000_000
MIN_EXAMPLES, MAX_EXAMPLES = 3, 10
MAX_NEGATIVES = 10
MAX_ROUTES = 50
MAX_NAME_CHARS = 64
MAX_PROMPT_CHARS = 2000
MAX_DESCRIPTION_CHARS = 500
RULE_CHEAPEST = "cheapest"
RULES = (RULE_CHEAPEST,)
ROUTE_KEYS = ("name", "examples", "negatives", "description", "target")


class RoutesFileError(UserError):
    """The routes file, or a route given to be saved, is malformed; the message names what and where."""


@dataclass(frozen=True)
class Target:
    """Where a matching route sends a prompt: one pool model, the cheapest callable model, or the
    selector's pick among the pool without ``exclude``."""

    model: str | None = None
    rule: str | None = None
    exclude: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return "model" if self.model else "rule" if self.rule else "exclude"

    def to_json(self) -> Any:
        if self.model:
            return self.model
        if self.rule:
            return {"rule": self.rule}
        return {"exclude": list(self.exclude)}

    def describe(self) -> str:
        if self.model:
            return self.model
        if self.rule == RULE_CHEAPEST:
            return "the cheapest callable model"
        return "the selector, without " + ", ".join(self.exclude)


@dataclass(frozen=True)
class Route:
    name: str
    examples: tuple[str, ...]
    target: Target
    negatives: tuple[str, ...] = ()
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "examples": list(self.examples)}
        if self.negatives:
            data["negatives"] = list(self.negatives)
        if self.description:
            data["description"] = self.description
        data["target"] = self.target.to_json()
        return data


_SPACES = re.compile(r"\s+")


def _key(text: str) -> str:
    """How two prompts are compared for repeats: case and runs of white space ignored."""
    return _SPACES.sub(" ", text).strip().casefold()


def _text(value: Any, where: str, max_chars: int, *, single_line: bool = False) -> str:
    if not isinstance(value, str):
        raise RoutesFileError(f"{where} must be text (got {type(value).__name__}).")
    value = value.strip()
    if not value:
        raise RoutesFileError(f"{where} is empty.")
    if len(value) > max_chars:
        raise RoutesFileError(f"{where} has {len(value):,} characters; the most is {max_chars:,}.")
    allowed = "" if single_line else "\n\t"
    bad = next((c for c in value if not c.isprintable() and c not in allowed), None)
    if bad is not None:
        raise RoutesFileError(f"{where} holds a control or invisible character (U+{ord(bad):04X}).")
    return value


def _prompts(value: Any, where: str, low: int, high: int) -> tuple[str, ...]:
    if value is None:
        value = []
    if not isinstance(value, list):
        raise RoutesFileError(f"{where} must be a list of prompts (got {type(value).__name__}).")
    texts = tuple(_text(v, f"{where}[{i + 1}]", MAX_PROMPT_CHARS) for i, v in enumerate(value))
    if not low <= len(texts) <= high:
        raise RoutesFileError(f"{where} has {len(texts)} prompt{'s' if len(texts) != 1 else ''}; give {low} to "
                              f"{high}" + (" (the route's threshold is calibrated from them, each example "
                                           "against the others)" if low else "") + ".")
    seen: dict[str, int] = {}
    for i, text in enumerate(texts):
        if _key(text) in seen:
            field = where.rpartition(": ")[2]
            raise RoutesFileError(f"{where}[{i + 1}] repeats {field}[{seen[_key(text)] + 1}]; give different prompts.")
        seen[_key(text)] = i
    return texts


def parse_target(value: Any, pool_ids: Sequence[str], where: str) -> Target:
    """A route's ``target``: a pool id, ``{"rule": "cheapest"}`` or ``{"exclude": [pool ids]}``."""
    ids = list(pool_ids)
    if isinstance(value, str):
        model = value.strip()
        if model not in ids:
            raise RoutesFileError(f"{where} {model!r} is not a pool model; use one of {', '.join(ids)}, "
                                  "{\"rule\": \"cheapest\"} or {\"exclude\": [...]}.")
        return Target(model=model)
    if isinstance(value, Mapping) and set(value) == {"rule"}:
        if value["rule"] not in RULES:
            raise RoutesFileError(f"{where} rule {value['rule']!r} is unknown; the rule is \"cheapest\".")
        return Target(rule=value["rule"])
    if isinstance(value, Mapping) and set(value) == {"exclude"}:
        excluded = value["exclude"]
        if not isinstance(excluded, list) or not excluded or not all(isinstance(m, str) for m in excluded):
            raise RoutesFileError(f"{where} exclude must be a non-empty list of pool ids.")
        unknown = [m for m in excluded if m not in ids]
        if unknown:
            raise RoutesFileError(f"{where} excludes {', '.join(map(repr, unknown))}, not in the pool "
                                  f"({', '.join(ids)}).")
        kept = tuple(dict.fromkeys(excluded))
        if len(kept) >= len(ids):
            raise RoutesFileError(f"{where} excludes every pool model: leave at least one for the selector.")
        return Target(exclude=kept)
    raise RoutesFileError(f"{where} must be a pool id, {{\"rule\": \"cheapest\"}} or {{\"exclude\": [pool ids]}}.")


def parse_route(entry: Any, pool_ids: Sequence[str], where: str = "the route") -> Route:
    """One route, every field checked against ``pool_ids``."""
    if not isinstance(entry, Mapping):
        raise RoutesFileError(f"{where} must be an object with name, examples and target.")
    unknown = [k for k in entry if k not in ROUTE_KEYS]
    if unknown:
        raise RoutesFileError(f"{where} has unknown field{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(map(repr, unknown))}; a route has {', '.join(ROUTE_KEYS)}.")
    name = _text(entry.get("name"), f"{where}: name", MAX_NAME_CHARS, single_line=True)
    where = f"route {name!r}"
    examples = _prompts(entry.get("examples"), f"{where}: examples", MIN_EXAMPLES, MAX_EXAMPLES)
    negatives = _prompts(entry.get("negatives"), f"{where}: negatives", 0, MAX_NEGATIVES)
    both = {_key(t) for t in examples} & {_key(t) for t in negatives}
    if both:
        raise RoutesFileError(f"{where}: a prompt is both an example and a negative ({next(iter(both))[:80]!r}).")
    description = entry.get("description") or ""
    if description:
        description = _text(description, f"{where}: description", MAX_DESCRIPTION_CHARS)
    if "target" not in entry:
        raise RoutesFileError(f"{where} has no target: a pool id, {{\"rule\": \"cheapest\"}} or "
                              "{\"exclude\": [pool ids]}.")
    target = parse_target(entry["target"], pool_ids, f"{where}: target")
    return Route(name=name, examples=examples, negatives=negatives, description=description, target=target)


def parse_routes(data: Any, pool_ids: Sequence[str], source: str = "the routes file") -> list[Route]:
    """Every route of ``{"routes": [...]}``, checked: names unique (case ignored), no prompt an example of
    two routes."""
    if not isinstance(data, Mapping) or not isinstance(data.get("routes"), list):
        raise RoutesFileError(f"{source} must hold an object with a list under \"routes\".")
    entries = data["routes"]
    if len(entries) > MAX_ROUTES:
        raise RoutesFileError(f"{source} has {len(entries)} routes; the most is {MAX_ROUTES}.")
    routes = [parse_route(entry, pool_ids, f"{source}: route {i + 1}") for i, entry in enumerate(entries)]
    check_unique(routes, source)
    return routes


def check_unique(routes: Iterable[Route], source: str = "the routes") -> None:
    names: dict[str, str] = {}
    owners: dict[str, str] = {}
    for route in routes:
        key = route.name.casefold()
        if key in names:
            raise RoutesFileError(f"{source}: two routes are named {route.name!r}; names must differ "
                                  "(case is ignored).")
        names[key] = route.name
        for text in route.examples:
            other = owners.setdefault(_key(text), route.name)
            if other != route.name:
                raise RoutesFileError(f"{source}: the prompt {text[:80]!r} is an example of both {other!r} and "
                                      f"{route.name!r}; a prompt can teach one route only.")


def read_data(path: Path | str) -> dict[str, Any] | None:
    """The routes file's JSON, unchecked beyond its size, encoding, syntax and ``{"routes": [...]}`` shape
    (None when there is no file). A file over :data:`MAX_FILE_BYTES` is refused from its size, unread."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RoutesFileError(f"Routes file {path} cannot be read: {exc.strerror or exc}.") from None
    if size > MAX_FILE_BYTES:
        raise RoutesFileError(f"Routes file {path} has {size:,} bytes; the most is {MAX_FILE_BYTES:,} (1 MB). "
                              "A route holds at most 10 examples and 10 negatives.")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)   # not a regular file (a pipe): no more than the limit
    except OSError as exc:
        raise RoutesFileError(f"Routes file {path} cannot be read: {exc.strerror or exc}.") from None
    if len(raw) > MAX_FILE_BYTES:
        raise RoutesFileError(f"Routes file {path} is over {MAX_FILE_BYTES:,} bytes (1 MB).")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RoutesFileError(f"Routes file {path} is not UTF-8 text.") from None
    except json.JSONDecodeError as exc:
        raise RoutesFileError(f"Routes file {path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                              f"column {exc.colno}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("routes"), list):
        raise RoutesFileError(f"Routes file {path} must hold an object with a list under \"routes\".")
    return data


def read_routes(path: Path | str, pool_ids: Sequence[str]) -> list[Route]:
    """The routes in ``path``, every one checked against ``pool_ids`` ([] when there is no file)."""
    data = read_data(path)
    return [] if data is None else parse_routes(data, pool_ids, f"Routes file {path}")


def routes_data(routes: Iterable[Route]) -> dict[str, Any]:
    return {"routes": [r.to_json() for r in routes]}


def write_routes(path: Path | str, routes: Sequence[Route]) -> None:
    """Write ``routes`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    content = (json.dumps(routes_data(routes), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if len(content) > MAX_FILE_BYTES:
        raise RoutesFileError(f"These routes would take {len(content):,} bytes; the file's limit is "
                              f"{MAX_FILE_BYTES:,} (1 MB).")
    replace_bytes(path, content)


__all__ = ["Route", "Target", "RoutesFileError", "parse_route", "parse_routes", "parse_target", "read_data",
           "read_routes",
           "write_routes", "routes_data", "check_unique", "replace_bytes", "MIN_EXAMPLES", "MAX_EXAMPLES",
           "MAX_NEGATIVES", "MAX_FILE_BYTES", "RULE_CHEAPEST"]
