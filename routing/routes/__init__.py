"""Routes from a few examples: a named route (3 to 10 example prompts, optional negatives, a target)
sends the prompts that mean the same thing to a model of its choosing, before the selector decides.

- ``store``: the routes file (``ROUTER_ROUTES_FILE``, default ``<ROUTER_DATA_DIR>/routes.json``): read,
  checked (clear errors naming the route and field), written atomically;
- ``matcher``: embeddings with the bundled MiniLM (the evidence prior's own instance), each route's
  threshold calibrated by leave-one-out on its examples and negatives, ``match(prompt)``;
- ``decision``: a matched route's target turned into the router's decision (a pool model, the cheapest
  callable model, or the selector among the pool without some models);
- ``edit``: adding, replacing and removing a route from the page, saved and reloaded without a restart;
  the Routes tab's view and its "Test a prompt";
- ``policy``: who may edit (the owner, ``ROUTER_ALLOW_ROUTE_EDIT=1``).

Imports the core, ``routing.selectors`` and ``routing.safety``; never ``routing.router``,
``routing.service`` or Gradio (the router and the service are passed in).
"""

from routing.routes.matcher import RouteMatch, RouteMatcher, RouteScore, route_encoder
from routing.routes.store import Route, RoutesFileError, Target, parse_routes, read_routes, write_routes

__all__ = ["Route", "Target", "RoutesFileError", "parse_routes", "read_routes", "write_routes", "RouteMatcher",
           "RouteMatch", "RouteScore", "route_encoder"]
