"""Who may change the routes from the page: the owner, by setting ROUTER_ALLOW_ROUTE_EDIT=1.

A route decides where prompts go (it can send every prompt about a subject to one model), so
changing one is refused unless the owner turned editing on, and also where the app is reachable
beyond this machine without a login (ROUTER_UI_USERS): on a public page, "the owner" cannot be told
from anyone else. The Pool tab's rule (``routing.pool_editor.policy``), with its own switch: testing
a prompt against the routes changes nothing and is open to everyone.
"""

from __future__ import annotations

from typing import Any

from routing.errors import UserError
from routing.safety.access import listens_publicly


def editing_refusal(settings: Any) -> str | None:
    """Why the routes cannot be edited here, or None when they can."""
    if not settings.allow_route_edit:
        return ("Editing the routes is off on this deployment. The owner can turn it on by setting "
                "ROUTER_ALLOW_ROUTE_EDIT=1 and restarting the app (keep it off where strangers reach the page).")
    if listens_publicly(settings) and not settings.ui_users:
        return ("ROUTER_ALLOW_ROUTE_EDIT is on, but this app is reachable beyond this machine without a login: "
                "anyone could send every prompt to the model of their choice. Set ROUTER_UI_USERS (a login in "
                "front of everything) or serve it on localhost only, and restart the app.")
    return None


def require_editing(settings: Any) -> None:
    """Raise UserError (with :func:`editing_refusal`'s reason) unless the routes may be edited here."""
    refusal = editing_refusal(settings)
    if refusal:
        raise UserError(refusal)
