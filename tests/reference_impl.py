"""The reference recorder's request hashing, as expected behaviour for apirecorder's tests.

Source: repository llamastack/llama-stack, file src/ogx/testing/api_recorder.py, commits
0a9bf2ef860d8ccd34dae526deba468b4f214280 and 0df377abf730a3429d210bacc7a5e598e8f6f696 (the
hashing code is the same in both): ``_normalize_body_for_hash``,
``_normalize_file_search_metadata``, ``_normalize_numeric_literal_strings``,
``normalize_inference_request``, ``normalize_http_request``, ``normalize_tool_request``, and
the Databricks URL rewrite of ``_patched_inference_method``.

Transcribed rule by rule, including its quirks, rather than pasted: the test id is a
parameter here (the reference reads it from a ContextVar) and logging is left out. It shares
no code with apirecorder, so a test comparing the two proves apirecorder matches the
reference, not itself. Do not "fix" it: where it looks odd, the reference is odd.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import urlparse

FLOAT_IN_STRING = re.compile(r"(-?\d+\.\d{4,})")
SCORE = re.compile(r"score:\s*[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?")
ATTRIBUTES = re.compile(r",?\s*attributes:\s*\{[^}]*\}")
DOCUMENT_ID = re.compile(
    r"document_id:\s*[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}"
)
CITATION = re.compile(r"<\|[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}\|>")
MODEL_LIST_PATHS = ("/api/tags", "/v1/models", "/v1/openai/v1/models")


def normalize_string(text: str) -> str:
    text = SCORE.sub("score: __NORMALIZED__", text)
    text = ATTRIBUTES.sub("", text)
    text = DOCUMENT_ID.sub("document_id: __NORMALIZED__", text)
    text = CITATION.sub("<|__NORMALIZED__|>", text)
    return FLOAT_IN_STRING.sub(lambda m: f"{float(m.group(0)):.5f}", text)


def normalize_body(value: Any, exclude_stream_options: bool = False, is_root: bool = True) -> Any:
    if isinstance(value, dict):
        # Values are normalized with is_root False and exclude_stream_options left at False.
        out = {key: normalize_body(item, False, False) for key, item in value.items()}
        if exclude_stream_options and "stream_options" in out:
            del out["stream_options"]
        if is_root:
            for extra_key in ("extra_body", "extra_query"):
                extra = out.get(extra_key)
                if isinstance(extra, dict):
                    extra.pop("project_id", None)
        return out
    if isinstance(value, list):
        # List items are normalized with the defaults: each counts as a root again.
        return [normalize_body(item) for item in value]
    if isinstance(value, tuple):
        return tuple(normalize_body(item) for item in value)
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, str):
        return normalize_string(value)
    return value


def _sha256(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def rewrite_url(url: str) -> str:
    """What the inference patch does to a URL before hashing and recording it."""
    if "cloud.databricks.com" in url:
        return "__databricks__" + url.split("cloud.databricks.com")[-1]
    return url


def inference_hash(method: str, url: str, body: dict[str, Any], test_id: str | None) -> str:
    parsed = urlparse(url)
    key: dict[str, Any] = {
        "method": method.upper(),
        "endpoint": parsed.path,
        "body": normalize_body(body, exclude_stream_options="bedrock" in parsed.netloc),
    }
    if parsed.path not in MODEL_LIST_PATHS:
        key["test_id"] = test_id
    return _sha256(key)


def http_hash(url: str, method: str, payload: Any, test_id: str | None) -> str:
    return _sha256(
        {
            "test_id": test_id,
            "url": url,
            "method": method.upper(),
            "payload": normalize_body(payload),
        }
    )


def tool_hash(provider: str, tool_name: str, kwargs: dict[str, Any]) -> str:
    return _sha256({"provider": provider, "tool_name": tool_name, "kwargs": kwargs})
