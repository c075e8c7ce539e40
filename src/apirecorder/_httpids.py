"""Ids across layers: the stable ids of an HTTP exchange, in its URL and in its recorded body.

An id the recorder rewrote means the same thing in every layer. The SDK layer hands out
``rec-...`` ids; when the application sends one back in a call that goes through the HTTP layer
(``responses.retrieve(id)``, ``files.content(id)``, a batch poll), the live id in the URL is
hashed and written as its stable id (:func:`stable_url`). The JSON body of a known provider
API (OpenAI and its compatible servers, Anthropic, Gemini, Ollama) is normalized when written
exactly as an SDK-level response is (``normalize_response_data``: DESIGN 6 plus the nested-id
rules), each server-sent event or NDJSON line as one object, and the ids it rewrote join the
session's id map (:func:`normalize_http_body`). Other bodies are the application's own data and
are left alone. Knows no client library and no session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import quote, unquote, unquote_plus, urlsplit, urlunsplit

from ._httpbody import sse_as_events, sse_as_lines
from ._serialization import normalize_response_data

__all__ = ["is_provider_path", "live_ids", "normalize_http_body", "stable_url"]

# Paths of provider APIs whose answers are API objects with volatile ids. A file's content
# (".../content") is the application's data, and a model list keeps its ids (DESIGN 6).
_PROVIDER_PATH = re.compile(
    r"(?:/v1|/v1beta\d*|/openai/v1|/compatible-mode/v1)/"
    r"(?:chat/completions|completions|responses|embeddings|files|batches|audio|images"
    r"|moderations|assistants|threads|vector_stores|uploads|fine_tuning|conversations"
    r"|messages|complete)(?:/|$)"
    r"|:(?:stream)?[gG]enerateContent$|:(?:batchE|e)mbedContents?$|:countTokens$"
    r"|/api/(?:chat|generate|embed|embeddings)$"
)
_NOT_API_OBJECTS = re.compile(r"/content$")


def is_provider_path(url: str) -> bool:
    """True when ``url``'s path is a provider API whose JSON answers get stable ids."""
    path = urlsplit(url).path
    return bool(_PROVIDER_PATH.search(path)) and not _NOT_API_OBJECTS.search(path)


def stable_url(url: str, ids: Mapping[str, str]) -> str:
    """``url`` with each path segment and query value that is a live id made its stable id."""
    if not ids:
        return url
    parts = urlsplit(url)
    segments = parts.path.split("/")
    path_changed = False
    for index, segment in enumerate(segments):
        stable = ids.get(unquote(segment)) if segment else None
        if stable is not None:
            segments[index] = quote(stable, safe="")
            path_changed = True
    pieces = parts.query.split("&") if parts.query else []
    query_changed = False
    for index, piece in enumerate(pieces):
        name, equals, value = piece.partition("=")
        stable = ids.get(unquote_plus(value)) if equals and value else None
        if stable is not None:
            pieces[index] = f"{name}={quote(stable, safe='')}"
            query_changed = True
    if not path_changed and not query_changed:
        return url  # untouched, byte for byte: its hash must not move
    return urlunsplit(parts._replace(path="/".join(segments), query="&".join(pieces)))


def normalize_http_body(
    record: Mapping[str, Any], url: str, request_hash: str, ids: dict[str, str]
) -> int:
    """Normalize the recorded ``body`` of a provider API's answer in place; how many of its
    objects (the body, or its events or lines) changed."""
    if not is_provider_path(url):
        return 0
    body_format = record.get("body_format")
    body = record.get("body")
    if body_format == "sse_lines" and isinstance(body, list):
        # The line form the reference reads: walk its events' JSON, then write lines again.
        events = sse_as_events(record)
        changed = normalize_http_body(events, url, request_hash, ids)
        if changed:
            cast(dict[str, Any], record).update(sse_as_lines(events))
        return changed
    if body_format == "json":
        objects = [body]
    elif body_format == "ndjson" and isinstance(body, list):
        objects = body
    elif body_format == "sse" and isinstance(body, list):
        objects = [event.get("data") for event in body if isinstance(event, dict)]
    else:
        return 0
    changed = 0
    for value in objects:
        if isinstance(value, dict):
            before = json.dumps(value, sort_keys=True)
            normalize_response_data(value, request_hash, ids)
            value.update(_with_stable_links(value, ids))
            changed += json.dumps(value, sort_keys=True) != before
    return changed


def _with_stable_links(value: Any, ids: Mapping[str, str]) -> Any:
    # A link to an object (Anthropic's "results_url") names it by the id the body now gives.
    if isinstance(value, dict):
        return {key: _with_stable_links(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_stable_links(item, ids) for item in value]
    if isinstance(value, str) and value.startswith(("http://", "https://", "/")):
        return stable_url(value, ids)
    return value


def live_ids(body: bytes, ids: Mapping[str, str]) -> bytes:
    """A written JSON, NDJSON or SSE body with the stable ids of ``ids`` turned back into the
    live ones, for a caller in record mode whose next live request must name the real object."""
    if not ids or b"rec-" not in body:
        return body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    reverse: dict[str, str] = {}
    for live, stable in ids.items():
        reverse.setdefault(stable, live)
    # Whole JSON strings only (quotes included), so "rec-abc" never matches in "rec-abc-1".
    for stable, live in reverse.items():
        quoted = json.dumps(stable)
        if quoted in text:
            text = text.replace(quoted, json.dumps(live))
    return text.encode("utf-8")
