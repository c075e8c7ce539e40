"""The agent example's tests replay shipped recordings: no API key, no network.

To record them again against the real services (keys in ``OPENAI_API_KEY`` and
``TAVILY_API_KEY``), or against any compatible servers named by ``AGENT_OPENAI_BASE_URL``
and ``AGENT_TAVILY_BASE_URL``::

    pytest examples/agent --apirecorder-mode=record
"""

from __future__ import annotations

import os

import pytest
from agent import Agent


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Agent:
    """The agent as the application builds it; replay needs no key, so a placeholder does."""
    if not os.environ.get("OPENAI_API_KEY"):
        monkeypatch.setenv("OPENAI_API_KEY", "replay-needs-no-key")
    return Agent.from_environment()
