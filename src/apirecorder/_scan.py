"""Finding secrets in recording files (the ``apirecorder scan`` command).

The scanner has no rules of its own: it runs the redaction of :mod:`._redaction` over each
file in a mode that reports what it would replace, so every kind redaction knows is a kind
scan finds. Every byte of every file is read: a file that parses as JSON is walked as a
recording (or as plain JSON) *and* read line by line, which catches what a parse hides
(a duplicated key, text after the document); a file that does not parse (merge conflict,
truncation) is read line by line and reported. A finding names the file, the JSON path or
line, the rule and a masked preview, never the secret itself.
"""

from __future__ import annotations

import bisect
import codecs
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._redaction import (
    PATTERN_RULE,
    Found,
    Redactor,
    is_secret_response_value,
    json_path,
    pattern_secrets,
    secret_env_values,
)
from ._storage import SKIPPED_DIRS

__all__ = [
    "Finding",
    "ScanReport",
    "decode_text",
    "iter_candidate_files",
    "mask",
    "scan_file",
    "scan_paths",
    "scan_text",
    "scan_value",
    "secret_env_values",
]


@dataclass(frozen=True)
class Finding:
    """One secret-looking string: where it is, which rule matched, and a masked preview."""

    file: str
    path: str
    rule: str
    preview: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.rule}: {self.preview}"


@dataclass
class ScanReport:
    """Everything one scan found, how many files it read, and what it could not read."""

    findings: list[Finding] = field(default_factory=list)
    files_scanned: int = 0
    #: Files that are not JSON (merge-conflicted, truncated): scanned as text, line by line.
    unparsed: list[str] = field(default_factory=list)
    #: Files that could not be read at all, with the reason (not a regular file, no access).
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    #: Folders a walk did not enter (hidden and tool folders; see ``include_hidden``).
    skipped_dirs: list[str] = field(default_factory=list)
    #: JSON files of a walk, outside ``recordings`` folders, that are not recordings.
    not_recordings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "files_scanned": self.files_scanned,
            "findings": [asdict(finding) for finding in self.findings],
            "unparsed": self.unparsed,
            "unreadable": [{"file": f, "reason": r} for f, r in self.unreadable],
            "skipped_dirs": self.skipped_dirs,
            "not_recordings": self.not_recordings,
        }


def mask(secret: str) -> str:
    """A preview that identifies a secret's kind without revealing it."""
    shown = min(6, len(secret) // 4)
    return f"{secret[:shown]}{'*' * 8} ({len(secret)} chars)"


# Byte order marks, longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_text(raw: bytes) -> str:
    """The text of a file in UTF-8, UTF-16 or UTF-32 (with or without a byte order mark);
    undecodable bytes become U+FFFD, so the rest is still read."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return raw[len(bom) :].decode(encoding, "replace")
    # Without a mark, ASCII text in UTF-16/32 shows as NUL bytes in fixed places.
    head = raw[:64]
    if len(head) >= 4 and b"\x00" in head:
        if head[1:4] == b"\x00\x00\x00":
            return raw.decode("utf-32-le", "replace")
        if head[:3] == b"\x00\x00\x00":
            return raw.decode("utf-32-be", "replace")
        if head[1::2].count(0) > len(head) // 4:
            return raw.decode("utf-16-le", "replace")
        if head[0::2].count(0) > len(head) // 4:
            return raw.decode("utf-16-be", "replace")
    return raw.decode("utf-8", "replace")


Patterns = tuple[re.Pattern[str], ...]


def _finder(env_values: Mapping[str, str], found: list[Found], patterns: Patterns = ()) -> Redactor:
    return Redactor(
        secret_values=tuple(sorted(env_values, key=len, reverse=True)),
        env_names=dict(env_values),
        found=found,
        patterns=patterns,
    )


def scan_value(
    value: Any,
    env_values: Mapping[str, str] | None = None,
    patterns: Iterable[re.Pattern[str]] = (),
) -> Iterator[tuple[str, str, str]]:
    """(JSON path, rule, secret) for each secret in a parsed JSON value: a recording is
    read as redaction reads it, any other value as a response body; ``patterns`` are the
    project's ``redact_patterns``."""
    env = secret_env_values() if env_values is None else env_values
    found: list[Found] = []
    finder = _finder(env, found, tuple(patterns))
    try:
        if _is_recording(value):
            finder.record(value)
        else:
            finder.walk(value, is_secret_response_value)
    except RecursionError:
        # Deeper than the redaction walk follows: every string, read without recursion.
        found.clear()
        for path, key, text in _strings(value):
            if key is not None and is_secret_response_value(key, text):
                found.append((path, "credential-field", text))
            else:
                finder.text(text, path)
    for path, rule, secret in found:
        yield json_path(path), rule, secret


def _line_hits(
    text: str, env: Mapping[str, str], patterns: Patterns = ()
) -> list[tuple[int, str, str]]:
    """(line number, rule, secret) for each secret in ``text``. The whole text is read at
    once, so what spans lines (a multipart field, a PEM key) is found, then located."""
    starts = [0]
    starts.extend(match.end() for match in _NEWLINE.finditer(text))
    hits: list[tuple[int, str, str]] = []
    for span in _finder(env, []).spans(text):
        hits.append(
            (bisect.bisect_right(starts, span.start), span.rule, text[span.start : span.end])
        )
    for pattern in patterns:
        for line_number, line in enumerate(_NEWLINE.split(text), 1):
            hits.extend((line_number, PATTERN_RULE, s) for s in pattern_secrets(pattern, line))
    return hits


_NEWLINE = re.compile(r"\r\n|\r|\n")


def _allowed(secret: str, allow: tuple[re.Pattern[str], ...]) -> bool:
    return any(p.search(secret) for p in allow)


def _strings(value: Any) -> Iterator[tuple[tuple[str | int, ...], str | None, str]]:
    """(path, key in its object, string) of every string in ``value``, in document order."""
    stack: list[tuple[Any, tuple[str | int, ...], str | None]] = [(value, (), None)]
    while stack:
        node, path, key = stack.pop()
        if isinstance(node, str):
            yield path, key, node
        elif isinstance(node, dict):
            stack.extend((v, (*path, str(k)), str(k)) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((v, (*path, i), None) for i, v in reversed(list(enumerate(node))))


def scan_text(
    text: str,
    file: str,
    env_values: Mapping[str, str] | None = None,
    allow: Iterable[re.Pattern[str]] = (),
    patterns: Iterable[re.Pattern[str]] = (),
) -> list[Finding]:
    """Findings in text, located by line number."""
    env = secret_env_values() if env_values is None else env_values
    allowed = tuple(allow)
    return [
        Finding(file, f"line {number}", rule, mask(secret))
        for number, rule, secret in _line_hits(text, env, tuple(patterns))
        if not _allowed(secret, allowed)
    ]


@dataclass
class FileScan:
    """What one file holds: its findings, and whether it parsed as JSON."""

    findings: list[Finding]
    parsed: bool


def _unescaped(secret: str) -> str:
    # A secret read from a line of JSON text still has the JSON escapes of the file.
    if "\\" not in secret:
        return secret
    try:
        decoded = json.loads(f'"{secret}"')
    except ValueError:
        return secret
    return decoded if isinstance(decoded, str) else secret


def scan_file(
    path: Path,
    *,
    env_values: Mapping[str, str] | None = None,
    recordings_only: bool = False,
    allow: Iterable[re.Pattern[str]] = (),
    patterns: Iterable[re.Pattern[str]] = (),
) -> FileScan | None:
    """The findings in one file; None when ``recordings_only`` and it is JSON but not a
    recording. Raises OSError when it cannot be read (a FIFO or device is never opened).

    A secret that one of the ``allow`` patterns finds (``re.search``) is not reported; what
    one of the project's ``patterns`` (``redact_patterns``) would replace is.
    """
    allowed = tuple(allow)
    own = tuple(patterns)
    env = secret_env_values() if env_values is None else env_values
    name = str(path)
    if not stat.S_ISREG(os.stat(path).st_mode):
        # Opening a FIFO blocks, and a device never ends: neither is a recording.
        raise OSError(f"{name}: not a regular file")
    text = decode_text(path.read_bytes())
    hits = [hit for hit in _line_hits(text, env, own) if not _allowed(hit[2], allowed)]
    by_line = [Finding(name, f"line {n}", rule, mask(secret)) for n, rule, secret in hits]
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return FileScan(by_line, parsed=False)
    if recordings_only and not _is_recording(data):
        return None
    try:
        structural = [hit for hit in scan_value(data, env, own) if not _allowed(hit[2], allowed)]
    except RecursionError:
        # Deeper than a walk can follow: the line-by-line reading still saw every byte.
        return FileScan(by_line, parsed=True)
    findings = [Finding(name, where, rule, mask(secret)) for where, rule, secret in structural]
    # A line finding the walk did not make too: a duplicated key, text the parse dropped.
    # A set, with the secrets inside each one, keeps this linear on a file of many findings.
    finder = _finder(env, [])
    known: set[str] = set()
    for _, _, secret in structural:
        known.add(secret)
        known.update(secret[span.start : span.end] for span in finder.spans(secret))
    for finding, (_, _, secret) in zip(by_line, hits, strict=True):
        if _unescaped(secret) not in known:
            findings.append(finding)
    return FileScan(findings, parsed=True)


def _is_recording(data: Any) -> bool:
    return isinstance(data, dict) and "request" in data and "response" in data


def iter_candidate_files(
    folder: Path, *, include_hidden: bool = False, skipped: list[str] | None = None
) -> Iterator[Path]:
    """Every ``*.json`` file under ``folder``, sorted. Symlinked folders are followed (each
    real folder once); hidden and tool folders (``.git``, ``venv``...) are entered only
    with ``include_hidden``, and the ones passed over are added to ``skipped``. The folder
    given is always walked, whatever its name."""
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        kept: list[str] = []
        for name in sorted(dirnames):
            if not include_hidden and (name.startswith(".") or name in SKIPPED_DIRS):
                if skipped is not None:
                    skipped.append(os.path.join(dirpath, name))
                continue
            kept.append(name)
        dirnames[:] = kept
        for filename in sorted(filenames):
            if filename.endswith(".json"):
                yield Path(dirpath) / filename


def scan_paths(
    paths: Iterable[Path],
    *,
    allow: Iterable[re.Pattern[str]] = (),
    env_values: Mapping[str, str] | None = None,
    include_hidden: bool = False,
    patterns: Iterable[re.Pattern[str]] = (),
) -> ScanReport:
    """Scan files (always) and folders (their recordings); ``allow`` silences matching secrets,
    ``patterns`` (the project's ``redact_patterns``) are found besides the built-in rules.

    Raises FileNotFoundError for a path that does not exist.
    """
    env = secret_env_values() if env_values is None else env_values
    allowed = tuple(allow)
    own = tuple(patterns)
    report = ScanReport()
    for path in paths:
        if path.is_dir():
            walked = iter_candidate_files(
                path, include_hidden=include_hidden, skipped=report.skipped_dirs
            )
            # Inside a recordings folder every JSON file counts: a recording broken by hand
            # (no "response") must not hide what it holds.
            candidates = [(p, p.parent.name != "recordings") for p in walked]
        elif path.exists() or path.is_symlink():
            candidates = [(path, False)]
        else:
            raise FileNotFoundError(str(path))
        for candidate, recordings_only in candidates:
            try:
                found = scan_file(
                    candidate,
                    env_values=env,
                    recordings_only=recordings_only,
                    allow=allowed,
                    patterns=own,
                )
            except OSError as exc:
                report.unreadable.append((str(candidate), exc.strerror or str(exc)))
                continue
            if found is None:
                report.not_recordings.append(str(candidate))
                continue
            report.files_scanned += 1
            report.findings.extend(found.findings)
            if not found.parsed:
                report.unparsed.append(str(candidate))
    return report
