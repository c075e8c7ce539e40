"""The reference's current OpenAI files replay through the real SDK, whichever generation of hash
rules named them: the previous generation's name is tried after a miss under the current one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urlparse

import openai
import pytest

import apirecorder

FIXTURES = Path(__file__).parent / "fixtures-2026" / "reference-2026"

#: The reference's OpenAI chat files: (file, which generation names it).
CHAT_FILES = {
    "008c7f9317b753a832cc8ccd2f0edb02c3f3e1c627674b60562eea08af29953d.json": "previous",
    "0886708d3ab00b528c88c7b002c3079bb9002f37afd2718eed71c90b04499c86.json": "current",
    "1a262fbe32d73640e235e9c8e5a07c152b0545a934de815eea118a006f619719.json": "current",
}


@pytest.mark.parametrize("name", CHAT_FILES)
def test_reference_chat_file_replays_through_the_sdk(name: str, tmp_path: Path) -> None:
    shutil.copy(FIXTURES / name, tmp_path / name)
    data = json.loads((FIXTURES / name).read_text())
    request = data["request"]
    url = request["url"]
    base = url[: -len(request["endpoint"])]  # what the client's base_url was
    client = openai.OpenAI(base_url=base, api_key="replay-needs-no-key", max_retries=0)
    with (
        apirecorder.recording("replay", tmp_path, block_network=True),
        apirecorder.test_context(data["test_id"]),
    ):
        stream = client.chat.completions.create(**request["body"])  # the call's kwargs (DESIGN 4)
        chunks = list(stream)
    recorded = data["response"]["body"]
    assert len(chunks) == len(recorded)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    expected = "".join(
        (c["__data__"]["choices"] or [{"delta": {}}])[0]["delta"].get("content") or ""
        for c in recorded
    )
    assert text == expected
    assert urlparse(url).path.endswith("/chat/completions")
