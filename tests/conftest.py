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


from benchmarks.harness import router_settings  # noqa: E402,F401 - defined there so benchmarks need no pytest


@pytest.fixture
def make_service(protocol_server, tmp_path):
    """Build a RouterService against the protocol server; keyword arguments override settings."""
    from routing.service import RouterService

    def build(**overrides):
        return RouterService(router_settings(protocol_server, tmp_path, **overrides), background=False)

    return build
