"""Who may change the pool from the page: the owner, by setting ROUTER_ALLOW_POOL_EDIT=1.

Changing the pool decides where prompts (and an endpoint's key) are sent, and the endpoint test
makes the server fetch a URL, so both are refused unless the owner turned editing on, and also
where the app is reachable beyond this machine without a login (ROUTER_UI_USERS): on a public
page, "the owner" cannot be told from anyone else.
"""

from __future__ import annotations

from typing import Any

from routing.errors import UserError
from routing.safety.access import owner_edit_refusal


def editing_refusal(settings: Any) -> str | None:
    """Why the pool cannot be edited here, or None when it can."""
    return owner_edit_refusal(settings, enabled=bool(settings.allow_pool_edit), setting="ROUTER_ALLOW_POOL_EDIT", what="the pool",
                              risk="point the pool at their own server")


def require_editing(settings: Any) -> None:
    """Raise UserError (with :func:`editing_refusal`'s reason) unless the pool may be edited here."""
    refusal = editing_refusal(settings)
    if refusal:
        raise UserError(refusal)
