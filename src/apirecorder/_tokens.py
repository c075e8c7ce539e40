"""Token exchanges (OAuth 2 token endpoints): a stable hash, and no credential on disk.

Knows no client library: it reads HTTP bodies, for every HTTP client. A token request is a
form post with ``grant_type=`` (Google service accounts, refresh tokens, Azure AD client
credentials...). Its hashed and written payload keeps the form's stable fields (grant type,
scope, client id...); a secret (``client_secret``, ``refresh_token``, ``code``...) becomes the
placeholder, and a signed JWT (``assertion``, ``client_assertion``), which changes every run
with its ``iat``/``exp``, becomes a description of the claims that say who asks for what
(``iss``, ``sub``, ``aud``, ``scope``), never its signature or times.

A token response (``access_token``, ``id_token``, ``refresh_token`` next to ``token_type``
or an expiry) is written with each token replaced by a stable fake of the same shape: an
opaque token keeps its prefix (``ya29.``), a JWT stays three base64url parts. Every fake
holds :data:`~apirecorder._redaction.FAKE_MARK`, which redaction leaves alone. The live
caller still gets the live tokens, since the next real request needs them.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl

from ._redaction import FAKE_MARK, PLACEHOLDER

__all__ = ["fake_tokens", "shift_expiries", "token_lifetimes", "token_request_payload"]

_FORM = "application/x-www-form-urlencoded"
#: Form fields that hold a signed JWT, described by its claims.
_JWT_FIELDS = frozenset({"assertion", "client_assertion", "subject_token", "actor_token"})
#: Form fields that are credentials, whatever their shape.
_SECRET_FIELDS = frozenset(
    {
        "client_secret",
        "refresh_token",
        "code",
        "code_verifier",
        "password",
        "device_code",
        "assertion",
        "client_assertion",
        "subject_token",
        "actor_token",
    }
)
#: The claims that identify who asks for which access; the rest (iat, exp, nbf, jti) change.
_STABLE_CLAIMS = ("iss", "sub", "aud", "scope")
#: The token fields of a token response, replaced by fakes.
_TOKEN_FIELDS = ("access_token", "id_token", "refresh_token")
_RESPONSE_MARKERS = ("token_type", "expires_in", "expires_on", "expires_at")
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]*$")
_PREFIX = re.compile(r"^([A-Za-z0-9]{1,8}\.)(?!.*\.)")  # "ya29." of an opaque Google token


def _b64url_json(segment: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        return None


def _b64url(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _claims(token: str) -> dict[str, Any] | None:
    match = _JWT.match(token)
    claims = _b64url_json(match.group(1)) if match else None
    return claims if isinstance(claims, dict) else None


def _describe_jwt(token: str) -> str:
    claims = _claims(token)
    if claims is None:
        return PLACEHOLDER
    stable = " ".join(f"{name}={claims[name]}" for name in _STABLE_CLAIMS if name in claims)
    return f"{PLACEHOLDER} jwt {stable}".rstrip()


def token_request_payload(body: bytes, content_type: str | None) -> dict[str, Any] | None:
    """The hashed and written payload of a token request, or None when it is not one."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != _FORM or b"grant_type=" not in body:
        return None
    try:
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    if not any(name == "grant_type" for name, _ in fields):
        return None
    payload: dict[str, Any] = {}
    for name, value in fields:
        if name in _JWT_FIELDS:
            value = _describe_jwt(value)
        elif name in _SECRET_FIELDS:
            value = PLACEHOLDER
        previous = payload.get(name)
        if previous is None:
            payload[name] = value
        else:  # a repeated field keeps every value, in order
            payload[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
    return payload


# -- token responses --------------------------------------------------------------------------


def _fake(live: str, field: str, request_hash: str) -> str:
    """A stable stand-in for ``live`` that keeps its shape."""
    tag = f"{FAKE_MARK}-{field.replace('_', '-')}-{request_hash[:12]}"
    if _JWT.match(live):
        claims = _claims(live) or {}
        header = {"alg": "none", "typ": "JWT"}
        kept = {name: claims[name] for name in _STABLE_CLAIMS if name in claims}
        return f"{_b64url(header)}.{_b64url({**kept, 'jti': tag})}.{FAKE_MARK}-signature"
    prefix = _PREFIX.match(live)
    return (prefix.group(1) if prefix else "") + tag


def _token_response(body: bytes) -> tuple[str, dict[str, Any]] | None:
    """The text and JSON of a token response, or None when ``body`` is not one."""
    if not any(field.encode() in body for field in _TOKEN_FIELDS):
        return None
    try:
        text = body.decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not any(key in data for key in _RESPONSE_MARKERS):
        return None
    return text, data


def fake_tokens(body: bytes, content_type: str | None, request_hash: str) -> bytes:
    """``body`` with the tokens of a token response replaced by stable fakes (else as it is).

    The replacement is made in the text, so the body keeps its exact layout.
    """
    found = _token_response(body)
    if found is None:
        return body
    text, data = found
    for field in _TOKEN_FIELDS:
        live = data.get(field)
        if isinstance(live, str) and live and FAKE_MARK not in live:
            fake = _fake(live, field, request_hash)
            # json.dumps writes the token as the server did: tokens are plain ASCII.
            text = text.replace(json.dumps(live), json.dumps(fake))
    return text.encode("utf-8")


# -- absolute expiries ------------------------------------------------------------------------

#: Fields that carry an absolute expiry in epoch seconds (Azure managed identity: expires_on).
_ABSOLUTE_EXPIRIES = ("expires_on", "expires_at")
_EPOCH_2001 = 1_000_000_000  # smaller numbers are durations, not instants


def _epoch(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return float(value) if isinstance(value, int | float) and value > _EPOCH_2001 else None


def token_lifetimes(body: bytes, now: float) -> dict[str, float] | None:
    """The seconds each absolute expiry of a token response had left at ``now``, or None.

    Written next to the response, so a replay moves the expiry as far past its own time: a
    client would otherwise see a recorded token as expired and ask for a new one every call.
    """
    found = _token_response(body)
    if found is None:
        return None
    lifetimes: dict[str, float] = {}
    for field in _ABSOLUTE_EXPIRIES:
        instant = _epoch(found[1].get(field))
        if instant is not None:
            # Rounded up, here and on replay: a replayed token never expires sooner.
            lifetimes[field] = math.ceil(instant - now)
    return lifetimes or None


def shift_expiries(body: bytes, lifetimes: Any, now: float) -> bytes:
    """``body`` with each absolute expiry moved to ``now`` plus its recorded lifetime."""
    found = _token_response(body) if isinstance(lifetimes, dict) and lifetimes else None
    if found is None:
        return body
    text, data = found
    for field, seconds in lifetimes.items():
        old = data.get(field)
        if _epoch(old) is None or not isinstance(seconds, int | float):
            continue
        instant = math.ceil(now + seconds)
        new = str(instant) if isinstance(old, str) else instant
        text = text.replace(f'"{field}": {json.dumps(old)}', f'"{field}": {json.dumps(new)}')
        text = text.replace(f'"{field}":{json.dumps(old)}', f'"{field}":{json.dumps(new)}')
    return text.encode("utf-8")
