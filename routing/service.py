"""The app's back end in one object: pool, selector, providers, router, built from Settings.

``app.py`` only wires Gradio components to these methods; tests call them directly.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any, Sequence

from routing.safety.access import Caller, PaidAccess, PaidAccessError
from routing.budget import SpendLedger, is_paid
from routing.errors import UserError
from routing.evaluation.sandbox import sandbox_status
from routing.health import RECENT_CALLS, SEED_MAX_AGE_S
from routing.hub import ProviderHub
from routing.learning import Learning
from routing.learning.outcome_log import OutcomeLog
from routing.safety.redact import register_secret
from routing.pool import ModelPool, load_pool
from routing.pool_editor.reload import carry_live_prices, unchanged_ids
from routing.router import LOCAL_ANSWERER, QueryResult, Router
from routing.routes import RouteMatcher, read_routes
from routing.selectors import load_selector
from routing.settings import Settings, get_settings, pool_files, routes_path, selector_folders

log = logging.getLogger(__name__)


class RouterService:
    """Everything a request needs, created once per process."""

    def __init__(self, settings: Settings | None = None, *, background: bool = True):
        self.settings = settings or get_settings()
        # <ROUTER_DATA_DIR>/models.json (the Pool tab's edits) when it exists, else ROUTER_MODELS_FILE
        self.pool: ModelPool = load_pool(pool_files(self.settings).live)
        self.selector, selector_warning = load_selector(self._selector_settings(), self.pool)
        self.warnings: list[str] = [selector_warning] if selector_warning else []
        self._lasting_warnings: list[str] = []   # add_warning's: kept when the selector reloads
        # Routes from examples (routing/routes/): a file that fails its checks is not used, and says so.
        self.routes, self.routes_warning = self._load_routes(self.pool)
        if self.routes_warning:
            self.warnings.append(self.routes_warning)
        for key in self.settings.api_keys:
            register_secret(key, "ROUTER_API_KEYS")
        self.local = self._make_local()
        self.hub = ProviderHub(self.settings, self.pool, self.local)
        self.ledger = SpendLedger.for_settings(self.settings)
        self.access = PaidAccess.for_settings(self.settings)  # who may spend the key (routing/safety/access.py)
        self.router = Router(self.pool, self.selector, self.hub, self.settings, ledger=self.ledger, routes=self.routes)
        self.router.warnings = self.warnings
        self.outcome_log = OutcomeLog.for_settings(self.settings)
        # The latency knob starts from the answer times the log holds (a new process has measured
        # none): whole answers, and time to the first token for streaming requests.
        for first_token in (False, True):
            self.router.health.seed_latencies(
                self.outcome_log.recent_latencies(RECENT_CALLS, SEED_MAX_AGE_S, first_token=first_token),
                first_token=first_token)
        self.learning = Learning(self.settings, self.router, self.outcome_log, self.pool, reload=self.reload_selector)
        if background:
            self.start_background_work()

    #: One reload at a time (a selector promoted by training, a pool saved on the Pool tab).
    _reload_lock = threading.Lock()

    def reload_selector(self) -> str:
        """Load the selector again (after training promoted a new model); returns its name."""
        with self._reload_lock:
            selector, warning = load_selector(self._selector_settings(), self.pool)
            self.selector = self.router.selector = selector
            self.warnings[:] = ([warning] if warning else []) + self._lasting_warnings + self._routes_warnings()
        return selector.name

    def reload_pool(self) -> str:
        """Load the live pool file again (after an edit on the Pool tab) and swap in what is built on it:
        pool, selector, provider hub, router, learning's references; returns the selector's name.

        Everything new is built first, then whole references are swapped: a request in flight finishes
        on the router (pool, selector, hub) it started with. The spend ledger, access rule, local model
        and outcome log stay; live prices and the health of models whose endpoint did not change carry
        over (routing/pool_editor/reload.py). Raises (PoolFileError, UserError) with nothing swapped.
        """
        with self._reload_lock:
            pool = load_pool(pool_files(self.settings).live)
            carry_live_prices(self.pool, pool)
            selector, warning = load_selector(self._selector_settings(), pool)
            routes, self.routes_warning = self._load_routes(pool)   # targets checked against the new pool
            hub = ProviderHub(self.settings, pool, self.local)
            router = Router(pool, selector, hub, self.settings, ledger=self.ledger,
                            health=self.router.health.carried_over(unchanged_ids(self.pool, pool)), routes=routes)
            router.warnings = self.warnings
            self.pool, self.selector, self.hub, self.router, self.routes = pool, selector, hub, router, routes
            self.learning.recorder.pool = pool
            self.learning.shadow.router = router
            self.warnings[:] = ([warning] if warning else []) + self._lasting_warnings + self._routes_warnings()
        log.info("pool reloaded from %s: %s (selector %s)", pool.source, ", ".join(pool.ids), selector.name)
        return selector.name

    def _load_routes(self, pool: ModelPool) -> tuple[RouteMatcher, str | None]:
        """The routes file's routes, embedded and calibrated for ``pool``; with a warning and no routes
        when the file fails its checks (the app still starts and routes with the selector)."""
        path = routes_path(self.settings)
        try:
            return RouteMatcher(read_routes(path, pool.ids), settings=self.settings, source=str(path)), None
        except UserError as exc:
            log.warning("routes not used: %s", exc)
            return RouteMatcher([], source=str(path)), f"Routes are off until the file is fixed: {exc}"
        except Exception as exc:  # noqa: BLE001 - the encoder failed to load: the app still routes
            log.exception("routes not used")
            return RouteMatcher([], source=str(path)), f"Routes are off: they could not be loaded ({exc})."

    def _routes_warnings(self) -> list[str]:
        return [self.routes_warning] if self.routes_warning else []

    def reload_routes(self) -> RouteMatcher:
        """Read the routes file again (after an edit on the Routes tab) and swap the new routes in; raises
        RoutesFileError with nothing swapped when the file fails its checks. Answers already being routed
        finish with the routes they started with."""
        with self._reload_lock:
            path = routes_path(self.settings)
            routes = RouteMatcher(read_routes(path, self.pool.ids), settings=self.settings, source=str(path))
            self.routes = self.router.routes = routes
            if self.routes_warning in self.warnings:
                self.warnings.remove(self.routes_warning)
            self.routes_warning = None
        log.info("routes reloaded from %s: %s", path, ", ".join(r.name for r in routes.routes) or "none")
        return routes

    def _selector_settings(self) -> Settings:
        """The settings the selector loads with: the folder a retrained selector was promoted in
        (``<ROUTER_DATA_DIR>/selector/``) when it holds one, else the shipped ``selector_model/``;
        ``ROUTER_SELECTOR_DIR`` set elsewhere is read as it is (``routing.settings.selector_folders``)."""
        folders = selector_folders(self.settings)
        return dataclasses.replace(self.settings, selector_dir=folders.live, label_encoder_file=folders.live_encoder)

    def add_warning(self, text: str) -> None:
        """A warning shown on the page and with each answer for the process's lifetime."""
        if text not in self._lasting_warnings:
            self._lasting_warnings.append(text)
            self.warnings.append(text)

    def _make_local(self):
        if not self.settings.local_model_enabled:
            return None
        from routing.providers.local_model import LocalModelProvider

        return LocalModelProvider(cache_dir=self.settings.cache_dir / "local-model",
                                  max_new_tokens=self.settings.local_max_new_tokens)

    def start_background_work(self) -> None:
        """Live prices and (without a key) the local model load, neither blocking start-up. Offline
        (no OpenRouter key) nothing reaches out for prices: no paid call will use them."""
        if (self.settings.live_prices and self.settings.openrouter_api_key
                and any(m.provider == "openrouter" for m in self.pool)):
            client = self.hub.openrouter()
            self.pool.refresh_prices_in_background(lambda: client.list_models(timeout=3.0))
        if self.local is not None and not self.settings.openrouter_api_key:
            self.local.start_loading()

    # ------------------------------------------------------------------ API
    @staticmethod
    def _exclude(exclude: Sequence[str] | str | None) -> list[str]:
        if not exclude:
            return []
        if isinstance(exclude, str):
            return [e.strip() for e in exclude.split(",") if e.strip()]
        return [str(e) for e in exclude]

    def query(self, prompt: str, cost_weight: float = 0.0, exclude: Sequence[str] | str | None = None,
              max_tokens: int | None = None, latency_weight: float = 0.0, *,
              router: Router | None = None) -> dict[str, Any]:
        result = (router or self.router).ask(prompt, cost_weight=cost_weight, exclude=self._exclude(exclude),
                                 max_tokens=max_tokens, latency_weight=latency_weight)
        self.learning.after_answer(prompt, result, source="query")
        return result.to_dict()

    def router_for_key(self, key: str | None) -> Router:
        """The router, or (given a visitor's own OpenRouter key) one that answers with that key.

        The key is used for this call only: never stored or logged, and redacted from every text
        the app shows. Its calls do not count against the owner's daily limit, and its failures
        do not rest the owner's models.
        """
        key = (key or "").strip()
        if not key:
            return self.router
        if len(key) > 300 or any(c.isspace() or not c.isprintable() for c in key):
            raise UserError("That does not look like an API key (OpenRouter keys start with \"sk-or-\" and have "
                            "no spaces). Paste the key again, or clear the field to use the app's own.")
        settings = dataclasses.replace(self.settings, openrouter_api_key=key)
        live = self.router   # one reference: a pool reloaded meanwhile cannot mix into this router
        hub = ProviderHub(settings, live.pool, self.local)  # registers the key for redaction
        router = Router(live.pool, live.selector, hub, settings, ledger=SpendLedger(None, None), routes=live.routes)
        router.warnings = self.warnings
        return router

    @property
    def spends_owner_money(self) -> bool:
        """Whether answers can cost the owner anything: a paid pool model with a key to call it."""
        return any(is_paid(m) and (m.provider != "openrouter" or self.settings.openrouter_api_key) for m in self.pool)

    def router_for(self, caller: Caller, own_key: str | None = None, *, calls: int = 1,
                   local_instead: bool = False) -> tuple[Router, str | None]:
        """The router a caller's paid request runs on, and a notice when it is not the usual one.

        A visitor's own OpenRouter key: their own router (nothing of the owner's is spent). Else the
        access rule (routing/safety/access.py) decides and ``calls`` paid calls are counted against the
        caller's day; a caller it refuses gets the keyless router (local model answers) when
        ``local_instead`` and the local model exists, else PaidAccessError saying how to get access.
        """
        if (own_key or "").strip():
            return self.router_for_key(own_key), None
        if not self.spends_owner_money or self.access.allows(caller):
            self.admit(caller, calls)
            return self.router, None
        if local_instead and self.local is not None:
            return self.keyless_router(), self.access.refusal()
        raise PaidAccessError(self.access.refusal())

    def admit(self, caller: Caller, calls: int = 1) -> None:
        """Let ``caller`` spend the owner's key on ``calls`` paid calls (counted against their day), or
        raise PaidAccessError / VisitorLimitError. Nothing to check where nothing costs the owner."""
        if self.spends_owner_money:
            self.access.charge(caller, calls)

    def keyless_router(self) -> Router:
        """A router without the owner's key: routing decisions are real, answers come from the local
        model (what an anonymous visitor gets where paid models are for signed-in callers)."""
        settings = dataclasses.replace(self.settings, openrouter_api_key=None)
        live = self.router   # one reference: a pool reloaded meanwhile cannot mix into this router
        router = Router(live.pool, live.selector, ProviderHub(settings, live.pool, self.local), settings,
                        ledger=SpendLedger(None, None), routes=live.routes)
        router.warnings = self.warnings
        return router

    def query_specific(self, prompt: str, model: str, max_tokens: int | None = None, *,
                       router: Router | None = None) -> dict[str, Any]:
        if not model or not str(model).strip():
            raise UserError(f"Choose a model: one of {', '.join(self.pool.ids)}.")
        result = (router or self.router).ask(prompt, model=str(model).strip(), max_tokens=max_tokens)
        self.learning.after_answer(prompt, result, source="query-specific")
        return result.to_dict()

    def status(self) -> dict[str, Any]:
        local = self.local.status() if self.local else {"state": "off"}
        return {
            "selector": self.selector.name,
            "models": self.pool.ids,
            "pool_file": self.pool.source,
            "openrouter_key": bool(self.settings.openrouter_api_key),
            "openrouter_base_url": self.settings.openrouter_base_url,
            "local_model": {"id": LOCAL_ANSWERER, **local},
            "code_sandbox": self.code_sandbox(),
            "spend": self.ledger.summary(),
            "learning": self.learning.summary(),
            "warnings": list(self.warnings),
            # decisions this process made on prompts unlike the selector's training data (the prior's novelty check)
            "unlike_training_data": dict(getattr(self.selector, "counts", None) or {}) or None,
        }

    @staticmethod
    def code_sandbox() -> dict[str, Any]:
        """Whether the evaluator can run answer code in the OS sandbox here, and why not."""
        status = sandbox_status()
        return {"available": status.available, "mode": status.mode, "reason": status.reason,
                "summary": status.describe()}

    def health(self) -> list[dict[str, Any]]:
        return self.router.health_report()


__all__ = ["RouterService", "QueryResult"]
