"""Request hashing, byte for byte compatible with the reference recorder.

The reference changed its rules once (2026), so two generations exist: ``CURRENT`` names new
recordings, ``PREVIOUS`` is what files written before the change are named by. A lookup that
misses under the current name tries the previous one (:func:`recorded_request_hashes`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import json.encoder
import re
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any
from urllib.parse import urlparse, urlsplit, urlunsplit

__all__ = [
    "AGENTS_RUN_KEY_MASK",
    "GENERATIONS",
    "MODEL_LIST_ENDPOINTS",
    "BodyNormalizer",
    "Generation",
    "apply_normalizers",
    "endpoint_path",
    "hashed_url",
    "http_request_hash",
    "inference_request_hash",
    "mask_agents_run_key",
    "may_change",
    "normalize_for_hash",
    "recorded_request_hash",
    "recorded_request_hashes",
    "request_kind",
    "tool_request_hash",
]

#: Endpoints whose recordings are shared by every test (no test id in the hash).
MODEL_LIST_ENDPOINTS = frozenset({"/api/tags", "/v1/models", "/v1/openai/v1/models"})

#: A user rule applied to a copy of a request body before hashing (drop or mask a field).
BodyNormalizer = Callable[[dict[str, Any]], dict[str, Any]]


class Generation(StrEnum):
    """A generation of the reference's hash rules, named by the year it took effect."""

    #: File-search metadata masked, ``project_id`` and bedrock ``stream_options`` dropped.
    CURRENT = "2026"
    #: Floats rounded, nothing else (DESIGN section 4 before the 2026 additions).
    PREVIOUS = "2025"


#: Every generation, in the order a lookup tries them.
GENERATIONS = (Generation.CURRENT, Generation.PREVIOUS)

_LONG_DECIMAL = re.compile(r"-?\d+\.\d{4,}")
# The reference's file-search patterns, applied in this order (src/ogx/testing/api_recorder.py).
_UUID = r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}"
_FILE_SEARCH_RULES = (
    ("score:", re.compile(r"score:\s*[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?"), "score: __NORMALIZED__"),
    ("attributes:", re.compile(r",?\s*attributes:\s*\{[^}]*\}"), ""),
    ("document_id:", re.compile(r"document_id:\s*" + _UUID), "document_id: __NORMALIZED__"),
    ("<|", re.compile(r"<\|" + _UUID + r"\|>"), "<|__NORMALIZED__|>"),
)
_PROVIDER_CONFIG_HOLDERS = ("extra_body", "extra_query")


def _round_decimal(match: re.Match[str]) -> str:
    return f"{float(match.group(0)):.5f}"


def _mask_file_search(text: str) -> str:
    # One cheap test first: the hot path hashes many strings and almost none hold these.
    if "score:" in text or "attributes:" in text or "document_id:" in text or "<|" in text:
        for marker, pattern, replacement in _FILE_SEARCH_RULES:
            if marker in text:
                text = pattern.sub(replacement, text)
    return text


def normalize_for_hash(
    value: Any, generation: Generation = Generation.CURRENT, *, drop_stream_options: bool = False
) -> Any:
    """Round floats to 5 decimals and long decimals inside strings, through dicts and lists.

    The current generation also masks file-search metadata in strings, drops ``project_id``
    from a root dict's ``extra_body``/``extra_query`` and, when asked, its ``stream_options``.
    """
    if generation is Generation.PREVIOUS:
        return _normalize_previous(value)
    return _normalize_current(value, drop_stream_options, True)


def _normalize_previous(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _normalize_previous(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize_previous(item) for item in value]
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, str):
        return _LONG_DECIMAL.sub(_round_decimal, value)
    return value


# What a string must hold for a current-generation rule to change it: a long decimal, or a
# file-search marker. Substring tests first (most strings hold no "." or ":"), a regex only
# for a string with a "." in it.
_DECIMAL_HINT = re.compile(r"\d\.\d{4}")


def may_change(text: str) -> bool:
    """Whether the current generation's normalization could change the string ``text``."""
    if "." in text and _DECIMAL_HINT.search(text) is not None:
        return True
    if ":" in text and ("score:" in text or "attributes:" in text or "document_id:" in text):
        return True
    return "<|" in text


_JSON_TYPES = (str, dict, list, tuple, float)


def _normalize_current(value: Any, drop_stream_options: bool, root: bool) -> Any:
    # This runs on every call: the exact type decides (request_json made the body plain
    # JSON); a subclass (a str enum, an OrderedDict) is treated as the JSON type it is.
    kind = type(value)
    if kind not in _JSON_TYPES:
        kind = next((t for t in _JSON_TYPES if isinstance(value, t)), kind)
    if kind is str:
        if not may_change(value):
            return value
        return _LONG_DECIMAL.sub(_round_decimal, _mask_file_search(value))
    if kind is dict:
        # As in the reference: a dict's values are never roots, and only the outermost dict
        # loses stream_options.
        normalized = {key: _normalize_current(item, False, False) for key, item in value.items()}
        if drop_stream_options:
            normalized.pop("stream_options", None)
        if root and ("extra_body" in normalized or "extra_query" in normalized):
            for holder in _PROVIDER_CONFIG_HOLDERS:
                extra = normalized.get(holder)
                if isinstance(extra, dict):
                    extra.pop("project_id", None)
        return normalized
    if kind is list or kind is tuple:
        # The reference's recursion into a list resets its root flag, so a dict inside a list
        # counts as a root again (its extra_body.project_id goes too). Matched on purpose.
        return [_normalize_current(item, False, True) for item in value]
    if kind is float:
        return round(value, 5)
    return value


def _sorted_json_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, sort_keys=True)``, byte for byte, made once for every hash.

    json.dumps builds an encoder per call; the C encoder json uses inside is built here once
    (no circular-reference check: a request made JSON by one walk is a tree). Where that C
    encoder is missing or takes other arguments, a reused JSONEncoder does the same work.
    """
    fallback = json.JSONEncoder(sort_keys=True)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return fallback.encode
    try:
        encode_chunks = make(
            None, fallback.default, json.encoder.encode_basestring_ascii,
            None, ": ", ", ", True, False, True,
        )  # fmt: skip

        def encode(value: Any) -> str:
            return "".join(encode_chunks(value, 0))

        sample = {"b": [1.5, float("nan"), None, True, "\u00e9\n"], "a": {"z": 1, "y": -0.0}}
        if encode(sample) == json.dumps(sample, sort_keys=True):
            return encode
    except Exception:  # another Python's C encoder: the plain road
        pass
    return fallback.encode


_sorted_json = _sorted_json_encoder()


# Copying a fresh hash object skips the digest lookup by name hashlib.sha256() makes on
# every call (most of the cost of hashing a small request).
_SHA256 = hashlib.sha256()


def _digest(key: Mapping[str, Any]) -> str:
    digest = _SHA256.copy()
    digest.update(_sorted_json(key).encode())
    return digest.hexdigest()


#: openai-agents sends ``prompt_cache_key="agents-sdk:run:<uuid4 hex>"``, new for every
#: ``Runner.run`` without a conversation, session or trace group: hashed as this instead.
AGENTS_RUN_KEY_MASK = "agents-sdk:run:__NORMALIZED__"
_AGENTS_RUN_KEY = re.compile(r"agents-sdk:run:[0-9a-f]{32}")


def _is_agents_run_key(value: Any) -> bool:
    return isinstance(value, str) and _AGENTS_RUN_KEY.fullmatch(value) is not None


def mask_agents_run_key(body: dict[str, Any]) -> dict[str, Any]:
    """The built-in normalizer: openai-agents' per-run ``prompt_cache_key`` (at the body's
    root or in its ``extra_body``) masked, in a copy; any other body is returned as it is."""
    if "prompt_cache_key" not in body and "extra_body" not in body:
        return body  # the usual case, on every call: nothing to look at
    if _is_agents_run_key(body.get("prompt_cache_key")):
        body = {**body, "prompt_cache_key": AGENTS_RUN_KEY_MASK}
    extra = body.get("extra_body")
    if isinstance(extra, dict) and _is_agents_run_key(extra.get("prompt_cache_key")):
        body = {**body, "extra_body": {**extra, "prompt_cache_key": AGENTS_RUN_KEY_MASK}}
    return body


def apply_normalizers(normalizers: Sequence[BodyNormalizer], body: Any) -> Any:
    """The body as it is hashed before the reference's rules: the user's normalizers, then the
    built-in one (:func:`mask_agents_run_key`)."""
    if not isinstance(body, dict):
        return body
    if normalizers:
        # Normalizers get a deep copy so a rule can never change what is sent or recorded.
        result: dict[str, Any] = json.loads(json.dumps(body, default=str))
        for rule in normalizers:
            result = rule(result)
        body = result
    return mask_agents_run_key(body) if isinstance(body, dict) else body


def endpoint_path(base_url: str, endpoint: str) -> str:
    """Join a client's base URL and a logical endpoint the way the reference does."""
    return base_url.rstrip("/") + endpoint


_DATABRICKS_HOST = "cloud.databricks.com"


def inference_request_hash(
    method: str,
    url: str,
    body: Any,
    test_id: str | None,
    normalizers: Sequence[BodyNormalizer] = (),
    *,
    generation: Generation = Generation.CURRENT,
    normalized: bool = False,
) -> str:
    """Hash an SDK inference call: method, URL path, normalized body and (mostly) test id.

    ``normalized``: the caller knows the current rules leave ``body`` as it is
    (``_requestjson.request_json_for_hash``), so it is hashed without a walk of its own.
    """
    path, bedrock = _hashed_endpoint(url, generation)
    body = apply_normalizers(normalizers, body)
    if not (normalized and generation is Generation.CURRENT and not normalizers):
        body = normalize_for_hash(body, generation, drop_stream_options=bedrock)
    key: dict[str, Any] = {"method": method.upper(), "endpoint": path, "body": body}
    if path not in MODEL_LIST_ENDPOINTS:
        key["test_id"] = test_id
    return _digest(key)


@functools.lru_cache(maxsize=1024)  # a run calls the same few URLs over and over
def _hashed_endpoint(url: str, generation: Generation) -> tuple[str, bool]:
    """The URL path an inference call is hashed by, and whether it goes to Bedrock."""
    if generation is Generation.CURRENT and _DATABRICKS_HOST in url:
        # The reference hides the workspace host before hashing (and recording) the URL.
        url = "__databricks__" + url.split(_DATABRICKS_HOST)[-1]
    parsed = urlparse(url)
    # Bedrock adds stream_options that vary between runs; the reference checks the netloc.
    return parsed.path, generation is Generation.CURRENT and "bedrock" in parsed.netloc


def tool_request_hash(provider: str, tool_name: str, kwargs: Mapping[str, Any]) -> str:
    """Hash a tool invocation from its provider, name and bound keyword arguments.

    The reference hashes tool calls without any normalization, in both generations.
    """
    return _digest({"provider": provider, "tool_name": tool_name, "kwargs": kwargs})


def hashed_url(url: str, *, match_origin: bool = True, sort_query: bool = True) -> str:
    """The URL of a raw HTTP request as it is hashed.

    Query parameters are sorted by name (the order of a repeated name kept, nothing
    re-encoded), so their order never matters; with ``match_origin=False`` the scheme, host
    and port are left out, so a server on another port, host or scheme matches.
    """
    if match_origin and (not sort_query or "?" not in url):
        return url
    parts = urlsplit(url)
    query = parts.query
    if sort_query and "&" in query:
        query = "&".join(sorted(query.split("&"), key=lambda item: item.partition("=")[0]))
    if match_origin:
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    return urlunsplit(("", "", parts.path, query, parts.fragment))


def http_request_hash(
    url: str,
    method: str,
    payload: Any,
    test_id: str | None,
    normalizers: Sequence[BodyNormalizer] = (),
    *,
    generation: Generation = Generation.CURRENT,
    match_origin: bool = True,
    sort_query: bool = True,
    normalized: bool = False,
) -> str:
    """Hash a raw HTTP exchange from its URL (see :func:`hashed_url`), method, payload and
    test id.

    The reference normalizes payloads with the same function as inference bodies (file-search
    masks and the root ``project_id`` rule included), but never drops ``stream_options``. It
    hashes the URL as sent: ``sort_query=False`` gives its name for a query in another order.
    ``normalized``: as for :func:`inference_request_hash`.
    """
    payload = apply_normalizers(normalizers, payload)
    if not (normalized and generation is Generation.CURRENT and not normalizers):
        payload = normalize_for_hash(payload, generation)
    return _digest(
        {
            "test_id": test_id,
            "url": hashed_url(url, match_origin=match_origin, sort_query=sort_query),
            "method": method.upper(),
            "payload": payload,
        }
    )


def request_kind(request: Mapping[str, Any]) -> str:
    """``inference``, ``tool`` or ``http``, from the shape of a recorded request."""
    if "tool_name" in request:
        return "tool"
    if "payload" in request and "body" not in request:
        return "http"
    return "inference"


def recorded_request_hash(
    test_id: str | None,
    request: Mapping[str, Any],
    *,
    generation: Generation = Generation.CURRENT,
    normalizers: Sequence[BodyNormalizer] = (),
    sort_query: bool = True,
) -> str:
    """The hash of a recorded request, from the recording's ``test_id`` and ``request``.

    The one place that re-derives a file name from its content, for every kind: ``verify``,
    ``rehash``, the tests and the session all call it. Raises TypeError or ValueError when
    the request holds values JSON cannot hash. A raw HTTP request recorded with
    ``match_origin=False`` says so in its ``match_origin`` key.
    """
    kind = request_kind(request)
    if kind == "tool":
        kwargs = request.get("kwargs")
        return tool_request_hash(
            str(request.get("provider")),
            str(request.get("tool_name")),
            kwargs if isinstance(kwargs, dict) else {},
        )
    if kind == "http":
        return http_request_hash(
            str(request.get("url", "")),
            str(request.get("method", "")),
            request.get("payload"),
            test_id,
            normalizers,
            generation=generation,
            match_origin=request.get("match_origin") is not False,
            sort_query=sort_query,
        )
    return inference_request_hash(
        str(request.get("method", "POST")),
        str(request.get("url", "")),
        request.get("body"),
        test_id,
        normalizers,
        generation=generation,
    )


def recorded_request_hashes(
    test_id: str | None,
    request: Mapping[str, Any],
    normalizers: Sequence[BodyNormalizer] = (),
) -> tuple[str, str]:
    """The (current, previous) hashes of a recorded request; equal when no new rule applies.

    A lookup tries the first, then the second; on the hot path, compute the previous one only
    after a miss (``recorded_request_hash(..., generation=Generation.PREVIOUS)``).
    """
    current, previous = (
        recorded_request_hash(test_id, request, generation=generation, normalizers=normalizers)
        for generation in GENERATIONS
    )
    return current, previous
