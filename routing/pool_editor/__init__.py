"""The pool from the page: edit the model pool, test an endpoint without spending, reload without a restart.

- ``edit``: validated edits (add or change an OpenAI-compatible endpoint model, remove a model,
  revert to the shipped pool), saved atomically to ``<ROUTER_DATA_DIR>/models.json`` (the
  override ``routing.settings.pool_files`` makes live) and swapped into the running service;
- ``probe``: the no-spend endpoint test (``GET {base_url}/models``; never a chat completion);
- ``view``: the pool as the Pool tab's table and the ``/pool`` endpoint show it (no key values);
- ``policy``: who may edit (:func:`editing_refusal`);
- ``reload``: what a reloaded pool keeps of the old one (live prices, health of unchanged models),
  used by ``RouterService.reload_pool``.

Owner-only: every change (and the endpoint test, which makes the server fetch a URL) is refused
unless ``ROUTER_ALLOW_POOL_EDIT=1``, and where the app is reachable beyond localhost without
``ROUTER_UI_USERS``. Imports the core and ``routing.safety``; never ``routing.service`` or Gradio
(the service is passed in).
"""

from routing.pool_editor.edit import NEW_MODEL, check_entry, remove_model, revert_pool, save_model
from routing.pool_editor.policy import editing_refusal, require_editing
from routing.pool_editor.probe import EndpointCheck, test_endpoint
from routing.pool_editor.view import pool_view

__all__ = ["NEW_MODEL", "check_entry", "editing_refusal", "require_editing", "save_model", "remove_model", "revert_pool",
           "EndpointCheck", "test_endpoint", "pool_view"]
