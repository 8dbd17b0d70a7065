"""What a reloaded pool keeps of the pool it replaces (``RouterService.reload_pool``).

Live OpenRouter prices (read once in the background) are carried to the new pool's models with the
same OpenRouter model name, and the health records (failures, cooldown, latencies) of the models
whose endpoint did not change carry over; a model that is new or points elsewhere starts afresh.
"""

from __future__ import annotations

from routing.pool import ModelPool, ModelSpec


def _endpoint(spec: ModelSpec) -> tuple:
    return spec.provider, spec.model_name, spec.base_url, spec.api_key_env


def unchanged_ids(old: ModelPool, new: ModelPool) -> list[str]:
    """Ids in both pools whose endpoint (provider, model name, base URL, key variable) is the same."""
    before = {m.id: _endpoint(m) for m in old.models}
    return [m.id for m in new.models if before.get(m.id) == _endpoint(m)]


def carry_live_prices(old: ModelPool, new: ModelPool) -> list[str]:
    """Give ``new``'s OpenRouter models the live prices ``old`` had read for the same model names;
    returns the ids updated. No request is made."""
    listing = [{"id": m.model_name, "context_length": m.context_length,
                "pricing": {"prompt": repr(m.input_price_per_m / 1e6), "completion": repr(m.output_price_per_m / 1e6)}}
               for m in old.models if m.provider == "openrouter" and m.price_source == "live"]
    return new.apply_live_prices(listing) if listing else []
