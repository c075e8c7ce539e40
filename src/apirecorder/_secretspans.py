"""Finding secrets in one string: the values secret names hold inside text (``name=value``,
``"name": "value"``, ``Name: value``, userinfo, multipart fields), the values of secret
environment variables, and the formats of :mod:`._secrets`.

:func:`find_secrets` applies them all; every regex in this module runs in time linear in its
input (no nested or overlapping quantifiers, every repetition is possessive), because
recordings and logs are untrusted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from ._secrets import (
    _PLACEHOLDER_FORMS,
    FAKE_MARK,
    KEY_FORMATS,
    PLACEHOLDER,
    SECRET_HEADERS,
    _Lazy,
    _normalized,
    is_secret_header,
    looks_random,
    secret_env_values,
    secret_name_kind,
)

__all__ = ["SecretSpan", "find_secrets"]

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
        # Most strings hold no format's hint: skip the format without starting its search.
        if key_format.hint and key_format.hint not in lowered:
            continue
        rule = key_format.name
        found = key_format.spans(text, lowered)
        spans.extend((start, end, priority, rule) for start, end in found)
    base = len(KEY_FORMATS)
    if values.pattern is not None:
        spans.extend((start, end, base, rule) for start, end, rule in values.spans(text))
    if "=" in text or ":" in text:  # every name rule needs one of them
        found_names = _name_spans(text, in_request)
        spans.extend((start, end, base + 1, rule) for start, end, rule in found_names)
    if not spans:
        return []
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
