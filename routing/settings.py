"""Every setting of the app, read from the environment in one place.

Other modules receive a :class:`Settings` (``get_settings()``) instead of reading
``os.environ`` themselves, so tests can build one with ``Settings.from_env({...})``.
The README's configuration table lists the same variables.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS_DIR = REPO_ROOT / "assets"
DEFAULT_MODELS_FILE = ASSETS_DIR / "models.json"
DEFAULT_SELECTOR_DIR = REPO_ROOT / "selector_model"
DEFAULT_LABEL_ENCODER = REPO_ROOT / "label_encoder.json"
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"

_TRUE = {"1", "true", "yes", "on"}


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in _TRUE


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return int(_float(env, name, default))


def _budget(env: Mapping[str, str], name: str = "ROUTER_DAILY_BUDGET_USD") -> float | None:
    value = _float(env, name, 0.0)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be 0 (none) or more dollars, got {value}")
    return value or None


def _share(env: Mapping[str, str], name: str) -> float:
    value = _float(env, name, 0.0)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a share from 0 to 1, got {value}")
    return value


def _paid_access(env: Mapping[str, str]) -> str:
    value = (env.get("ROUTER_PAID_ACCESS") or "auto").strip().lower()
    if value not in ("auto", "open", "signed-in"):
        raise ValueError(f"ROUTER_PAID_ACCESS must be auto, open or signed-in, got {value!r}")
    return value


def _users(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """ROUTER_UI_USERS as (name, password) pairs: "alice:pw1,bob:pw2" (a password may hold ':')."""
    users = []
    for item in (env.get("ROUTER_UI_USERS") or "").split(","):
        name, sep, password = item.strip().partition(":")
        if not item.strip():
            continue
        if not sep or not name.strip() or not password:
            raise ValueError("ROUTER_UI_USERS must be name:password pairs separated by commas")
        users.append((name.strip(), password))
    return tuple(users)



def _gain(env: Mapping[str, str]) -> float:
    value = _float(env, "ROUTER_GATE_MIN_GAIN", 0.10)
    if not math.isfinite(value) or not 0.0 < value <= 1.0:
        raise ValueError(f"ROUTER_GATE_MIN_GAIN must be a routed-quality gain above 0 and at most 1, got {value}")
    return value

@dataclass(frozen=True)
class Settings:
    """The app's configuration. Field comments name the environment variable."""

    openrouter_api_key: str | None = None          # OPENROUTER_API_KEY
    openrouter_base_url: str = "https://openrouter.ai/api/v1"  # OPENROUTER_BASE_URL
    models_file: Path = DEFAULT_MODELS_FILE        # ROUTER_MODELS_FILE
    selector: str = "auto"                         # ROUTER_SELECTOR: auto | learned | rules
    selector_dir: Path = DEFAULT_SELECTOR_DIR      # ROUTER_SELECTOR_DIR
    fast_path: str = "auto"                        # ROUTER_FAST_PATH: auto (int8 where checked) | off
    label_encoder_file: Path = DEFAULT_LABEL_ENCODER  # ROUTER_LABEL_ENCODER
    data_dir: Path = REPO_ROOT / "data"            # ROUTER_DATA_DIR (outcome log, batch results)
    cache_dir: Path = Path.home() / ".cache" / "llm-router"  # ROUTER_CACHE_DIR (local model cache)
    local_model_enabled: bool = True               # ROUTER_LOCAL_MODEL
    local_max_new_tokens: int = 200                # ROUTER_LOCAL_MAX_NEW_TOKENS
    max_prompt_chars: int = 20000                  # ROUTER_MAX_PROMPT_CHARS
    max_tokens: int = 1024                         # ROUTER_MAX_TOKENS (answer cap sent to providers)
    connect_timeout: float = 5.0                   # ROUTER_CONNECT_TIMEOUT (seconds)
    read_timeout: float = 60.0                     # ROUTER_READ_TIMEOUT (seconds)
    attempt_timeout: float = 45.0                  # ROUTER_ATTEMPT_TIMEOUT (seconds for one attempt, all of it)
    max_response_bytes: int = 2_000_000            # ROUTER_MAX_RESPONSE_BYTES (cap on one answer's body)
    max_retries: int = 2                           # ROUTER_MAX_RETRIES (per model, on 429/5xx/timeouts)
    max_fallbacks: int = 3                         # ROUTER_MAX_FALLBACKS (models tried after the first)
    deadline_s: float = 120.0                      # ROUTER_DEADLINE (seconds for one query, all tries)
    cooldown_failures: int = 3                     # ROUTER_COOLDOWN_FAILURES (consecutive failures)
    cooldown_s: float = 60.0                       # ROUTER_COOLDOWN (seconds a failing model rests)
    live_prices: bool = True                       # ROUTER_LIVE_PRICES (read OpenRouter's /models)
    compare_concurrency: int = 5                   # ROUTER_COMPARE_CONCURRENCY
    judge_model: str | None = None                 # ROUTER_JUDGE_MODEL (pool id of the LLM judge)
    queue_concurrency: int = 8                     # ROUTER_QUEUE_CONCURRENCY (Gradio workers per event)
    allow_training: bool = False                   # ROUTER_ALLOW_TRAINING (Training tab may run jobs)
    allow_pool_edit: bool = False                  # ROUTER_ALLOW_POOL_EDIT (Pool tab may edit the pool)
    allow_route_edit: bool = False                 # ROUTER_ALLOW_ROUTE_EDIT (Routes tab may edit the routes)
    escalate: bool = False                         # ROUTER_ESCALATE (ask the next model up when unsure or weak)
    escalate_margin: float = 0.05                  # ROUTER_ESCALATE_MARGIN (top-two predicted-quality gap)
    escalate_min_score: float = 0.45               # ROUTER_ESCALATE_MIN_SCORE (evaluator score, 0-1)
    routes_file: Path | None = None                # ROUTER_ROUTES_FILE (None: <ROUTER_DATA_DIR>/routes.json)
    batch_max_rows: int = 10000                    # ROUTER_BATCH_MAX_ROWS
    batch_max_mb: float = 20.0                     # ROUTER_BATCH_MAX_MB
    api_keys: tuple[str, ...] = ()                 # ROUTER_API_KEYS (comma-separated gateway keys for /v1/*)
    metrics_token: str | None = None               # ROUTER_METRICS_TOKEN (GET /metrics needs it as a bearer token)
    daily_budget_usd: float | None = None          # ROUTER_DAILY_BUDGET_USD (paid calls stop past it; UTC day)
    gateway_concurrency: int = 200                 # ROUTER_GATEWAY_CONCURRENCY (/v1 requests worked on at once)
    log_answers: bool = True                       # ROUTER_LOG_ANSWERS (every answer -> the outcome log, scored)
    shadow_rate: float = 0.0                       # ROUTER_SHADOW_RATE (share of answers also asked of a 2nd model)
    shadow_budget_usd: float | None = None         # ROUTER_SHADOW_BUDGET_USD (per UTC day; shadows need it)
    holdout_share: float = 0.15                    # ROUTER_HOLDOUT_SHARE (logged prompts held out to test retrains)
    retrain_every: int = 0                         # ROUTER_RETRAIN_EVERY (new outcome rows per automatic retrain)
    retrain_strategy: str = "auto"                 # ROUTER_RETRAIN_STRATEGY: auto | knn | cluster | linear | finetune
    gate_min_paired: int = 30                      # ROUTER_GATE_MIN_PAIRED (floor: paired test prompts an automatic promotion needs)
    gate_min_gain: float = 0.10                    # ROUTER_GATE_MIN_GAIN (routed-quality gain the gate must see with 80% power)
    rater_share: float = 0.05                      # ROUTER_RATER_SHARE (most training rows one rater's ratings weigh together)
    paid_access: str = "auto"                      # ROUTER_PAID_ACCESS: auto | open | signed-in (routing/safety/access.py)
    ui_users: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # ROUTER_UI_USERS ("name:password,..."; Gradio's login)
    hf_oauth: bool = False                         # OAUTH_CLIENT_ID set (a Space with hf_oauth: true)
    visitor_daily_calls: int | None = None         # ROUTER_VISITOR_DAILY_CALLS (paid calls per caller per UTC day; 0: no limit; unset: 100 when public)
    server_name: str = "127.0.0.1"                 # GRADIO_SERVER_NAME (the host the app listens on)
    on_spaces: bool = False                        # SYSTEM=spaces (Hugging Face Spaces set it)
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        key = (env.get("OPENROUTER_API_KEY") or "").strip() or None
        return cls(
            openrouter_api_key=key,
            openrouter_base_url=(env.get("OPENROUTER_BASE_URL") or cls.openrouter_base_url).rstrip("/"),
            models_file=Path(env.get("ROUTER_MODELS_FILE") or DEFAULT_MODELS_FILE),
            selector=(env.get("ROUTER_SELECTOR") or "auto").strip().lower(),
            selector_dir=Path(env.get("ROUTER_SELECTOR_DIR") or DEFAULT_SELECTOR_DIR),
            fast_path="off" if (env.get("ROUTER_FAST_PATH") or "auto").strip().lower() == "off" else "auto",
            label_encoder_file=Path(env.get("ROUTER_LABEL_ENCODER") or DEFAULT_LABEL_ENCODER),
            data_dir=Path(env.get("ROUTER_DATA_DIR") or REPO_ROOT / "data"),
            cache_dir=Path(env.get("ROUTER_CACHE_DIR") or Path.home() / ".cache" / "llm-router"),
            local_model_enabled=_bool(env.get("ROUTER_LOCAL_MODEL"), True),
            local_max_new_tokens=_int(env, "ROUTER_LOCAL_MAX_NEW_TOKENS", 200),
            max_prompt_chars=_int(env, "ROUTER_MAX_PROMPT_CHARS", 20000),
            max_tokens=_int(env, "ROUTER_MAX_TOKENS", 1024),
            connect_timeout=_float(env, "ROUTER_CONNECT_TIMEOUT", 5.0),
            read_timeout=_float(env, "ROUTER_READ_TIMEOUT", 60.0),
            attempt_timeout=_float(env, "ROUTER_ATTEMPT_TIMEOUT", 45.0),
            max_response_bytes=_int(env, "ROUTER_MAX_RESPONSE_BYTES", 2_000_000),
            max_retries=_int(env, "ROUTER_MAX_RETRIES", 2),
            max_fallbacks=_int(env, "ROUTER_MAX_FALLBACKS", 3),
            deadline_s=_float(env, "ROUTER_DEADLINE", 120.0),
            cooldown_failures=_int(env, "ROUTER_COOLDOWN_FAILURES", 3),
            cooldown_s=_float(env, "ROUTER_COOLDOWN", 60.0),
            live_prices=_bool(env.get("ROUTER_LIVE_PRICES"), True),
            compare_concurrency=_int(env, "ROUTER_COMPARE_CONCURRENCY", 5),
            judge_model=(env.get("ROUTER_JUDGE_MODEL") or "").strip() or None,
            queue_concurrency=_int(env, "ROUTER_QUEUE_CONCURRENCY", 8),
            allow_training=_bool(env.get("ROUTER_ALLOW_TRAINING"), False),
            allow_pool_edit=_bool(env.get("ROUTER_ALLOW_POOL_EDIT"), False),
            allow_route_edit=_bool(env.get("ROUTER_ALLOW_ROUTE_EDIT"), False),
            escalate=_bool(env.get("ROUTER_ESCALATE"), False),
            escalate_margin=_float(env, "ROUTER_ESCALATE_MARGIN", 0.05),
            escalate_min_score=_float(env, "ROUTER_ESCALATE_MIN_SCORE", 0.45),
            routes_file=(Path(env["ROUTER_ROUTES_FILE"].strip())
                         if (env.get("ROUTER_ROUTES_FILE") or "").strip() else None),
            batch_max_rows=_int(env, "ROUTER_BATCH_MAX_ROWS", 10000),
            batch_max_mb=_float(env, "ROUTER_BATCH_MAX_MB", 20.0),
            api_keys=tuple(k.strip() for k in (env.get("ROUTER_API_KEYS") or "").split(",") if k.strip()),
            metrics_token=(env.get("ROUTER_METRICS_TOKEN") or "").strip() or None,
            daily_budget_usd=_budget(env),
            gateway_concurrency=max(1, _int(env, "ROUTER_GATEWAY_CONCURRENCY", 200)),
            log_answers=_bool(env.get("ROUTER_LOG_ANSWERS"), True),
            shadow_rate=_share(env, "ROUTER_SHADOW_RATE"),
            shadow_budget_usd=_budget(env, "ROUTER_SHADOW_BUDGET_USD"),
            holdout_share=_share(env, "ROUTER_HOLDOUT_SHARE") if env.get("ROUTER_HOLDOUT_SHARE") else 0.15,
            retrain_every=max(0, _int(env, "ROUTER_RETRAIN_EVERY", 0)),
            retrain_strategy=(env.get("ROUTER_RETRAIN_STRATEGY") or "auto").strip().lower(),
            gate_min_paired=max(2, _int(env, "ROUTER_GATE_MIN_PAIRED", 30)),
            gate_min_gain=_gain(env),
            rater_share=_share(env, "ROUTER_RATER_SHARE") if env.get("ROUTER_RATER_SHARE") else 0.05,
            paid_access=_paid_access(env),
            ui_users=_users(env),
            hf_oauth=bool((env.get("OAUTH_CLIENT_ID") or "").strip()),
            visitor_daily_calls=(max(0, _int(env, "ROUTER_VISITOR_DAILY_CALLS", 0))
                                 if (env.get("ROUTER_VISITOR_DAILY_CALLS") or "").strip() else None),
            server_name=(env.get("GRADIO_SERVER_NAME") or "127.0.0.1").strip(),
            on_spaces=(env.get("SYSTEM") or "").strip().lower() == "spaces",
        )



#: The folder under ROUTER_DATA_DIR that retrained selectors are written to and promoted in.
TRAINED_SELECTOR = "selector"


@dataclass(frozen=True)
class SelectorFolders:
    """Where the selector is read from and where training writes one (:func:`selector_folders`)."""

    live: Path              # the folder the app loads the learned selector from
    live_encoder: Path      # its label encoder
    target: Path            # the folder training writes candidates beside and promotes into
    target_encoder: Path | None   # the label encoder a promotion publishes (None: the folder's own copy)
    shipped: Path | None    # the shipped selector the gate compares with while ``target`` holds none


def is_shipped_selector(folder: Path | str) -> bool:
    """Whether ``folder`` is the selector shipped in the code checkout (``selector_model/``)."""
    try:
        return Path(folder).resolve() == Path(DEFAULT_SELECTOR_DIR).resolve()
    except OSError:
        return False


def is_shipped_encoder(path: Path | str) -> bool:
    """Whether ``path`` is the checkout's ``label_encoder.json`` (which training never writes)."""
    try:
        return Path(path).resolve() == Path(DEFAULT_LABEL_ENCODER).resolve()
    except OSError:
        return False


def selector_folders(settings: "Settings") -> SelectorFolders:
    """The selector's folders: retrained selectors live under ROUTER_DATA_DIR, never in the checkout.

    ``ROUTER_SELECTOR_DIR`` set to a folder other than the checkout's ``selector_model/`` is an
    explicit override: the app reads it, and training writes and promotes there (with
    ``ROUTER_LABEL_ENCODER``). Otherwise training writes and promotes in
    ``<ROUTER_DATA_DIR>/selector/`` (its own ``label_encoder.json`` beside it), and the app loads
    that folder when it holds a model, else the shipped ``selector_model/``, which nothing the app
    does ever writes.
    """
    if not is_shipped_selector(settings.selector_dir):
        folder, encoder = Path(settings.selector_dir), Path(settings.label_encoder_file)
        if is_shipped_encoder(encoder):   # ROUTER_LABEL_ENCODER not set: the folder's own copy, once it has one
            own = folder / "label_encoder.json"
            return SelectorFolders(folder, own if own.is_file() else encoder, folder, None, None)
        return SelectorFolders(folder, encoder, folder, encoder, None)
    trained = Path(settings.data_dir) / TRAINED_SELECTOR
    encoder = trained / "label_encoder.json"
    if (trained / "config.json").is_file() and encoder.is_file():
        return SelectorFolders(trained, encoder, trained, None, Path(settings.selector_dir))
    return SelectorFolders(Path(settings.selector_dir), Path(settings.label_encoder_file), trained, None,
                           Path(settings.selector_dir))

#: The pool file under ROUTER_DATA_DIR that the Pool tab writes; when present, it is the pool the app loads.
POOL_OVERRIDE = "models.json"


@dataclass(frozen=True)
class PoolFiles:
    """Which pool file is live and which the Pool tab writes (:func:`pool_files`)."""

    live: Path       # the file the app loads: ``override`` when it exists, else ``base``
    base: Path       # ROUTER_MODELS_FILE (default assets/models.json): what "revert" returns to
    override: Path   # <ROUTER_DATA_DIR>/models.json: where edits from the page are saved

    @property
    def overridden(self) -> bool:
        """Whether the live pool is the page's edited copy (not ``base``)."""
        return self.live == self.override and not self.is_base_itself

    @property
    def is_base_itself(self) -> bool:
        """ROUTER_MODELS_FILE names the override path itself: edits write the owner's own file, and there
        is nothing to revert to."""
        try:
            return self.base.resolve() == self.override.resolve()
        except OSError:
            return False


def pool_files(settings: "Settings") -> PoolFiles:
    """The pool files: edits made on the Pool tab live in ``<ROUTER_DATA_DIR>/models.json``, never in the
    checkout (or in ROUTER_MODELS_FILE). That file, when present, is the pool the app loads, whether
    ROUTER_MODELS_FILE is set or not; ROUTER_MODELS_FILE (default ``assets/models.json``) is the base
    the first edit starts from and what "revert" (deleting the override) returns to.
    """
    override = Path(settings.data_dir) / POOL_OVERRIDE
    base = Path(settings.models_file)
    return PoolFiles(override if override.is_file() else base, base, override)


#: The routes file under ROUTER_DATA_DIR, unless ROUTER_ROUTES_FILE names another (routing/routes/).
ROUTES_FILE = "routes.json"


def routes_path(settings: "Settings") -> Path:
    """The routes file: ROUTER_ROUTES_FILE, else ``<ROUTER_DATA_DIR>/routes.json``; no file means no routes."""
    return Path(settings.routes_file) if settings.routes_file else Path(settings.data_dir) / ROUTES_FILE


def get_settings() -> Settings:
    """Settings from the current environment."""
    return Settings.from_env()
