"""Fixtures the pytester tests of the plugin share: warm imports, and the local upstream in the
environment. A plugin module: list it in ``pytest_plugins``, never import it (pytest could not
rewrite its asserts)."""

from __future__ import annotations

import pytest

import apirecorder
from tests.upstream import Upstream


@pytest.fixture(scope="module")
def interceptors_imported(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Import every interceptor and client library before pytester snapshots sys.modules.

    pytester drops modules first imported during an inline run, so without this each run
    would import openai and the other SDKs again.
    """
    with apirecorder.recording("live", tmp_path_factory.mktemp("warm")):
        pass


@pytest.fixture
def env_upstream(upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> Upstream:
    """The local upstream's URL in ``$UPSTREAM``, and no apirecorder settings from outside."""
    monkeypatch.setenv("UPSTREAM", upstream.url)
    for name in ("APIRECORDER_MODE", "APIRECORDER_DIR", "APIRECORDER_DEBUG", "APIRECORDER_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return upstream
