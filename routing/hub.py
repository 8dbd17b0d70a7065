"""Which provider answers for which pool model, built once and shared."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from routing.pool import ModelPool, ModelSpec
from routing.providers.base import ChatProvider
from routing.providers.openai_compat import OpenAICompatibleClient
from routing.safety.redact import register_pool, register_secret
from routing.settings import Settings

if TYPE_CHECKING:  # the local model pulls in torch; import it only where it is used
    from routing.providers.local_model import LocalModelProvider


class ProviderHub:
    """Creates (and caches) one HTTP client per endpoint and owns the local model."""

    def __init__(self, settings: Settings, pool: ModelPool, local: "LocalModelProvider | None" = None):
        self.settings = settings
        self.pool = pool
        self.local = local
        self._clients: dict[tuple[str, str | None], OpenAICompatibleClient] = {}
        self._lock = threading.Lock()
        # Keys are redacted from every text the app returns, stores or logs (routing/safety/redact.py).
        register_secret(settings.openrouter_api_key, "OPENROUTER_API_KEY")
        register_pool(pool.models)

    def _price_of(self, model_name: str) -> tuple[float, float] | None:
        spec = self.pool.spec_for_model_name(model_name)
        return (spec.input_price_per_m, spec.output_price_per_m) if spec else None

    def client(self, base_url: str, api_key: str | None, key_env: str | None = None, *,
               openrouter: bool = False) -> OpenAICompatibleClient:
        with self._lock:
            key = (base_url, api_key)
            if key not in self._clients:
                register_secret(api_key, key_env)
                headers = {"X-Title": "LLM Router"} if "openrouter.ai" in base_url else None
                self._clients[key] = OpenAICompatibleClient(
                    base_url, api_key,
                    connect_timeout=self.settings.connect_timeout,
                    read_timeout=self.settings.read_timeout,
                    attempt_timeout=self.settings.attempt_timeout,
                    max_response_bytes=self.settings.max_response_bytes,
                    max_retries=self.settings.max_retries,
                    extra_headers=headers,
                    prices=self._price_of,
                    key_env=key_env,
                    ask_usage_cost=openrouter,
                )
            return self._clients[key]

    def openrouter(self) -> OpenAICompatibleClient:
        return self.client(self.settings.openrouter_base_url, self.settings.openrouter_api_key,
                           "OPENROUTER_API_KEY", openrouter=True)

    def missing_key(self, spec: ModelSpec) -> str | None:
        """Why this model cannot be called right now, or None if it can."""
        if spec.provider == "openrouter" and not self.settings.openrouter_api_key:
            return "no OpenRouter key (set OPENROUTER_API_KEY)"
        if spec.provider == "openai_compatible" and spec.api_key_env and not os.environ.get(spec.api_key_env):
            return f"no key in {spec.api_key_env}"
        if spec.provider == "local" and self.local is None:
            return "the local model is turned off (ROUTER_LOCAL_MODEL=0)"
        return None

    def for_spec(self, spec: ModelSpec) -> ChatProvider:
        if spec.provider == "openrouter":
            return self.openrouter()
        if spec.provider == "openai_compatible":
            key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
            return self.client(spec.base_url or "", key, spec.api_key_env)
        if self.local is None:
            raise RuntimeError("the local model is turned off")
        return self.local
