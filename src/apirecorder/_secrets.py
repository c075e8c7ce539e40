"""The two definitions redaction and ``apirecorder scan`` share: the rule for names, the list
of formats.

- one rule for secret **names** (:func:`secret_name_kind`), applied to JSON keys, headers,
  query strings, fragments, form and multipart fields, ``name: value`` and
  ``"name": "value"`` text;
- one list of secret **formats** (:data:`KEY_FORMATS`), found in any text;

with the secret environment variables and the test for a random-looking value. Every regex
in this module runs in time linear in its input (no nested or overlapping quantifiers, every
match starts at a token boundary and every repetition is possessive), because recordings and
logs are untrusted. :mod:`._secretspans` finds them in text, :mod:`._redaction` replaces them.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import quote

__all__ = [
    "DEFAULT_SECRET_ENV_VARS",
    "FAKE_MARK",
    "KEY_FORMATS",
    "MIN_ENV_SECRET_LENGTH",
    "PLACEHOLDER",
    "SECRET_HEADERS",
    "SECRET_QUERY_PARAMS",
    "KeyFormat",
    "is_secret_env_name",
    "is_secret_field",
    "is_secret_header",
    "is_secret_response_value",
    "looks_random",
    "secret_env_values",
    "secret_name_kind",
    "shannon_entropy",
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

    def fullmatch(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self.compiled.fullmatch(text, pos, endpos)

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


class KeyFormat(NamedTuple):
    """One secret format: a linear-time regex (group ``s`` is the secret, else the whole
    match) and a check on the match (random-looking body, decodable credentials...).

    The immutable records of the modules every run imports are NamedTuples, not frozen
    dataclasses: a frozen dataclass compiles its six methods at import, about a millisecond
    of every run's start-up for each."""

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
