"""The pool as the Pool tab and the ``/pool`` endpoint show it: one row per model, no key values.

A model's key is shown as the *name* of its environment variable and whether it is set on the
server, never the value. Everything here is plain data; :func:`files_markdown` escapes the paths
it puts into Markdown.
"""

from __future__ import annotations

import os
from typing import Any

from routing.pool import ModelSpec
from routing.pool_editor.policy import editing_refusal
from routing.safety.untrusted import md_code
from routing.settings import pool_files

COLUMNS = ["id", "name", "provider", "model name", "endpoint", "key variable", "$/M in", "$/M out", "context",
           "evidence", "categories"]


def evidence_status(spec: ModelSpec) -> str:
    """What the model's ``evidence`` block gives the evidence prior, in a few words."""
    block = spec.evidence or {}
    ratings = block.get("ratings") if isinstance(block, dict) else None
    categories = (ratings or {}).get("categories") if isinstance(ratings, dict) else None
    if categories:
        when = ratings.get("snapshot")
        return f"rated in {len(categories)} categories" + (f" (snapshot {when})" if when else "")
    if block.get("unknown"):
        return "no public rating (taken as the pool's median)"
    return "no evidence (taken as the pool's median)"


def key_status(spec: ModelSpec, settings: Any) -> str:
    """The key's variable name and whether it is set (never its value)."""
    if spec.provider == "openrouter":
        return "OPENROUTER_API_KEY (" + ("set" if settings.openrouter_api_key else "not set") + ")"
    if spec.provider == "local":
        return "none (runs in-process)"
    if not spec.api_key_env:
        return "none"
    return f"{spec.api_key_env} (" + ("set" if os.environ.get(spec.api_key_env) else "not set") + ")"


def model_view(spec: ModelSpec, settings: Any) -> dict[str, Any]:
    return {"id": spec.id, "display_name": spec.display_name, "provider": spec.provider,
            "model_name": spec.model_name,
            "base_url": spec.base_url if spec.provider == "openai_compatible" else None,
            "api_key_env": spec.api_key_env if spec.provider == "openai_compatible" else None,
            "key": key_status(spec, settings),
            "input_price_per_m": spec.input_price_per_m, "output_price_per_m": spec.output_price_per_m,
            "price_source": spec.price_source, "context_length": spec.context_length, "strengths": spec.strengths,
            "categories": list(spec.categories), "evidence": evidence_status(spec),
            "editable_here": spec.provider == "openai_compatible"}


def pool_view(service: Any) -> dict[str, Any]:
    """The running pool, which file it came from, where edits go and whether they may be made here."""
    pool, settings = service.pool, service.settings   # one read of service.pool: a consistent snapshot
    files = pool_files(settings)
    refusal = editing_refusal(settings)
    return {"editable": refusal is None, "refusal": refusal, "live_file": pool.source,
            "base_file": str(files.base), "override_file": str(files.override),
            "overridden": files.overridden, "base_is_override": files.is_base_itself, "selector": service.selector.name,
            "models": [model_view(m, settings) for m in pool.models]}


def table_rows(view: dict[str, Any]) -> list[list[Any]]:
    """The Pool tab's table (plain-text cells) from :func:`pool_view`."""
    rows = []
    for m in view["models"]:
        endpoint = m["base_url"] or ("OpenRouter" if m["provider"] == "openrouter" else "in-process")
        price = "" if m["price_source"] == "file" else f" ({m['price_source']})"
        rows.append([m["id"], m["display_name"], m["provider"], m["model_name"], endpoint, m["key"],
                     f"{m['input_price_per_m']:g}{price}", f"{m['output_price_per_m']:g}{price}", m["context_length"],
                     m["evidence"], ", ".join(m["categories"])])
    return rows


def files_markdown(view: dict[str, Any]) -> str:
    """Which file is live and where edits go, as Markdown (paths in code spans)."""
    live = md_code(view["live_file"])
    if view["base_is_override"]:
        return (f"📄 **Live pool:** {live}. `ROUTER_MODELS_FILE` names the file edits are saved to, so edits "
                "rewrite it and there is no other pool to revert to.")
    if view["overridden"]:
        return (f"📄 **Live pool:** {live}, the copy edited on this page. It is loaded at start-up in place of "
                f"{md_code(view['base_file'])} (`ROUTER_MODELS_FILE`), which stays as it was; **Revert** deletes "
                "the edited copy and reloads that file.")
    if not view["editable"]:
        return f"📄 **Live pool:** {live}."
    return (f"📄 **Live pool:** {live}. Edits made here are saved to {md_code(view['override_file'])}, which "
            "is then the pool loaded at start-up; that file stays as it was.")
