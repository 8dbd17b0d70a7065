"""What the benchmarks share with the tests, importable without pytest.

``router_settings`` builds :class:`routing.settings.Settings` for a router whose "OpenRouter"
is a local :class:`tests.protocol_server.ProtocolServer` (a standard-library-only module) and
which has no local model. ``tests/conftest.py`` re-exports it, so tests keep importing it from
``tests.conftest``; benchmark scripts import it from here.
"""

from __future__ import annotations

from typing import Any

from tests.protocol_server import ProtocolServer

__all__ = ["ProtocolServer", "router_settings"]


def router_settings(server: ProtocolServer | None, tmp_path, **overrides: Any):
    """Settings for a router whose 'OpenRouter' is the local protocol server (no local model)."""
    from routing.settings import Settings

    values = dict(openrouter_api_key="good", openrouter_base_url=server.base_url if server else "http://127.0.0.1:9/v1",
                  local_model_enabled=False, max_retries=0, read_timeout=3.0, connect_timeout=1.0,
                  live_prices=False, selector="rules", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    values.update(overrides)
    return Settings(**values)
