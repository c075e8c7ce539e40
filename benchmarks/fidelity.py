"""Check that apirecorder rebuilds recorded OpenAI objects exactly as the SDK builds them.

The SDK turns wire JSON into objects with ``openai._models.construct_type``. Replay may take
a faster road only if it lands on the same objects: same classes, same values of the same
Python types, same ``model_fields_set``, same extra fields. This module compares the two,
object by object, over a corpus: the reference fixtures in ``tests/fixtures`` plus a wide
range of calls recorded here through the OpenAI SDK against the local upstream (chat with
tools, n > 1, provider quirks, streams with usage, completions, embeddings in both
encodings, the Responses API streamed and not, model lists).

Run alone: ``.venv/bin/python benchmarks/fidelity.py``; ``run.py`` runs it first.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
from openai._models import construct_type
from pydantic import BaseModel

import apirecorder
from apirecorder._interceptors._openai import build as openai_build
from apirecorder._serialization import from_json, resolve_type

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from upstream import TRIGGER_400, TRIGGER_QUIRKS, TRIGGER_STREAM_ERROR, Upstream  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures"


def strict_difference(a: Any, b: Any, where: str = "$") -> str | None:
    """Where two rebuilt values differ in anything a user could observe, or None."""
    if type(a) is not type(b):
        return f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, BaseModel):
        if a.model_fields_set != b.model_fields_set:
            return (
                f"{where}: fields set differ by {sorted(a.model_fields_set ^ b.model_fields_set)}"
            )
        for attr in ("__dict__", "__pydantic_extra__", "__pydantic_private__"):
            found = strict_difference(getattr(a, attr), getattr(b, attr), f"{where}.{attr}")
            if found:
                return found
        return None
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            found = strict_difference(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list | tuple):
        if len(a) != len(b):
            return f"{where}: length {len(a)} != {len(b)}"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            found = strict_difference(x, y, f"{where}[{index}]")
            if found:
                return found
        return None
    return None if a == b else f"{where}: {a!r:.60} != {b!r:.60}"


def _typed_objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        type_path = value.get("__type__")
        if isinstance(type_path, str) and "__data__" in value:
            if type_path.startswith("openai."):
                yield value
            return
        for item in value.values():
            yield from _typed_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _typed_objects(item)


def check_files(paths: list[Path]) -> tuple[int, list[str]]:
    """Compare apirecorder's rebuild with the SDK's for every OpenAI object in ``paths``."""
    checked = 0
    problems: list[str] = []
    for path in paths:
        data = json.loads(path.read_bytes())
        for typed in _typed_objects(data.get("response")):
            cls = resolve_type(typed["__type__"])
            sdk = construct_type(type_=cls, value=json.loads(json.dumps(typed["__data__"])))
            ours = from_json(json.loads(json.dumps(typed)), source=path, build=openai_build)
            checked += 1
            found = strict_difference(sdk, ours)
            if found:
                problems.append(f"{path.name} {cls.__name__} {found}")
    return checked, problems


def _corpus_calls(client: Any) -> None:
    # Any: the wide range of calls here is not worth spelling in the SDK's TypedDicts.
    weather: dict[str, Any] = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        },
    }
    user = [{"role": "user", "content": "Weather in Paris for 3.14159265 days?"}]
    chat = client.chat.completions
    chat.create(model="gpt-4o", messages=user)
    chat.create(model="gpt-4o", messages=user, n=2, temperature=0.7)
    chat.create(model="gpt-4o", messages=user, tools=[weather])
    chat.create(model="gpt-4o", messages=[{"role": "user", "content": TRIGGER_QUIRKS}])
    list(chat.create(model="gpt-4o", messages=user, stream=True))
    list(
        chat.create(
            model="gpt-4o",
            messages=user,
            tools=[weather],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    failing = [{"role": "user", "content": TRIGGER_STREAM_ERROR}]
    with contextlib.suppress(openai.OpenAIError):
        list(chat.create(model="gpt-4o", messages=failing, stream=True))
    with contextlib.suppress(openai.OpenAIError):
        chat.create(model="gpt-4o", messages=[{"role": "user", "content": TRIGGER_400}])
    client.completions.create(model="gpt-4o-mini", prompt=["one", "two"])
    list(client.completions.create(model="gpt-4o-mini", prompt="three", stream=True))
    client.embeddings.create(model="text-embedding-3-small", input=["a", "b"], dimensions=16)
    client.embeddings.create(
        model="text-embedding-3-small", input="c", dimensions=16, encoding_format="float"
    )
    tool = {
        "type": "function",
        "name": "get_weather",
        "parameters": weather["function"]["parameters"],
    }
    client.responses.create(model="gpt-4o", input="Hello there")
    client.responses.create(model="gpt-4o", input="Weather?", tools=[tool])
    list(client.responses.create(model="gpt-4o", input="Stream me", stream=True))
    list(client.responses.create(model="gpt-4o", input="Weather?", tools=[tool], stream=True))
    list(client.models.list())


def record_corpus(folder: Path) -> list[Path]:
    """Record a wide range of OpenAI calls into ``folder``; return the files written."""
    with Upstream(volatile=False) as upstream:
        client = openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="sk-bench", max_retries=0)
        with (
            apirecorder.recording(mode="record", storage_dir=folder),
            apirecorder.test_context("benchmarks/fidelity.py::corpus"),
        ):
            _corpus_calls(client)
        client.close()
    return sorted(folder.glob("*.json"))


def run(extra: tuple[Path, ...] = ()) -> tuple[int, list[str]]:
    """Check the fixtures, a fresh corpus and ``extra`` files; (objects checked, problems)."""
    with tempfile.TemporaryDirectory(prefix="apirecorder-fidelity-") as tmp:
        paths = [*sorted(FIXTURES.rglob("*.json")), *record_corpus(Path(tmp)), *extra]
        return check_files(paths)


def main() -> int:
    checked, problems = run()
    for problem in problems[:20]:
        print(problem)
    print(f"fidelity: {checked} objects checked, {len(problems)} differ")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
