"""Finding secret-looking strings in recording files (the ``apirecorder scan`` command).

The scanner knows no client library: it reads JSON files and looks at every string with
the rules of docs/security.md (known key formats, bearer tokens, JWTs, credential headers,
key-like query parameters and fields, and the values of secret environment variables).
A finding names the file, the JSON path and a masked preview, never the secret itself.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ._redaction import (
    DEFAULT_SECRET_ENV_VARS,
    KNOWN_KEY_PATTERNS,
    MIN_ENV_SECRET_LENGTH,
    PLACEHOLDER,
    SECRET_ENV_SUFFIXES,
    SECRET_HEADERS,
    SECRET_QUERY_PARAMS,
    is_secret_field,
    is_secret_header,
    is_secret_response_value,
    looks_random,
)
from ._storage import SKIPPED_DIRS

__all__ = [
    "Finding",
    "ScanReport",
    "iter_candidate_files",
    "mask",
    "scan_file",
    "scan_paths",
    "scan_text",
    "scan_value",
    "secret_env_values",
]

#: Folders a directory walk never enters.

_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_QUERY_PARAM = re.compile(
    r"(?i)(?:^|(?<=[?&;]))(?:"
    + "|".join(sorted(SECRET_QUERY_PARAMS, key=len, reverse=True))
    + r")=([^&#;\s\"'<>]+)"
)
#: Value patterns, tried on every string.
VALUE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (*KNOWN_KEY_PATTERNS, ("jwt", _JWT))


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
    """Everything one scan found, and how many files it read."""

    findings: list[Finding] = field(default_factory=list)
    files_scanned: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "files_scanned": self.files_scanned,
            "findings": [asdict(finding) for finding in self.findings],
        }


def mask(secret: str) -> str:
    """A preview that identifies a secret's kind without revealing it."""
    shown = min(6, len(secret) // 4)
    return f"{secret[:shown]}{'*' * 8} ({len(secret)} chars)"


def secret_env_values(
    environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()
) -> dict[str, str]:
    """Secret values from the environment, by value, with the variable that holds each."""
    env = os.environ if environ is None else environ
    names = {*DEFAULT_SECRET_ENV_VARS, *extra}
    names.update(n for n in env if n.upper().endswith(SECRET_ENV_SUFFIXES))
    return {
        env[name]: name
        for name in sorted(names)
        if len(env.get(name, "")) >= MIN_ENV_SECRET_LENGTH and env[name] != PLACEHOLDER
    }


def _key_path(parent: str, key: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key)}]"


def _string_findings(text: str, env_values: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """(rule, secret) for each secret inside one string."""
    if env_values:
        lowered = text.lower()
        for secret, name in env_values.items():
            # In any letter case, and percent-encoded as in a URL.
            for form in {secret, quote(secret, safe="")}:
                start = lowered.find(form.lower())
                if start >= 0:
                    yield f"env:{name}", text[start : start + len(form)]
                    break
    for rule, pattern in VALUE_RULES:
        for match in pattern.finditer(text):
            yield rule, match.group(0)
    if "=" in text:
        for match in _QUERY_PARAM.finditer(text):
            value = match.group(1)
            if value != PLACEHOLDER and value != "%3Credacted%3E" and len(value) >= 8:
                yield "query-parameter", value


def _field_finding(key: str, value: str, in_headers: bool, in_response: bool) -> str | None:
    """The rule a credential-named field breaks by holding ``value``, if any."""
    if value == PLACEHOLDER or PLACEHOLDER in value:
        return None
    if in_headers:
        if key.lower() in SECRET_HEADERS:
            return "credential-header" if len(value) >= MIN_ENV_SECRET_LENGTH else None
        return "credential-header" if is_secret_header(key) and looks_random(value) else None
    if is_secret_field(key, in_response=True):  # a name that is never anything else
        return "credential-field" if len(value) >= MIN_ENV_SECRET_LENGTH else None
    # "token", "key", "signature": a credential only when the value looks random, and in a
    # response never "signature" (Anthropic thinking blocks carry one).
    loose = is_secret_response_value(key, value) if in_response else is_secret_field(key)
    return "credential-field" if loose and looks_random(value) else None


def scan_value(
    value: Any, env_values: Mapping[str, str] | None = None, root: str = "$"
) -> Iterator[tuple[str, str, str]]:
    """(JSON path, rule, secret) for each secret in a parsed JSON value; iterative, so
    nesting depth cannot exhaust the stack."""
    env = secret_env_values() if env_values is None else env_values
    # (value, path, key of the value in its parent, parent is a "headers" object)
    stack: list[tuple[Any, str, str | None, bool]] = [(value, root, None, False)]
    while stack:
        node, path, key, in_headers = stack.pop()
        if isinstance(node, str):
            seen: set[str] = set()
            if key is not None:
                in_response = path.startswith(f"{root}.response")
                rule = _field_finding(key, node, in_headers, in_response)
                if rule is not None:
                    seen.add(node)
                    yield path, rule, node
            for rule, secret in _string_findings(node, env):
                if secret not in seen and not any(secret in s for s in seen):
                    seen.add(secret)
                    yield path, rule, secret
        elif isinstance(node, dict):
            children = [
                (item, _key_path(path, str(k)), str(k), key == "headers")
                for k, item in node.items()
            ]
            for k in node:
                if isinstance(k, str) and k != PLACEHOLDER:
                    for rule, secret in _string_findings(k, env):
                        yield _key_path(path, k), f"{rule} (in a key)", secret
            stack.extend(reversed(children))
        elif isinstance(node, list):
            pairs = key == "headers"
            items: list[tuple[Any, str, str | None, bool]] = []
            for index, item in enumerate(node):
                item_path = f"{path}[{index}]"
                # Headers as a list of [name, value] pairs.
                if pairs and isinstance(item, list) and len(item) == 2 and isinstance(item[0], str):
                    items.append((item[1], f"{item_path}[1]", item[0], True))
                else:
                    items.append((item, item_path, None, False))
            stack.extend(reversed(items))


def scan_text(
    text: str,
    file: str,
    env_values: Mapping[str, str] | None = None,
    allow: Iterable[re.Pattern[str]] = (),
) -> list[Finding]:
    """Findings in a file that is not JSON, located by line number."""
    env = secret_env_values() if env_values is None else env_values
    allowed = tuple(allow)
    findings: list[Finding] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for rule, secret in _string_findings(line, env):
            if any(p.search(secret) for p in allowed):
                continue
            findings.append(Finding(file, f"line {number}", rule, mask(secret)))
    return findings


def scan_file(
    path: Path,
    *,
    env_values: Mapping[str, str] | None = None,
    recordings_only: bool = False,
    allow: Iterable[re.Pattern[str]] = (),
) -> list[Finding] | None:
    """The findings in one file; None when ``recordings_only`` and it is not a recording.

    A secret that one of the ``allow`` patterns finds (``re.search``) is not reported.
    """
    allowed = tuple(allow)
    env = secret_env_values() if env_values is None else env_values
    name = str(path)
    raw = path.read_bytes()
    text = raw.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None if recordings_only else scan_text(text, name, env, allowed)
    if recordings_only and not _is_recording(data):
        return None
    return [
        Finding(name, json_path, rule, mask(secret))
        for json_path, rule, secret in scan_value(data, env)
        if not any(p.search(secret) for p in allowed)
    ]


def _is_recording(data: Any) -> bool:
    return isinstance(data, dict) and "request" in data and "response" in data


def iter_candidate_files(folder: Path) -> Iterator[Path]:
    """Every ``*.json`` file under ``folder``, skipping hidden and tool folders, sorted."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIPPED_DIRS)
        for filename in sorted(filenames):
            if filename.endswith(".json"):
                yield Path(dirpath) / filename


def scan_paths(
    paths: Iterable[Path],
    *,
    allow: Iterable[re.Pattern[str]] = (),
    env_values: Mapping[str, str] | None = None,
) -> ScanReport:
    """Scan files (always) and folders (their recordings); ``allow`` silences matching secrets.

    Raises FileNotFoundError for a path that does not exist.
    """
    env = secret_env_values() if env_values is None else env_values
    allowed = tuple(allow)
    report = ScanReport()
    for path in paths:
        if path.is_dir():
            candidates = [(p, True) for p in iter_candidate_files(path)]
        elif path.exists():
            candidates = [(path, False)]
        else:
            raise FileNotFoundError(str(path))
        for candidate, recordings_only in candidates:
            try:
                found = scan_file(
                    candidate, env_values=env, recordings_only=recordings_only, allow=allowed
                )
            except OSError:
                if recordings_only:
                    continue
                raise
            if found is None:
                continue
            report.files_scanned += 1
            report.findings.extend(found)
    return report
