"""Keeping secrets out of recordings.

:func:`redact_recording` runs on every record right before it is written. It returns a
redacted deep copy and never touches the caller's objects, and it runs after the request
hash was computed, so redaction never changes which file a call replays from. The default
rules (credential headers, key-like query parameters and body fields, the values of
secret environment variables, known key formats) always apply; users add header names,
JSON paths and regular expressions through ``recording()`` options or ini keys.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from ._recorder import Session

__all__ = [
    "DEFAULT_SECRET_ENV_VARS",
    "FAKE_MARK",
    "KNOWN_KEY_PATTERNS",
    "PLACEHOLDER",
    "Redactor",
    "contains_placeholder",
    "is_secret_field",
    "is_secret_header",
    "is_secret_response_value",
    "looks_random",
    "mask_secret_fields",
    "redact_recording",
    "redactor_for",
]

#: What every redacted value becomes.
PLACEHOLDER = "<redacted>"
#: Part of every stable fake written in place of a live token (``_tokens``): already safe.
FAKE_MARK = "apirecorder-fake"

#: Header names redacted in requests and responses (compared lower-case).
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
#: A header whose lower-case name contains one of these is redacted too.
SECRET_HEADER_WORDS = ("token", "secret", "key")

#: Query parameters (and request body fields, tool kwargs) redacted by name.
SECRET_QUERY_PARAMS = frozenset(
    {"key", "api_key", "apikey", "token", "access_token", "client_secret", "sig", "signature"}
)

# Request fields are named like headers and query parameters; compared after lower-casing
# and turning "-" into "_". Substrings are not used: "max_tokens" is no secret.
_SECRET_FIELD_NAMES = (
    SECRET_QUERY_PARAMS
    | {name.replace("-", "_") for name in SECRET_HEADERS}
    | {
        "auth_token",
        "bearer_token",
        "id_token",
        "password",
        "passwd",
        "private_key",
        "refresh_token",
        "secret",
        "secret_key",
        "session_token",
    }
)
_SECRET_FIELD_SUFFIXES = (
    "_api_key",
    "_apikey",
    "_access_key",
    "_access_token",
    "_auth_token",
    "_client_secret",
    "_password",
    "_private_key",
    "_refresh_token",
    "_secret",
    "_secret_key",
)
# Response bodies keep fields such as "token" (log-probabilities) and "signature"
# (Anthropic thinking blocks, sent back in the next request): redacting those would change
# what a replayed test sends next. Only names that are never anything but a credential.
_RESPONSE_SECRET_FIELDS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "client_secret",
        "password",
        "private_key",
        "refresh_token",
        "secret_key",
    }
)

# Response fields redacted only when the value looks random ("signature" never: Anthropic
# thinking signatures go back in the next request).
_RESPONSE_RANDOM_FIELDS = frozenset(
    {"key", "token", "secret", "auth_token", "id_token", "session_token", "x_api_key"}
)
_MIN_RANDOM_LENGTH = 16
_MIN_ENTROPY = 3.5  # bits per character; random base62 of 16+ characters is above 3.7

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
#: Any other environment variable whose name ends like this counts as a secret too.
SECRET_ENV_SUFFIXES = ("_API_KEY", "_APIKEY", "_SECRET", "_SECRET_KEY", "_TOKEN", "_PASSWORD")
#: Shorter values are not replaced: "1" or "true" would be redacted all over a recording.
MIN_ENV_SECRET_LENGTH = 8


def _key_like(prefix: str, body: str, minimum: int) -> str:
    # Random keys mix upper case, lower case and digits; slugs such as "sk-learn-tutorial"
    # do not, which keeps prose and URLs out of the findings.
    return (
        rf"\b{prefix}(?=[{body}]*[A-Z])(?=[{body}]*[a-z])(?=[{body}]*[0-9])[{body}]{{{minimum},}}"
    )


_KEY_CHARS = "A-Za-z0-9_-"
#: Key formats that are secrets wherever they appear (shared with ``apirecorder scan``).
KNOWN_KEY_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("anthropic-key", re.compile(_key_like("sk-ant-", _KEY_CHARS, 20))),
    ("openai-key", re.compile(_key_like("sk-(?:proj-|svcacct-|admin-)?", _KEY_CHARS, 20))),
    ("tavily-key", re.compile(_key_like("tvly-(?:dev-|prod-)?", _KEY_CHARS, 16))),
    ("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("github-token", re.compile(_key_like("(?:gh[pousr]_|github_pat_)", "A-Za-z0-9_", 30))),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("groq-key", re.compile(_key_like("gsk_", "A-Za-z0-9", 20))),
    ("huggingface-token", re.compile(_key_like("hf_", "A-Za-z0-9", 30))),
    ("slack-token", re.compile(r"\bxox[abposr]-[0-9]+-[A-Za-z0-9-]{10,}")),
    ("stripe-key", re.compile(r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}")),
    (
        "private-key",
        re.compile(
            r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"
            r".*?(?:-----END (?:[A-Z]+ )?PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
    ),
    (
        "bearer-token",
        re.compile(
            r"(?<=\b[Bb][Ee][Aa][Rr][Ee][Rr] )"
            r"(?=[A-Za-z0-9._~+/=-]*[0-9])(?=[A-Za-z0-9._~+/=-]*[A-Za-z])"
            r"[A-Za-z0-9._~+/=-]{16,}"
        ),
    ),
)

# One pass that tells whether any key format occurs at all (most strings hold none).
_ANY_KNOWN_KEY = re.compile("|".join(f"(?:{p.pattern})" for _, p in KNOWN_KEY_PATTERNS), re.DOTALL)

_PATH_TOKEN = re.compile(r"\[(\*|-?\d+)\]|\[\"((?:[^\"\\]|\\.)*)\"\]|\.?([^.\[\]]+)")


def is_secret_header(name: str, extra: Iterable[str] = ()) -> bool:
    """Tell whether a header of this name holds a credential (by the default rules or ``extra``)."""
    lowered = name.lower()
    if lowered in SECRET_HEADERS or any(word in lowered for word in SECRET_HEADER_WORDS):
        return True
    return lowered in {e.lower() for e in extra}


def is_secret_field(name: str, *, in_response: bool = False) -> bool:
    """Tell whether a JSON field or keyword argument of this name holds a credential.

    In a response only unambiguous names count; see :func:`is_secret_response_value` for
    names such as ``key`` and ``token``.
    """
    normalized = name.lower().replace("-", "_")
    if in_response:
        return normalized in _RESPONSE_SECRET_FIELDS
    return normalized in _SECRET_FIELD_NAMES or normalized.endswith(_SECRET_FIELD_SUFFIXES)


def is_secret_response_value(name: str, value: Any) -> bool:
    """A response field that holds a credential: an unambiguous name, or a name such as
    ``key`` or ``token`` with a random-looking value (a log-probability token is a word)."""
    if not isinstance(value, str) or value == PLACEHOLDER or FAKE_MARK in value:
        return False
    normalized = name.lower().replace("-", "_")
    if normalized in _RESPONSE_SECRET_FIELDS:
        return True
    return normalized in _RESPONSE_RANDOM_FIELDS and looks_random(value)


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


@dataclass(frozen=True)
class Redactor:
    """The rules of one session: extra headers, JSON paths, regexes and secret values."""

    headers: frozenset[str] = frozenset()
    json_paths: tuple[tuple[str | int, ...], ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    secret_values: tuple[str, ...] = ()
    _secret_pattern: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    _secret_forms: tuple[str, ...] = field(default=(), repr=False, compare=False)
    _seen: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Each value in any letter case, and percent-encoded as it appears in a URL.
        forms = {form.lower() for v in self.secret_values for form in (v, quote(v, safe=""))}
        if forms:
            alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
            object.__setattr__(self, "_secret_forms", tuple(forms))
            object.__setattr__(self, "_secret_pattern", re.compile(alternatives, re.IGNORECASE))

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> Redactor:
        """Build the rules from ``recording()`` options (see docs/security.md)."""
        env = os.environ if environ is None else environ
        names = set(DEFAULT_SECRET_ENV_VARS)
        names.update(str(n) for n in _as_list(options.get("secret_env_vars")))
        names.update(n for n in env if n.upper().endswith(SECRET_ENV_SUFFIXES))
        values = {env[n] for n in names if len(env.get(n, "")) >= MIN_ENV_SECRET_LENGTH}
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
            secret_values=tuple(sorted(values, key=len, reverse=True)),
        )

    # -- strings ----------------------------------------------------------------------
    def text(self, value: str) -> str:
        """``value`` with secret values, key formats, key-like query parameters and user
        patterns replaced."""
        if value == PLACEHOLDER:
            return value
        # Stream chunks repeat the same strings (ids, roles, model names) thousands of times.
        cached = self._seen.get(value)
        if cached is None:
            cached = self._seen[value] = self._redact_text(value)
        return cached

    def _redact_text(self, value: str) -> str:
        if self._secret_pattern is not None:
            lowered = value.lower()
            if any(form in lowered for form in self._secret_forms):
                value = self._secret_pattern.sub(PLACEHOLDER, value)
        if "=" in value:
            value = _QUERY_PARAM.sub(_redact_query_value, value)
        if _ANY_KNOWN_KEY.search(value):
            for _name, pattern in KNOWN_KEY_PATTERNS:
                value = pattern.sub(PLACEHOLDER, value)
        for pattern in self.patterns:
            value = pattern.sub(_replace_groups, value)
        return value

    # -- structures -------------------------------------------------------------------
    def walk(self, value: Any, field_rule: Callable[[str, Any], bool] | None) -> Any:
        """A redacted copy of a JSON value; fields ``field_rule`` picks become the placeholder."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if field_rule is not None and field_rule(key, item):
                    out[self.text(key)] = PLACEHOLDER
                else:
                    out[self.text(key)] = self.walk(item, field_rule)
            return out
        if isinstance(value, list | tuple):
            return [self.walk(item, field_rule) for item in value]
        return value

    def header_map(self, headers: Any) -> Any:
        """Headers (a mapping, or a list of name/value pairs) with credentials redacted."""
        if isinstance(headers, Mapping):
            return {
                str(name): _placeholder_like(value)
                if is_secret_header(str(name), self.headers)
                else self.walk(value, None)
                for name, value in headers.items()
            }
        if isinstance(headers, list | tuple):
            pairs: list[Any] = []
            for pair in headers:
                if (
                    isinstance(pair, list | tuple)
                    and len(pair) == 2
                    and isinstance(pair[0], str)
                    and is_secret_header(pair[0], self.headers)
                ):
                    pairs.append([pair[0], PLACEHOLDER])
                else:
                    pairs.append(self.walk(pair, None))
            return pairs
        return self.walk(headers, None)

    def record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A redacted copy of a whole recording (request, response and anything else)."""
        out: dict[str, Any] = {}
        for key, value in record.items():
            if key == "request" and isinstance(value, Mapping):
                out[key] = self._section(value, _request_field)
            elif key == "response" and isinstance(value, Mapping):
                out[key] = self._section(value, is_secret_response_value)
            else:
                out[key] = self.walk(value, None)
        for path in self.json_paths:
            _set_path(out, path)
        return out

    def _section(
        self, section: Mapping[str, Any], rule: Callable[[str, Any], bool]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in section.items():
            if key == "headers":
                out[key] = self.header_map(value)
            elif key in ("body", "payload", "kwargs"):
                out[key] = self.walk(value, rule)
            else:
                out[key] = self.walk(value, None)
        return out


def _request_field(name: str, value: Any) -> bool:
    # Numbers, booleans and nulls are no credentials; a nested object is walked instead.
    return isinstance(value, str) and value != PLACEHOLDER and is_secret_field(name)


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


def _placeholder_like(value: Any) -> Any:
    # A repeated header (a list of values) keeps its shape, one placeholder per value.
    if isinstance(value, list | tuple):
        return [PLACEHOLDER for _ in value]
    return PLACEHOLDER


_QUERY_PARAM = re.compile(
    r"(?i)(?:^|(?<=[?&;]))(" + "|".join(sorted(SECRET_QUERY_PARAMS, key=len, reverse=True)) + r")="
    r"([^&#;\s\"'<>]+)"
)


def _redact_query_value(match: re.Match[str]) -> str:
    if match.group(2) == PLACEHOLDER or match.group(2) == "%3Credacted%3E":
        return match.group(0)
    return f"{match.group(1)}={PLACEHOLDER}"


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


def redactor_for(session: Session) -> Redactor:
    """The redaction rules of a session, read from its options and the environment now.

    Built on each write (cheap) so an environment variable set during a test still counts.
    """
    return Redactor.from_options(session.options)


def redact_recording(record: dict[str, Any], session: Session) -> dict[str, Any]:
    """Return ``record`` with secrets replaced by a placeholder, ready to be written."""
    return redactor_for(session).record(record)
