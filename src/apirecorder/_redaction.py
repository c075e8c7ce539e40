"""Keeping secrets out of recordings, logs and messages.

:func:`redact_recording` runs on every record right before it is written. It returns a
redacted deep copy and never touches the caller's objects, and it runs after the request
hash was computed, so redaction never changes which file a call replays from. Two
definitions drive everything, and ``apirecorder scan`` uses the same two:

- one rule for secret **names** (:func:`secret_name_kind`), applied to JSON keys, headers,
  query strings, fragments, form and multipart fields, ``name: value`` and
  ``"name": "value"`` text;
- one list of secret **formats** (:data:`KEY_FORMATS`), found in any text.

:func:`find_secrets` applies both to one string; every regex in this module runs in time
linear in its input (no nested or overlapping quantifiers, every match starts at a token
boundary and every repetition is possessive), because recordings and logs are untrusted.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ._httpbody import is_sse_lines, sse_as_events, sse_as_lines

if TYPE_CHECKING:
    from ._recorder import Session

__all__ = [
    "DEFAULT_SECRET_ENV_VARS",
    "FAKE_MARK",
    "KEY_FORMATS",
    "PLACEHOLDER",
    "KeyFormat",
    "Redactor",
    "SecretSpan",
    "contains_placeholder",
    "find_secrets",
    "is_secret_env_name",
    "is_secret_field",
    "is_secret_header",
    "is_secret_response_value",
    "looks_random",
    "mask_secret_fields",
    "mask_url_secrets",
    "redact_recording",
    "redact_text",
    "redactor_for",
    "secret_env_values",
    "secret_name_kind",
]

#: What every redacted value becomes.
PLACEHOLDER = "<redacted>"
#: The placeholder as it reads once percent-encoded or HTML-escaped (already redacted).
_PLACEHOLDER_FORMS = frozenset({PLACEHOLDER, quote(PLACEHOLDER, safe=""), "&lt;redacted&gt;"})
#: Part of every stable fake written in place of a live token (``_tokens``): already safe.
FAKE_MARK = "apirecorder-fake"

# -- the rule for names ---------------------------------------------------------------------
#
# A name is normalized: lower-cased, every character other than a-z and 0-9 dropped, so
# "idToken", "id_token", "ID-Token" and "X-Amz-Security-Token" compare alike.

#: Normalized names that are credentials wherever they appear.
_STRONG_NAMES = frozenset(
    {
        "accesskey",
        "accesstoken",
        "apikey",
        "appid",
        "appkey",
        "authorization",
        "cookie",
        "credential",
        "credentials",
        "passwd",
        "password",
        "pwd",
        "proxyauthorization",
        "setcookie",
    }
)
#: A normalized name ending like this is a credential too ("x_goog_api_key", "clientSecret").
_STRONG_SUFFIXES = (
    "accesskey",
    "accesstoken",
    "accountkey",
    "apikey",
    "authtoken",
    "bearertoken",
    "clientsecret",
    "idtoken",
    "passphrase",
    "passwd",
    "password",
    "privatekey",
    "refreshtoken",
    "secret",
    "secretkey",
    "securitytoken",
    "sessiontoken",
    "subscriptionkey",
)
#: Names that are credentials in a request, but in a response only with a random-looking
#: value: a log-probability "token" is a word, and a "signature" (Anthropic thinking blocks)
#: goes back in the next request, so a response signature is never redacted.
_WEAK_NAMES = frozenset({"auth", "key", "secret", "sig", "signature", "token"})
#: Header and environment variable names also count when one of their words is one of these
#: ("Anthropic-Key", "AZURE_OPENAI_KEY"); "x-ratelimit-remaining-tokens" does not.
_SECRET_WORDS = frozenset(
    {"apikey", "credential", "credentials", "key", "pass", "passwd", "password", "pat", "secret"}
    | {"token"}
)


class _Lazy:
    """A regex compiled when first used: compiling every pattern of this module at import
    would cost every ``import apirecorder`` several milliseconds for code a replay never runs."""

    __slots__ = ("_compiled", "_flags", "_source")

    def __init__(self, source: str, flags: int = 0) -> None:
        self._source = source
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None

    @property
    def compiled(self) -> re.Pattern[str]:
        compiled = self._compiled
        if compiled is None:  # a race compiles twice, harmlessly
            compiled = self._compiled = re.compile(self._source, self._flags)
        return compiled

    @property
    def groupindex(self) -> Mapping[str, int]:
        return self.compiled.groupindex

    def finditer(
        self, text: str, pos: int = 0, endpos: int = sys.maxsize
    ) -> Iterator[re.Match[str]]:
        return self.compiled.finditer(text, pos, endpos)

    def search(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self.compiled.search(text, pos, endpos)

    def match(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self.compiled.match(text, pos, endpos)

    def sub(self, replacement: str, text: str) -> str:
        return self.compiled.sub(replacement, text)

    def split(self, text: str) -> list[str | Any]:
        return self.compiled.split(text)


_NOT_ALNUM = _Lazy(r"[^a-z0-9]+")
_WORD_SPLIT = _Lazy(r"[^A-Za-z0-9]+")

#: Header names that are credentials by name alone, beyond the name rule (compared lower-case).
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
    }
)
#: Query parameter names masked in the request hash by the HTTP layer (see _httpbody).
SECRET_QUERY_PARAMS = frozenset(
    {"key", "api_key", "apikey", "token", "access_token", "client_secret", "sig", "signature"}
)


def _normalized(name: str) -> str:
    return _NOT_ALNUM.sub("", name.lower())


def secret_name_kind(name: str) -> str | None:
    """``"strong"`` for a name that always holds a credential, ``"weak"`` for one that does
    in a request (``token``, ``key``, ``signature``...), None for any other name."""
    normalized = _normalized(name)
    if not normalized:
        return None
    if normalized in _WEAK_NAMES or normalized.endswith("signature"):
        return "weak"
    if normalized in _STRONG_NAMES or normalized.endswith(_STRONG_SUFFIXES):
        return "strong"
    return None


def _has_secret_word(name: str) -> bool:
    return any(word.lower() in _SECRET_WORDS for word in _WORD_SPLIT.split(name))


def is_secret_header(name: str, extra: Iterable[str] = ()) -> bool:
    """Tell whether a header of this name holds a credential (by the default rules or ``extra``)."""
    lowered = name.lower()
    if lowered in SECRET_HEADERS or secret_name_kind(name) is not None or _has_secret_word(name):
        return True
    return lowered in {e.lower() for e in extra}


def is_secret_field(name: str, *, in_response: bool = False) -> bool:
    """Tell whether a JSON field or keyword argument of this name holds a credential.

    In a response only strong names count; see :func:`is_secret_response_value` for names
    such as ``key`` and ``token``.
    """
    kind = secret_name_kind(name)
    return kind == "strong" if in_response else kind is not None


def is_secret_response_value(name: str, value: Any) -> bool:
    """A response field that holds a credential: a strong name, or a weak name such as
    ``key`` or ``token`` with a random-looking value (never ``signature``)."""
    if not isinstance(value, str) or value in _PLACEHOLDER_FORMS or FAKE_MARK in value:
        return False
    kind = secret_name_kind(name)
    if kind == "strong":
        return True
    return kind == "weak" and not _normalized(name).endswith("signature") and looks_random(value)


# -- environment variables ------------------------------------------------------------------

#: Environment variables whose values are redacted wherever they appear.
DEFAULT_SECRET_ENV_VARS: tuple[str, ...] = (
    "ANTHROPIC_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_OPENAI_API_KEY",
    "COHERE_API_KEY",
    "DEEPSEEK_API_KEY",
    "FIREWORKS_API_KEY",
    "GEMINI_API_KEY",
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "GOOGLE_API_KEY",
    "GROQ_API_KEY",
    "HF_TOKEN",
    "HUGGINGFACE_API_KEY",
    "MISTRAL_API_KEY",
    "OLLAMA_API_KEY",
    "OPENAI_API_KEY",
    "OPENROUTER_API_KEY",
    "PERPLEXITY_API_KEY",
    "TAVILY_API_KEY",
    "TOGETHER_API_KEY",
    "VOYAGE_API_KEY",
    "XAI_API_KEY",
)
#: Shorter values are not replaced: "1" or "true" would be redacted all over a recording.
MIN_ENV_SECRET_LENGTH = 8


def is_secret_env_name(name: str) -> bool:
    """An environment variable whose value is a secret: a default one, a secret name, or a
    name with a secret word (``AZURE_OPENAI_KEY``, ``DB_PASSWORD``, ``GITLAB_PAT``)."""
    return (
        name in DEFAULT_SECRET_ENV_VARS
        or secret_name_kind(name) is not None
        or (_has_secret_word(name))
    )


def secret_env_values(
    environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()
) -> dict[str, str]:
    """Secret values from the environment, by value, with the variable that holds each."""
    env = os.environ if environ is None else environ
    names = {n for n in env if is_secret_env_name(n)} | set(extra) | set(DEFAULT_SECRET_ENV_VARS)
    return {
        env[name]: name
        for name in sorted(names)
        if len(env.get(name, "")) >= MIN_ENV_SECRET_LENGTH and env[name] not in _PLACEHOLDER_FORMS
    }


# -- the list of formats --------------------------------------------------------------------

#: A match may only start where a token starts: after a character that cannot be part of a
#: key, or after an escape (``%20``, ``\u0026``, ``\n``). Inside a run of key characters no
#: match starts, so ``sk-sk-sk-...`` is tried once, not at every ``sk-``.
_START = r"(?:(?<![A-Za-z0-9_\-])|(?<=%[0-9A-Fa-f]{2})|(?<=\\u[0-9A-Fa-f]{4})|(?<=\\[nrtbf]))"
_MIN_RANDOM_RUN = 24


def _random_key(body: str, minimum: int) -> bool:
    """Random keys mix upper case, lower case and digits, or hold a long lower-case
    alphanumeric run (DeepSeek and OpenRouter hex); slugs such as ``sk-learn-tutorial`` do not."""
    if len(body) < minimum:
        return False
    has_digit = any(c.isdigit() for c in body)
    if has_digit and any(c.isupper() for c in body) and any(c.islower() for c in body):
        return True
    longest = max((len(run) for run in re.split(r"[^A-Za-z0-9]", body)), default=0)
    return has_digit and longest >= _MIN_RANDOM_RUN and any(c.isalpha() for c in body)


@dataclass(frozen=True)
class KeyFormat:
    """One secret format: a linear-time regex (group ``s`` is the secret, else the whole
    match) and a check on the match (random-looking body, decodable credentials...)."""

    name: str
    pattern: _Lazy
    check: Callable[[re.Match[str]], bool] | None = None
    #: Lower-case text every match holds: a string without it is not searched at all.
    hint: str = ""

    def spans(self, text: str, lowered: str | None = None) -> Iterator[tuple[int, int]]:
        """(start, end) of each secret of this format in ``text`` (``lowered``: its lower case)."""
        if self.hint and self.hint not in (text.lower() if lowered is None else lowered):
            return
        group = "s" if "s" in self.pattern.groupindex else 0
        for match in self.pattern.finditer(text):
            if self.check is None or self.check(match):
                yield match.span(group)


def _prefixed(name: str, prefix: str, body: str, minimum: int, hint: str) -> KeyFormat:
    pattern = _Lazy(rf"{_START}(?P<s>(?P<p>{prefix})[{body}]*+)")

    def check(match: re.Match[str]) -> bool:
        return _random_key(match.group("s")[len(match.group("p")) :], minimum)

    return KeyFormat(name, pattern, check, hint)


def _bearer_token(match: re.Match[str]) -> bool:
    token = match.group("s")
    return (
        len(token) >= 16
        and token not in _PLACEHOLDER_FORMS
        and any(c.isdigit() for c in token)
        and any(c.isalpha() for c in token)
    )


def _basic_credentials(match: re.Match[str]) -> bool:
    try:
        return b":" in base64.b64decode(match.group("s"), validate=True)
    except (binascii.Error, ValueError):
        return False


_KEY = "A-Za-z0-9_-"
_ALNUM = "A-Za-z0-9"
#: Secret formats found in any text, most specific first (shared with ``apirecorder scan``).
KEY_FORMATS: tuple[KeyFormat, ...] = (
    _prefixed("anthropic-key", "sk-ant-", _KEY, 20, "sk-ant-"),
    _prefixed("openai-key", "sk-(?:proj-|svcacct-|admin-|or-v1-)?", _KEY, 20, "sk-"),
    _prefixed("xai-key", "xai-", _KEY, 32, "xai-"),
    _prefixed("perplexity-key", "pplx-", _KEY, 32, "pplx-"),
    _prefixed("gitlab-token", "gl(?:pat|dt|rt|ptt)-", _KEY, 20, "gl"),
    _prefixed("stripe-key", "[sr]k_(?:test|live)_", _ALNUM, 16, "k_"),
    _prefixed("tavily-key", "tvly-(?:dev-|prod-)?", _KEY, 16, "tvly-"),
    _prefixed("groq-key", "gsk_", _ALNUM, 20, "gsk_"),
    _prefixed("github-token", "(?:gh[pousr]_|github_pat_)", "A-Za-z0-9_", 30, "gh"),
    _prefixed("huggingface-token", "hf_", _ALNUM, 30, "hf_"),
    KeyFormat(
        "aws-access-key-id",
        _Lazy(rf"{_START}(?:AKIA|ASIA)[0-9A-Z]{{16}}(?![{_KEY}])"),
        hint="ia",
    ),
    KeyFormat("google-api-key", _Lazy(rf"{_START}AIza[{_KEY}]{{35}}+"), hint="aiza"),
    KeyFormat(
        "slack-token",
        _Lazy(rf"{_START}xox[abposr]-[0-9]++-[A-Za-z0-9-]{{10,}}+"),
        hint="xox",
    ),
    KeyFormat(
        "slack-webhook",
        _Lazy(r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<s>[A-Za-z0-9_/-]{8,}+)"),
        hint="hooks.slack.com/",
    ),
    KeyFormat(
        "discord-webhook",
        _Lazy(r"discord(?:app)?\.com/api/webhooks/(?P<s>[0-9]++/[A-Za-z0-9_-]{8,}+)"),
        hint="discord",
    ),
    # Telegram puts the bot token in the URL path: /bot123456789:AAH.../sendMessage.
    KeyFormat(
        "telegram-bot-token",
        _Lazy(rf"(?:{_START}|(?<=bot))(?P<s>[0-9]{{5,16}}+:[{_KEY}]{{30,}}+)"),
        hint=":",
    ),
    KeyFormat(
        "private-key",
        _Lazy(
            r"-----BEGIN (?:[A-Z]++ )?PRIVATE KEY-----"
            r".*?(?:-----END (?:[A-Z]++ )?PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
        hint="-----begin ",
    ),
    KeyFormat(
        "jwt",
        _Lazy(rf"{_START}eyJ[{_KEY}]{{8,}}+\.eyJ[{_KEY}]{{8,}}+\.[{_KEY}]{{8,}}+"),
        hint="eyj",
    ),
    KeyFormat(
        "bearer-token",
        _Lazy(r"(?<![A-Za-z0-9])(?i:bearer)(?:[ \t]++|%20|\+)(?P<s>[A-Za-z0-9._~+/=-]++)"),
        _bearer_token,
        "bearer",
    ),
    KeyFormat(
        "basic-auth",
        _Lazy(r"(?<![A-Za-z0-9])(?i:basic)(?:[ \t]++|%20|\+)(?P<s>[A-Za-z0-9+/]{8,}+=*+)"),
        _basic_credentials,
        "basic",
    ),
)

# -- names inside text ----------------------------------------------------------------------

_NAME_CHARS = r"A-Za-z0-9_.\[\]\-"
#: ``name=value`` in a query string, a fragment, a form body or a ``.env`` line; an escaped
#: separator before the name (``\u0026``, ``%26``) is read as a separator.
_NAME_EQUALS = _Lazy(
    rf"(?<![{_NAME_CHARS}])(?:(?<=\\)u[0-9A-Fa-f]{{4}}|(?<=%)[0-9A-Fa-f]{{2}})?"
    rf"(?P<n>[A-Za-z_][{_NAME_CHARS}]{{0,80}}+)="
    r"""(?:"(?P<dq>[^"\\\r\n]*+)"|'(?P<sq>[^'\\\r\n]*+)'|(?P<v>[^&#;\s"'<>\\,]*+))"""
)
#: ``"name": "value"`` in JSON stored as text (Go ``\u0026``, PHP ``\/``, spaced ``" : "``).
_JSON_PAIR = _Lazy(r'"(?P<n>[^"\\\r\n]{1,80}+)"\s*+:\s*+"(?P<v>(?:[^"\\]|\\.)*+)"')
#: ``Name: value`` as in a header line quoted in a log, an error body or a curl command.
_NAME_COLON = _Lazy(
    r"(?<![A-Za-z0-9_\-])(?P<n>[A-Za-z][A-Za-z0-9_\-]{0,80}+)[ \t]*+:[ \t]*+"
    r"(?:(?i:bearer|basic|token|digest)[ \t]++)?(?P<v>[^\s\"'<>,;]++)"
)
#: ``scheme://user:password@host``.
_USERINFO = _Lazy(
    r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*+:\\?/\\?/(?P<s>[^/?#\s@\"'<>\\]++)@"
)
#: A multipart part's header; its ``name="..."`` is looked for on the same line after it.
_FORM_DATA = _Lazy(r"(?i)content-disposition:[ \t]*+form-data;")
_FORM_NAME = _Lazy(r"\bname=\"(?P<n>[^\"\r\n]{1,80}+)\"")
_BLANK_LINE = _Lazy(r"\r?\n\r?\n")


@dataclass(frozen=True)
class SecretSpan:
    """Where a secret sits in a string, and which rule found it."""

    start: int
    end: int
    rule: str


def _redacted_already(value: str) -> bool:
    return not value or any(form in value for form in _PLACEHOLDER_FORMS)


def _name_spans(text: str, in_request: bool) -> Iterator[tuple[int, int, str]]:
    """Values held by secret names inside ``text`` (strong names always; weak ones in a
    request, or with a random-looking value)."""

    def wanted(name: str, value: str, loose: bool) -> bool:
        if _redacted_already(value):
            return False
        kind = secret_name_kind(name)
        if kind == "strong":
            return True
        if kind != "weak":
            return False
        return loose or (
            looks_random(value) and (in_request or not _normalized(name).endswith("signature"))
        )

    if "=" in text:
        for match in _NAME_EQUALS.finditer(text):
            group = next(g for g in ("dq", "sq", "v") if match.group(g) is not None)
            # A query string or form keeps the old rule: every key-like name, any value.
            if wanted(match.group("n"), match.group(group), True):
                yield (*match.span(group), "query-parameter")
    if '"' in text and ":" in text:
        for match in _JSON_PAIR.finditer(text):
            if wanted(match.group("n"), match.group("v"), in_request):
                yield (*match.span("v"), "credential-field")
    if ":" in text:
        for match in _NAME_COLON.finditer(text):
            name, value = match.group("n"), match.group("v")
            if _redacted_already(value):
                continue
            strong = name.lower() in SECRET_HEADERS or secret_name_kind(name) == "strong"
            if strong or (is_secret_header(name) and looks_random(value)):
                yield (*match.span("v"), "credential-header")
        if "@" in text:
            for match in _USERINFO.finditer(text):
                info = match.group("s")
                if not _redacted_already(info) and (":" in info or looks_random(info)):
                    yield (*match.span("s"), "url-userinfo")
        if "form-data" in text.lower():
            yield from _multipart_spans(text, in_request)


def _multipart_spans(text: str, in_request: bool) -> Iterator[tuple[int, int, str]]:
    # Each search starts past the previous one's result, so the text is read a bounded
    # number of times however many parts it holds.
    headers = list(_FORM_DATA.finditer(text))
    line_end = blank_end = value_end = -1
    for index, header in enumerate(headers):
        if line_end < header.end():
            line_end = _find_or_end(text, "\n", header.end())
        limit = headers[index + 1].start() if index + 1 < len(headers) else len(text)
        name = _FORM_NAME.search(text, header.end(), min(line_end, limit))
        if name is None:
            continue
        kind = secret_name_kind(name.group("n"))
        if kind is None or (kind == "weak" and not in_request):
            continue
        # The value starts after the part's blank line and ends at the next boundary line.
        if blank_end < name.end():
            blank = _BLANK_LINE.search(text, name.end())
            blank_end = len(text) if blank is None else blank.end()
        if value_end < blank_end:
            value_end = _find_or_end(text, "\n--", blank_end)
        end = value_end - 1 if value_end > blank_end and text[value_end - 1] == "\r" else value_end
        if blank_end < end and not _redacted_already(text[blank_end:end]):
            yield blank_end, end, "multipart-field"


def _find_or_end(text: str, needle: str, start: int) -> int:
    found = text.find(needle, start)
    return len(text) if found < 0 else found


def _merge(spans: Iterable[tuple[int, int, int, str]]) -> list[SecretSpan]:
    # Sorted by start, longest first, then by rule priority; overlapping spans become one,
    # named by the first.
    merged: list[SecretSpan] = []
    for start, end, _priority, rule in sorted(spans, key=lambda s: (s[0], -s[1], s[2])):
        if end <= start:
            continue
        if merged and start < merged[-1].end:
            last = merged[-1]
            if end > last.end:
                merged[-1] = SecretSpan(last.start, end, last.rule)
            continue
        merged.append(SecretSpan(start, end, rule))
    return merged


@dataclass(frozen=True)
class _SecretValues:
    """The values of secret environment variables, found in any case and percent-encoded."""

    names: Mapping[str, str]  # value -> variable name
    pattern: re.Pattern[str] | None
    forms: dict[str, str]  # lower-cased form -> variable name

    @classmethod
    def of(cls, names: Mapping[str, str]) -> _SecretValues:
        forms: dict[str, str] = {}
        for value, variable in names.items():
            for form in (value, quote(value, safe=""), value.replace("/", "\\/")):
                forms.setdefault(form.lower(), variable)
        if not forms:
            return cls(names, None, forms)
        # Longest first, so a secret that contains another is replaced whole. A literal
        # alternation costs at most (number of values x their length) per position.
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        return cls(names, re.compile(alternatives, re.IGNORECASE), forms)

    def spans(self, text: str) -> Iterator[tuple[int, int, str]]:
        if self.pattern is None:
            return
        lowered = text.lower()
        if not any(form in lowered for form in self.forms):
            return
        for match in self.pattern.finditer(text):
            yield (*match.span(), f"env:{self.forms[match.group(0).lower()]}")


def find_secrets(
    text: str, env_values: Mapping[str, str] | None = None, *, in_request: bool = False
) -> list[SecretSpan]:
    """Every secret in ``text``: key formats, values of secret environment variables
    (``env_values``: value -> variable; None reads the environment now) and values held by
    secret names. Non-overlapping, in order; linear time in ``len(text)``."""
    values = _SecretValues.of(secret_env_values() if env_values is None else env_values)
    return _find(text, values, in_request)


def _find(text: str, values: _SecretValues, in_request: bool) -> list[SecretSpan]:
    spans: list[tuple[int, int, int, str]] = []
    lowered = text.lower()
    for priority, key_format in enumerate(KEY_FORMATS):
        rule = key_format.name
        found = key_format.spans(text, lowered)
        spans.extend((start, end, priority, rule) for start, end in found)
    base = len(KEY_FORMATS)
    spans.extend((start, end, base, rule) for start, end, rule in values.spans(text))
    spans.extend((start, end, base + 1, rule) for start, end, rule in _name_spans(text, in_request))
    # A stable fake that stands for a live token (``_tokens``) is already safe to keep.
    spans = [span for span in spans if FAKE_MARK not in text[span[0] : span[1]]]
    return _merge(spans)


def _replace_spans(text: str, spans: Iterable[SecretSpan]) -> str:
    pieces: list[str] = []
    cursor = 0
    for span in spans:
        pieces.append(text[cursor : span.start])
        pieces.append(PLACEHOLDER)
        cursor = span.end
    pieces.append(text[cursor:])
    return "".join(pieces)


# -- values ---------------------------------------------------------------------------------

_MIN_RANDOM_LENGTH = 16
_MIN_ENTROPY = 3.5  # bits per character; random base62 of 16+ characters is above 3.7


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``."""
    if not text:
        return 0.0
    counts: dict[str, int] = {}
    for char in text:
        counts[char] = counts.get(char, 0) + 1
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def looks_random(value: str) -> bool:
    """A long token of letters and digits with high entropy, like a key (not a word or date)."""
    return (
        len(value) >= _MIN_RANDOM_LENGTH
        and not any(c.isspace() for c in value)
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
        and shannon_entropy(value) >= _MIN_ENTROPY
    )


def contains_placeholder(value: Any) -> bool:
    """Tell whether any string in ``value`` holds the redaction placeholder."""
    if isinstance(value, str):
        return PLACEHOLDER in value
    if isinstance(value, dict):
        return any(contains_placeholder(k) or contains_placeholder(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_placeholder(item) for item in value)
    return False


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | re.Pattern):
        return [value]
    return list(value)


_PATH_TOKEN = _Lazy(r"\[(\*|-?\d+)\]|\[\"((?:[^\"\\]|\\.)*)\"\]|\.?([^.\[\]]+)")


def _parse_path(text: str) -> tuple[str | int, ...]:
    """``request.body.messages[*].content`` as ("request", "body", "messages", "*", "content")."""
    source = text.strip()
    if source.startswith("$"):
        source = source[1:]
    parts: list[str | int] = []
    position = 0
    while position < len(source):
        match = _PATH_TOKEN.match(source, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot read the JSON path {text!r} at character {position}")
        index, quoted, plain = match.groups()
        if index is not None:
            parts.append("*" if index == "*" else int(index))
        elif quoted is not None:
            parts.append(re.sub(r"\\(.)", r"\1", quoted))
        else:
            parts.append(plain)
        position = match.end()
    if not parts:
        raise ValueError(f"the JSON path {text!r} is empty")
    return tuple(parts)


def json_path(parts: Iterable[str | int]) -> str:
    """``("response", "body", 3, "odd key")`` as ``$.response.body[3]["odd key"]``."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out.append(f".{part}")
        else:
            escaped = part.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'["{escaped}"]')
    return "".join(out)


#: One secret a redactor replaced: the JSON path, the rule, and the secret itself.
Found = tuple[tuple[str | int, ...], str, str]
Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Redactor:
    """The rules of one session: extra headers, JSON paths, regexes and secret values.

    With ``found`` set, every replacement is also appended to it (``apirecorder scan``
    reports what redaction would replace, through this same code).
    """

    headers: frozenset[str] = frozenset()
    json_paths: tuple[tuple[str | int, ...], ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    secret_values: tuple[str, ...] = ()
    env_names: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    found: list[Found] | None = field(default=None, repr=False, compare=False)
    _values: _SecretValues = field(init=False, repr=False, compare=False)
    _seen: dict[tuple[str, bool], str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = {value: self.env_names.get(value, "secret") for value in self.secret_values}
        object.__setattr__(self, "_values", _SecretValues.of(names))

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, Any],
        environ: Mapping[str, str] | None = None,
        found: list[Found] | None = None,
    ) -> Redactor:
        """Build the rules from ``recording()`` options (see docs/security.md)."""
        env_names = secret_env_values(
            environ, [str(n) for n in _as_list(options.get("secret_env_vars"))]
        )
        patterns: list[re.Pattern[str]] = []
        for pattern in _as_list(options.get("redact_patterns")):
            try:
                patterns.append(pattern if isinstance(pattern, re.Pattern) else re.compile(pattern))
            except re.error as exc:
                raise ValueError(
                    f"redact_patterns: {pattern!r} is not a valid regex: {exc}"
                ) from exc
        return cls(
            headers=frozenset(str(h).lower() for h in _as_list(options.get("redact_headers"))),
            json_paths=tuple(
                _parse_path(str(p)) for p in _as_list(options.get("redact_json_paths"))
            ),
            patterns=tuple(patterns),
            # Longest first, so a secret that contains another is replaced whole.
            secret_values=tuple(sorted(env_names, key=len, reverse=True)),
            env_names=env_names,
            found=found,
        )

    # -- strings ----------------------------------------------------------------------
    def text(self, value: str, path: Path_ = (), *, in_request: bool = False) -> str:
        """``value`` with secret values, key formats, secret names' values and user patterns
        replaced."""
        if value == PLACEHOLDER:
            return value
        if self.found is not None:
            return self._redact_text(value, path, in_request)
        # Stream chunks repeat the same strings (ids, roles, model names) thousands of times.
        key = (value, in_request)
        cached = self._seen.get(key)
        if cached is None:
            cached = self._seen[key] = self._redact_text(value, path, in_request)
        return cached

    def spans(self, value: str, *, in_request: bool = False) -> list[SecretSpan]:
        """Where the default rules find secrets in ``value``."""
        return _find(value, self._values, in_request)

    def _redact_text(self, value: str, path: Path_, in_request: bool) -> str:
        spans = self.spans(value, in_request=in_request)
        if spans:
            for span in spans:
                self._report(path, span.rule, value[span.start : span.end])
            value = _replace_spans(value, spans)
        for pattern in self.patterns:
            value = pattern.sub(_replace_groups, value)
        return value

    def _report(self, path: Path_, rule: str, secret: Any) -> None:
        if self.found is not None and isinstance(secret, str) and secret:
            self.found.append((path, rule, secret))

    def _base64(self, data: str, path: Path_, in_request: bool) -> str:
        """A base64 body redacted inside: decoded (latin-1 keeps every byte), redacted,
        encoded again; unchanged when it holds no secret."""
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return self.text(data, path, in_request=in_request)
        decoded = raw.decode("latin-1")
        redacted = self._redact_text(decoded, path, in_request)
        if redacted == decoded:
            return data
        return base64.b64encode(redacted.encode("latin-1")).decode("ascii")

    # -- structures -------------------------------------------------------------------
    def walk(
        self,
        value: Any,
        field_rule: Callable[[str, Any], bool] | None,
        path: Path_ = (),
        *,
        in_request: bool = False,
    ) -> Any:
        """A redacted copy of a JSON value; fields ``field_rule`` picks become the placeholder,
        and a ``headers`` object anywhere is redacted as headers."""
        if isinstance(value, str):
            return self.text(value, path, in_request=in_request)
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                name = self.text(key, path, in_request=in_request) if isinstance(key, str) else key
                child = (*path, str(key))
                if field_rule is not None and isinstance(key, str) and field_rule(key, item):
                    self._report(child, "credential-field", item)
                    out[name] = PLACEHOLDER
                elif key == "headers" and isinstance(item, Mapping | list):
                    out[name] = self.header_map(item, child)
                else:
                    out[name] = self.walk(item, field_rule, child, in_request=in_request)
            return out
        if isinstance(value, list | tuple):
            return [
                self.walk(item, field_rule, (*path, index), in_request=in_request)
                for index, item in enumerate(value)
            ]
        return value

    def header_map(self, headers: Any, path: Path_ = ()) -> Any:
        """Headers (a mapping, or a list of name/value pairs) with credentials redacted."""
        if isinstance(headers, Mapping):
            out: dict[str, Any] = {}
            for name, value in headers.items():
                child = (*path, str(name))
                if is_secret_header(str(name), self.headers):
                    out[str(name)] = self._placeholder_like(value, child)
                else:
                    out[str(name)] = self.walk(value, None, child)
            return out
        if isinstance(headers, list | tuple):
            pairs: list[Any] = []
            for index, pair in enumerate(headers):
                if (
                    isinstance(pair, list | tuple)
                    and len(pair) == 2
                    and isinstance(pair[0], str)
                    and is_secret_header(pair[0], self.headers)
                ):
                    pairs.append([pair[0], self._placeholder_like(pair[1], (*path, index, 1))])
                else:
                    pairs.append(self.walk(pair, None, (*path, index)))
            return pairs
        return self.walk(headers, None, path)

    def _placeholder_like(self, value: Any, path: Path_) -> Any:
        # A repeated header (a list of values) keeps its shape, one placeholder per value.
        if isinstance(value, list | tuple):
            return [self._placeholder_like(item, (*path, i)) for i, item in enumerate(value)]
        if isinstance(value, str) and not _redacted_already(value):
            self._report(path, "credential-header", value)
        return PLACEHOLDER

    def record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A redacted copy of a whole recording (request, response and anything else)."""
        response = record.get("response")
        # A stream written as text lines is redacted as events, so JSON paths and secrets
        # split across chunks reach into each event's data, then written back as lines.
        lines = isinstance(response, Mapping) and is_sse_lines(response)
        if lines:
            record = {**record, "response": sse_as_events(response)}  # type: ignore[arg-type]
        out: dict[str, Any] = {}
        for key, value in record.items():
            if key == "request" and isinstance(value, Mapping):
                out[key] = self._section(value, _request_field, (key,), in_request=True)
            elif key == "response" and isinstance(value, Mapping):
                out[key] = self._section(value, is_secret_response_value, (key,))
            else:
                out[key] = self.walk(value, None, (key,))
        for path in self.json_paths:
            _set_path(out, path)
        if lines:
            out["response"] = sse_as_lines(out["response"])
        return out

    def _section(
        self,
        section: Mapping[str, Any],
        rule: Callable[[str, Any], bool],
        path: Path_,
        *,
        in_request: bool = False,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in section.items():
            child = (*path, key)
            if key == "headers":
                out[key] = self.header_map(value, child)
            elif (
                key == "body" and section.get("body_format") == "base64" and isinstance(value, str)
            ):
                out[key] = self._base64(value, child, in_request)
            elif key == "payload" and isinstance(value, str) and value.startswith("base64:"):
                out[key] = "base64:" + self._base64(value[7:], child, in_request)
            else:
                out[key] = self.walk(value, rule, child, in_request=in_request)
        body = out.get("body")
        if section.get("is_streaming") and isinstance(body, list):
            self._across_chunks(body, (*path, "body"), in_request)
        return out

    def _across_chunks(self, chunks: list[Any], path: Path_, in_request: bool) -> None:
        """Redact, in place, secrets split across stream chunks: the strings at the same
        place in successive chunks (``choices[0].delta.content``) are read joined, as the
        client assembles them."""
        groups: dict[Path_, list[tuple[Any, Any, Path_]]] = {}
        for index, chunk in enumerate(chunks):
            for holder, key, where in _string_leaves(chunk, (index,)):
                groups.setdefault(where[1:], []).append((holder, key, where))
        for leaves in groups.values():
            texts = [holder[key] for holder, key, _ in leaves]
            if len(texts) < 2 or len(set(texts)) < 2:
                continue
            joined = "".join(texts)
            starts: list[int] = []
            offset = 0
            for text in texts:
                starts.append(offset)
                offset += len(text)
            # Last span first: changing a later piece leaves earlier offsets valid.
            for span in reversed(self.spans(joined, in_request=in_request)):
                first = _leaf_at(starts, span.start)
                last = _leaf_at(starts, span.end - 1)
                if first == last:
                    continue  # inside one chunk: already redacted there
                self._report((*path, *leaves[first][2]), span.rule, joined[span.start : span.end])
                for position in range(first, last + 1):
                    holder, key, _ = leaves[position]
                    text = holder[key]
                    begin = max(span.start - starts[position], 0)
                    end = min(span.end - starts[position], len(text))
                    # The secret's first piece becomes the placeholder, the others vanish.
                    filler = PLACEHOLDER if position == first else ""
                    holder[key] = text[:begin] + filler + text[end:]


def _leaf_at(starts: list[int], offset: int) -> int:
    low, high = 0, len(starts) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if starts[middle] <= offset:
            low = middle
        else:
            high = middle - 1
    return low


def _string_leaves(value: Any, path: Path_) -> Iterator[tuple[Any, Any, Path_]]:
    """(container, key, path) of every string inside ``value``; iterative (any depth)."""
    stack: list[tuple[Any, Path_]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        items: Iterable[tuple[Any, Any]]
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            continue
        for key, item in reversed(list(items)):
            if isinstance(item, str):
                yield node, key, (*where, key)
            elif isinstance(item, dict | list):
                stack.append((item, (*where, key)))


def _request_field(name: str, value: Any) -> bool:
    # Numbers, booleans and nulls are no credentials; a nested object is walked instead.
    return isinstance(value, str) and not _redacted_already(value) and is_secret_field(name)


def mask_secret_fields(value: Any) -> Any:
    """``value`` with secret-named string fields (``api_key``, ``password``...) as the placeholder.

    Requests are hashed this way, so the hash matches the redacted request that is written,
    and a recording made with one key replays with another (or with none, in CI).
    """
    if isinstance(value, dict):
        return {
            key: PLACEHOLDER
            if isinstance(key, str) and _request_field(key, item)
            else mask_secret_fields(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_secret_fields(item) for item in value]
    return value


def _replace_groups(match: re.Match[str]) -> str:
    # With capturing groups, only the groups are secret ("password=(\S+)" keeps "password=").
    if match.re.groups == 0:
        return PLACEHOLDER
    text = match.group(0)
    start = match.start(0)
    pieces: list[str] = []
    cursor = 0
    for index in range(1, match.re.groups + 1):
        begin, end = match.span(index)
        if begin < 0 or begin - start < cursor:
            continue
        pieces.append(text[cursor : begin - start])
        pieces.append(PLACEHOLDER)
        cursor = end - start
    pieces.append(text[cursor:])
    return "".join(pieces)


def _set_path(node: Any, path: tuple[str | int, ...]) -> None:
    """Replace every value ``path`` reaches (``*`` matches every key or index) in place."""
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        keys = list(node) if head == "*" else [head] if head in node else []
        for key in keys:
            if rest:
                _set_path(node[key], rest)
            elif node[key] is not None:
                node[key] = PLACEHOLDER
    elif isinstance(node, list):
        if head == "*":
            indexes = list(range(len(node)))
        elif isinstance(head, int) and -len(node) <= head < len(node):
            indexes = [head]
        elif isinstance(head, str) and head.lstrip("-").isdigit():
            index = int(head)
            indexes = [index] if -len(node) <= index < len(node) else []
        else:
            indexes = []
        for index in indexes:
            if rest:
                _set_path(node[index], rest)
            elif node[index] is not None:
                node[index] = PLACEHOLDER


def mask_url_secrets(url: str) -> str:
    """``url`` with the values of secret-named query and fragment parameters (by the name
    rule: ``api-key``, ``subscription-key``, ``X-Amz-Security-Token``...) and its userinfo
    as the placeholder, for the request hash: a recording made with one key then replays
    with another. Values found only by format (a key in the path) are left to redaction."""
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    head, tail = url[:cut], url[cut:]
    userinfo = _USERINFO.match(head)
    if userinfo is not None and not _redacted_already(userinfo.group("s")):
        head = head[: userinfo.start("s")] + PLACEHOLDER + head[userinfo.end("s") :]
    if "=" not in tail:
        return head + tail
    spans = [
        SecretSpan(*match.span(group), "query-parameter")
        for match in _NAME_EQUALS.finditer(tail)
        for group in ("dq", "sq", "v")
        if match.group(group) is not None
        and secret_name_kind(match.group("n")) is not None
        and not _redacted_already(match.group(group))
    ]
    return head + _replace_spans(tail, spans)


def redactor_for(session: Session) -> Redactor:
    """The redaction rules of a session, read from its options and the environment now.

    Built on each write (cheap) so an environment variable set during a test still counts.
    """
    return Redactor.from_options(session.options)


def redact_recording(record: dict[str, Any], session: Session) -> dict[str, Any]:
    """Return ``record`` with secrets replaced by a placeholder, ready to be written."""
    return redactor_for(session).record(record)


def redact_text(text: str, session: Session | None = None) -> str:
    """``text`` (a log line, a replay-miss message, a test id) with every secret a recording
    would not hold replaced: the default rules, the environment now, and ``session``'s own
    rules when given."""
    redactor = Redactor.from_options({} if session is None else session.options)
    return redactor.text(text, in_request=True)
