"""The model pool: which models the router may pick, how to reach them, what they cost.

The pool is data (``assets/models.json`` or ``ROUTER_MODELS_FILE``); this module loads and
validates it, and can refresh prices from OpenRouter's public model listing.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass, field, replace, asdict
from pathlib import Path
from typing import Any, Callable, Iterable

from routing.categories import CATEGORIES
from routing.errors import PoolFileError, UnknownModelError

log = logging.getLogger(__name__)

PROVIDERS = ("openrouter", "openai_compatible", "local")
_REQUIRED = ("id", "provider", "model_name")


@dataclass(frozen=True)
class ModelSpec:
    """One model in the pool."""

    id: str
    display_name: str
    provider: str                    # one of PROVIDERS
    model_name: str                  # the provider's own name for the model
    input_price_per_m: float = 0.0   # USD per million input tokens
    output_price_per_m: float = 0.0  # USD per million output tokens
    context_length: int = 8192
    strengths: str = ""
    base_url: str | None = None      # openai_compatible only
    api_key_env: str | None = None   # env var holding that endpoint's key, if it needs one
    categories: tuple[str, ...] = ()  # prompt categories the rule-based selector sends here
    price_source: str = "file"       # "file" or "live"
    #: public evidence about the model (``routing.evidence``): ``{"ratings": {..., "categories":
    #: {category: [rating, low, high]}} | None, "list_price": {...}, "unknown": bool, ...}``
    evidence: dict | None = field(default=None, compare=False)

    @property
    def blended_price_per_m(self) -> float:
        """One price to compare models by: a 3:1 input:output token mix."""
        return (3 * self.input_price_per_m + self.output_price_per_m) / 4

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ModelPool:
    """An ordered, validated list of :class:`ModelSpec`. The order is the label order."""

    def __init__(self, models: Iterable[ModelSpec], source: str = "<memory>"):
        self._lock = threading.Lock()
        self._models = list(models)
        self.source = source
        if not self._models:
            raise PoolFileError(f"The model pool in {source} is empty: list at least one model.")
        ids = [m.id for m in self._models]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise PoolFileError(f"The model pool in {source} repeats ids: {', '.join(dupes)}.")

    @property
    def models(self) -> list[ModelSpec]:
        with self._lock:
            return list(self._models)

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.models]

    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self):
        return iter(self.models)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self.ids

    def get(self, model_id: str) -> ModelSpec:
        for m in self.models:
            if m.id == model_id:
                return m
        raise UnknownModelError(str(model_id), self.ids)

    def index(self, model_id: str) -> int:
        return self.ids.index(self.get(model_id).id)

    def best_rated(self) -> str | None:
        """The model with the highest overall public rating (its ``evidence``: LMArena's "full"
        category), first in pool order on a tie; None when no model carries one."""
        best, top = None, None
        for m in self.models:
            full = ((((m.evidence or {}).get("ratings") or {}).get("categories") or {}).get("full"))
            if full and (top is None or float(full[0]) > top):
                best, top = m.id, float(full[0])
        return best

    def prices(self) -> dict[str, float]:
        """Blended price per million tokens, by model id."""
        return {m.id: m.blended_price_per_m for m in self.models}

    def spec_for_model_name(self, model_name: str) -> ModelSpec | None:
        for m in self.models:
            if m.model_name == model_name:
                return m
        return None

    def apply_live_prices(self, listing: list[dict[str, Any]]) -> list[str]:
        """Replace file prices with OpenRouter listing prices; return the ids updated.

        ``listing`` is the ``data`` list of ``GET /models``: pricing is USD per token, as strings.
        """
        by_name = {item.get("id"): item for item in listing if isinstance(item, dict)}
        updated: list[str] = []
        with self._lock:
            new_models = []
            for m in self._models:
                item = by_name.get(m.model_name)
                if m.provider == "openrouter" and item and isinstance(item.get("pricing"), dict):
                    try:
                        p_in = float(item["pricing"].get("prompt")) * 1e6
                        p_out = float(item["pricing"].get("completion")) * 1e6
                    except (TypeError, ValueError):
                        new_models.append(m)
                        continue
                    if p_in >= 0 and p_out >= 0:
                        ctx = int(item.get("context_length") or m.context_length)
                        m = replace(m, input_price_per_m=round(p_in, 6), output_price_per_m=round(p_out, 6),
                                    context_length=ctx, price_source="live")
                        updated.append(m.id)
                new_models.append(m)
            self._models = new_models
        return updated

    def refresh_prices_in_background(self, fetch_listing: Callable[[], list[dict[str, Any]]]) -> threading.Thread:
        """Fetch the live listing in a daemon thread; failures are logged, never raised."""

        def run() -> None:
            try:
                updated = self.apply_live_prices(fetch_listing())
                log.info("live prices applied to %s", updated or "no model")
            except Exception as exc:  # noqa: BLE001 - a price refresh must never break the app
                log.warning("live prices unavailable, file prices stand: %s", exc)

        thread = threading.Thread(target=run, name="live-prices", daemon=True)
        thread.start()
        return thread


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _evidence_from_raw(evidence: Any, source: str, model_id: Any) -> dict | None:
    """Check a model's optional ``evidence`` block; keys it does not know are kept as they are."""
    if evidence is None:
        return None
    where = f"{source}: model {model_id!r} has an evidence block that"
    if not isinstance(evidence, dict):
        raise PoolFileError(f"{where} is not an object (got {type(evidence).__name__}).")
    ratings = evidence.get("ratings")
    if ratings is not None:
        if not isinstance(ratings, dict):
            raise PoolFileError(f"{where} has \"ratings\" neither an object nor null.")
        categories = ratings.get("categories")
        if categories is not None:
            if not isinstance(categories, dict):
                raise PoolFileError(f"{where} has \"ratings.categories\" that is not an object.")
            for category, value in categories.items():
                if not (isinstance(value, list) and len(value) == 3 and all(_is_number(v) for v in value)):
                    raise PoolFileError(f"{where} rates {category!r} as {value!r}; "
                                        "give [rating, ci95_low, ci95_high], three numbers.")
                rating, low, high = value
                if not low <= rating <= high:
                    raise PoolFileError(f"{where} rates {category!r} as {value!r}; "
                                        "it must hold low <= rating <= high.")
    price = evidence.get("list_price")
    if price is not None:
        if not isinstance(price, dict):
            raise PoolFileError(f"{where} has \"list_price\" that is not an object.")
        for key in ("input_usd_per_mtok", "output_usd_per_mtok"):
            if key in price and not (_is_number(price[key]) and price[key] >= 0):
                raise PoolFileError(f"{where} has list_price.{key} {price[key]!r}; give a number >= 0.")
    return evidence


def _spec_from_dict(raw: Any, source: str, position: int) -> ModelSpec:
    if not isinstance(raw, dict):
        raise PoolFileError(f"{source}: model #{position + 1} must be an object, got {type(raw).__name__}.")
    missing = [k for k in _REQUIRED if not str(raw.get(k) or "").strip()]
    if missing:
        raise PoolFileError(f"{source}: model #{position + 1} lacks {', '.join(missing)}.")
    provider = raw["provider"]
    if provider not in PROVIDERS:
        raise PoolFileError(
            f"{source}: model {raw['id']!r} has provider {provider!r}; use one of {', '.join(PROVIDERS)}."
        )
    categories = raw.get("categories") or []
    unknown = [c for c in categories if c not in CATEGORIES]
    if not isinstance(categories, list) or unknown:
        raise PoolFileError(
            f"{source}: model {raw['id']!r} lists unknown categories {unknown}; use {', '.join(CATEGORIES)}."
        )
    if provider == "openai_compatible" and not raw.get("base_url"):
        raise PoolFileError(f"{source}: model {raw['id']!r} is openai_compatible and needs a base_url.")
    evidence = _evidence_from_raw(raw.get("evidence"), source, raw["id"])
    try:
        return ModelSpec(
            id=str(raw["id"]).strip(),
            display_name=str(raw.get("display_name") or raw["id"]),
            provider=provider,
            model_name=str(raw["model_name"]),
            input_price_per_m=float(raw.get("input_price_per_m", 0.0)),
            output_price_per_m=float(raw.get("output_price_per_m", 0.0)),
            context_length=int(raw.get("context_length", 8192)),
            strengths=str(raw.get("strengths", "")),
            base_url=(str(raw["base_url"]).rstrip("/") if raw.get("base_url") else None),
            api_key_env=raw.get("api_key_env") or None,
            categories=tuple(categories),
            evidence=evidence,
        )
    except (TypeError, ValueError) as exc:
        raise PoolFileError(f"{source}: model {raw.get('id')!r} has a bad value: {exc}.") from exc


def load_pool(path: str | Path) -> ModelPool:
    """Load and validate a pool file; every problem is a :class:`PoolFileError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise PoolFileError(
            f"Model pool file {path} not found. Set ROUTER_MODELS_FILE to a JSON file like assets/models.json."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise PoolFileError(f"Model pool file {path} is not UTF-8 text.") from exc
    except json.JSONDecodeError as exc:
        raise PoolFileError(f"Model pool file {path} is not valid JSON: {exc.msg} (line {exc.lineno}).") from exc
    return pool_from_data(data, str(path))


def pool_from_data(data: Any, source: str) -> ModelPool:
    """A pool from a pool file's parsed JSON (``{"models": [...]}`` or the bare list), checked as :func:`load_pool`."""
    models = data.get("models") if isinstance(data, dict) else data
    if not isinstance(models, list):
        raise PoolFileError(f"Model pool file {source} must hold a list under \"models\".")
    return ModelPool([_spec_from_dict(m, source, i) for i, m in enumerate(models)], source=source)
