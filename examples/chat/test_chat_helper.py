"""Tests of the example application, replayed from recordings next to this file.

Record again with: pytest examples/chat --apirecorder-mode=record (needs OPENAI_API_KEY).
"""

from __future__ import annotations

import pytest
from chat_helper import ChatHelper

pytestmark = pytest.mark.apirecorder


def test_streamed_answer_arrives_in_pieces(helper: ChatHelper) -> None:
    pieces = list(helper.stream_answer("Which planet has rings?"))
    assert len(pieces) > 1
    assert "".join(pieces) == "Echo: Which planet has rings?"


def test_answer_joins_the_stream(helper: ChatHelper) -> None:
    assert helper.answer("Name a gas giant") == "Echo: Name a gas giant"


def test_embeddings_have_one_vector_per_text(helper: ChatHelper) -> None:
    vectors = helper.embed(["rings", "moons", "comets"])
    assert len(vectors) == 3
    assert len({len(v) for v in vectors}) == 1


def test_closest_document(helper: ChatHelper) -> None:
    documents = ["Saturn has rings", "Mars is red", "Jupiter is large"]
    assert helper.closest("Saturn has rings", documents) == "Saturn has rings"
