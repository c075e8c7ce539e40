"""Request hashing, byte for byte compatible with the reference recorder."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "MODEL_LIST_ENDPOINTS",
    "BodyNormalizer",
    "apply_normalizers",
    "endpoint_path",
    "http_request_hash",
    "inference_request_hash",
    "normalize_for_hash",
    "tool_request_hash",
]

#: Endpoints whose recordings are shared by every test (no test id in the hash).
MODEL_LIST_ENDPOINTS = frozenset({"/api/tags", "/v1/models", "/v1/openai/v1/models"})

#: A user rule applied to a copy of a request body before hashing (drop or mask a field).
BodyNormalizer = Callable[[dict[str, Any]], dict[str, Any]]

_LONG_DECIMAL = re.compile(r"-?\d+\.\d{4,}")


def _round_decimal(match: re.Match[str]) -> str:
    return f"{float(match.group(0)):.5f}"


def normalize_for_hash(value: Any) -> Any:
    """Round floats to 5 decimals and long decimals inside strings, through dicts and lists."""
    if isinstance(value, dict):
        return {key: normalize_for_hash(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [normalize_for_hash(item) for item in value]
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, str):
        return _LONG_DECIMAL.sub(_round_decimal, value)
    return value


def _digest(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def apply_normalizers(normalizers: Sequence[BodyNormalizer], body: Any) -> Any:
    if not normalizers or not isinstance(body, dict):
        return body
    # Normalizers get a deep copy so a rule can never change what is sent or recorded.
    result: dict[str, Any] = json.loads(json.dumps(body, default=str))
    for rule in normalizers:
        result = rule(result)
    return result


def endpoint_path(base_url: str, endpoint: str) -> str:
    """Join a client's base URL and a logical endpoint the way the reference does."""
    return base_url.rstrip("/") + endpoint


def inference_request_hash(
    method: str,
    url: str,
    body: Any,
    test_id: str | None,
    normalizers: Sequence[BodyNormalizer] = (),
) -> str:
    """Hash an SDK inference call: method, URL path, normalized body and (mostly) test id."""
    path = urlparse(url).path
    key: dict[str, Any] = {
        "method": method.upper(),
        "endpoint": path,
        "body": normalize_for_hash(apply_normalizers(normalizers, body)),
    }
    if path not in MODEL_LIST_ENDPOINTS:
        key["test_id"] = test_id
    return _digest(key)


def tool_request_hash(provider: str, tool_name: str, kwargs: Mapping[str, Any]) -> str:
    """Hash a tool invocation from its provider, name and bound keyword arguments."""
    return _digest({"provider": provider, "tool_name": tool_name, "kwargs": kwargs})


def http_request_hash(
    url: str,
    method: str,
    payload: Any,
    test_id: str | None,
    normalizers: Sequence[BodyNormalizer] = (),
) -> str:
    """Hash a raw HTTP exchange from its URL, method, payload and test id."""
    return _digest(
        {
            "test_id": test_id,
            "url": url,
            "method": method.upper(),
            "payload": normalize_for_hash(apply_normalizers(normalizers, payload)),
        }
    )
