"""A small application: answer questions (streamed) and find the closest document."""

from __future__ import annotations

import math
from collections.abc import Iterator

import openai


class ChatHelper:
    """Streams answers from a chat model and ranks documents by embedding similarity."""

    def __init__(self, client: openai.OpenAI, model: str = "gpt-4o-mini") -> None:
        self.client = client
        self.model = model

    def stream_answer(self, question: str) -> Iterator[str]:
        """Yield the answer to ``question`` piece by piece, as the model writes it."""
        stream = self.client.chat.completions.create(
            model=self.model,
            messages=[
                {"role": "system", "content": "Answer in one short sentence."},
                {"role": "user", "content": question},
            ],
            temperature=0.2,
            stream=True,
        )
        with stream:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

    def answer(self, question: str) -> str:
        """The whole answer to ``question``."""
        return "".join(self.stream_answer(question))

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One embedding vector per text."""
        response = self.client.embeddings.create(model="text-embedding-3-small", input=texts)
        return [item.embedding for item in response.data]

    def closest(self, query: str, documents: list[str]) -> str:
        """The document whose embedding is nearest to the query's."""
        query_vector, *doc_vectors = self.embed([query, *documents])
        scores = [_cosine(query_vector, vector) for vector in doc_vectors]
        return documents[scores.index(max(scores))]


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
