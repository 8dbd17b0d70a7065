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
from routing.safety.access import owner_edit_refusal


def editing_refusal(settings: Any) -> str | None:
    """Why the routes cannot be edited here, or None when it can."""
    return owner_edit_refusal(settings, enabled=bool(settings.allow_route_edit), setting="ROUTER_ALLOW_ROUTE_EDIT", what="the routes",
                              risk="send every prompt to the model of their choice")


def require_editing(settings: Any) -> None:
    """Raise UserError (with :func:`editing_refusal`'s reason) unless the routes may be edited here."""
    refusal = editing_refusal(settings)
    if refusal:
        raise UserError(refusal)
