"""Shared pytest fixtures."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.protocol_server import ProtocolServer


@pytest.fixture(scope="module")
def server() -> Iterator[ProtocolServer]:
    """One protocol server shared by a test module (for modules that launch the app once)."""
    with ProtocolServer() as s:
        yield s


@pytest.fixture
def protocol_server() -> Iterator[ProtocolServer]:
    """A started local OpenAI-compatible server (see tests/protocol_server.py), stopped after."""
    with ProtocolServer() as server:
        yield server


def router_settings(server: ProtocolServer | None, tmp_path, **overrides):
    """Settings for a router whose 'OpenRouter' is the local protocol server (no local model)."""
    from routing.settings import Settings

    values = dict(openrouter_api_key="good", openrouter_base_url=server.base_url if server else "http://127.0.0.1:9/v1",
                  local_model_enabled=False, max_retries=0, read_timeout=3.0, connect_timeout=1.0,
                  live_prices=False, selector="rules", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_service(protocol_server, tmp_path):
    """Build a RouterService against the protocol server; keyword arguments override settings."""
    from routing.service import RouterService

    def build(**overrides):
        return RouterService(router_settings(protocol_server, tmp_path, **overrides), background=False)

    return build
