"""The OpenAI-compatible HTTP gateway (``/v1/*``), served beside the Gradio UI by ``app.py``.

HTTP layer only: requests are parsed and checked in :mod:`gateway.chat_request`, answered by
:class:`routing.router.Router`, and shaped like OpenAI's in :mod:`gateway.shapes`;
:func:`gateway.routes.gateway_router` holds the routes.
"""

from gateway.routes import exposure_warning, gateway_router, install_error_handlers

__all__ = ["gateway_router", "exposure_warning", "install_error_handlers"]
