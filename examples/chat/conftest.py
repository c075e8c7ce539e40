"""The example's tests replay shipped recordings: no API key, no network."""

from __future__ import annotations

import os

import openai
import pytest
from chat_helper import ChatHelper


@pytest.fixture
def helper() -> ChatHelper:
    """A ChatHelper on a real OpenAI client (a key is only needed to record)."""
    client = openai.OpenAI(
        api_key=os.environ.get("OPENAI_API_KEY", "replay-needs-no-key"), max_retries=0
    )
    return ChatHelper(client)
