"""Keeping secrets out of recordings, logs and messages.

:func:`redact_recording` runs on every record right before it is written. It returns a
redacted deep copy and never touches the caller's objects, and it runs after the request
hash was computed, so redaction never changes which file a call replays from. Two
definitions drive everything, and ``apirecorder scan`` uses the same two (both in
:mod:`._secrets`):

- one rule for secret **names** (:func:`secret_name_kind`), applied to JSON keys, headers,
  query strings, fragments, form and multipart fields, ``name: value`` and
  ``"name": "value"`` text;
- one list of secret **formats** (:data:`KEY_FORMATS`), found in any text.

:func:`find_secrets` (:mod:`._secretspans`) applies both to one string; every regex of these
modules runs in time linear in its input (no nested or overlapping quantifiers, every match
starts at a token boundary and every repetition is possessive), because recordings and logs
are untrusted. This module holds the :class:`Redactor`, which applies them to whole records.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._httpbody import is_sse_lines, sse_as_events, sse_as_lines
from ._secrets import _SECRET_WORDS as _SECRET_WORDS
from ._secrets import _STRONG_NAMES as _STRONG_NAMES
from ._secrets import _STRONG_SUFFIXES as _STRONG_SUFFIXES
from ._secrets import _WEAK_NAMES as _WEAK_NAMES
from ._secrets import (
    DEFAULT_SECRET_ENV_VARS,
    FAKE_MARK,
    KEY_FORMATS,
    PLACEHOLDER,
    KeyFormat,
    _Lazy,
    is_secret_env_name,
    is_secret_field,
    is_secret_header,
    is_secret_response_value,
    looks_random,
    secret_env_values,
    secret_name_kind,
)
from ._secrets import MIN_ENV_SECRET_LENGTH as MIN_ENV_SECRET_LENGTH
from ._secrets import SECRET_HEADERS as SECRET_HEADERS
from ._secrets import SECRET_QUERY_PARAMS as SECRET_QUERY_PARAMS
from ._secrets import shannon_entropy as shannon_entropy
from ._secretspans import (
    _NAME_EQUALS,
    _USERINFO,
    SecretSpan,
    _find,
    _redacted_already,
    _replace_spans,
    _SecretValues,
    find_secrets,
)


class HasOptions(Protocol):
    """What redaction reads of a session: its options (``redact_headers``...), as given."""

    @property
    def options(self) -> Mapping[str, Any]: ...


# The rules are defined in _secrets and _secretspans; the names other modules and tests
# import from here are re-exported.
__all__ = [
    "DEFAULT_SECRET_ENV_VARS",
    "FAKE_MARK",
    "KEY_FORMATS",
    "PATTERN_RULE",
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
    "pattern_secrets",
    "redact_recording",
    "redact_text",
    "redactor_for",
    "secret_env_values",
    "secret_name_kind",
]


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
            if self.found is not None:  # scan: what the pattern would replace is a finding
                for secret in pattern_secrets(pattern, value):
                    self._report(path, PATTERN_RULE, secret)
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


#: The rule a finding of a user's ``redact_patterns`` is reported under.
PATTERN_RULE = "redact-pattern"


def pattern_secrets(pattern: re.Pattern[str], text: str) -> Iterator[str]:
    """What ``pattern`` would replace in ``text``: each match, or its groups when it has any
    (the rule of :func:`_replace_groups`)."""
    for match in pattern.finditer(text):
        if pattern.groups == 0:
            if match.group(0):
                yield match.group(0)
            continue
        for index in range(1, pattern.groups + 1):
            group = match.group(index)
            if group:
                yield group


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


def redactor_for(session: HasOptions) -> Redactor:
    """The redaction rules of a session, read from its options and the environment now.

    Built on each write (cheap) so an environment variable set during a test still counts.
    """
    return Redactor.from_options(session.options)


def redact_recording(record: dict[str, Any], session: HasOptions) -> dict[str, Any]:
    """Return ``record`` with secrets replaced by a placeholder, ready to be written."""
    return redactor_for(session).record(record)


def redact_text(text: str, session: HasOptions | None = None) -> str:
    """``text`` (a log line, a replay-miss message, a test id) with every secret a recording
    would not hold replaced: the default rules, the environment now, and ``session``'s own
    rules when given."""
    redactor = Redactor.from_options({} if session is None else session.options)
    return redactor.text(text, in_request=True)
