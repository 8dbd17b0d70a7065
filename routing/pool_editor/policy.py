"""Who may change the pool from the page: the owner, by setting ROUTER_ALLOW_POOL_EDIT=1.

Changing the pool decides where prompts (and an endpoint's key) are sent, and the endpoint test
makes the server fetch a URL, so both are refused unless the owner turned editing on, and also
where the app is reachable beyond this machine without a login (ROUTER_UI_USERS): on a public
page, "the owner" cannot be told from anyone else.
"""

from __future__ import annotations

from typing import Any

from routing.errors import UserError
from routing.safety.access import listens_publicly


def editing_refusal(settings: Any) -> str | None:
    """Why the pool cannot be edited here, or None when it can."""
    if not settings.allow_pool_edit:
        return ("Editing the pool is off on this deployment. The owner can turn it on by setting "
                "ROUTER_ALLOW_POOL_EDIT=1 and restarting the app (keep it off where strangers reach the page).")
    if listens_publicly(settings) and not settings.ui_users:
        return ("ROUTER_ALLOW_POOL_EDIT is on, but this app is reachable beyond this machine without a login: "
                "anyone could point the pool at their own server. Set ROUTER_UI_USERS (a login in front of "
                "everything) or serve it on localhost only, and restart the app.")
    return None


def require_editing(settings: Any) -> None:
    """Raise UserError (with :func:`editing_refusal`'s reason) unless the pool may be edited here."""
    refusal = editing_refusal(settings)
    if refusal:
        raise UserError(refusal)
