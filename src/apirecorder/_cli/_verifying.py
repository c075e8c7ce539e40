"""``verify``'s checks of loaded recordings: allowed types, names that are their own hash."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import ApiRecorderError
from .._hashing import BodyNormalizer, Generation
from .._redaction import contains_placeholder
from .._serialization import allowed_prefixes, is_allowed, resolve_type
from .._storage import (
    HASH_NAME,
    MODELS_NAME,
    Recording,
    expected_file_name,
    is_model_list,
    model_ids,
    model_list_digest,
)
from ._files import Problem, progress

__all__ = ["Verdict", "name_generation", "verify_recording", "verify_recordings"]


def _types(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        type_path = value.get("__type__")
        if "__data__" in value and type_path is not None:
            yield str(type_path)
        for item in value.values():
            yield from _types(item)
    elif isinstance(value, list):
        for item in value:
            yield from _types(item)


def _installed(type_path: str) -> bool:
    top = type_path.split(".", 1)[0]
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def name_generation(
    recording: Recording, normalizers: Sequence[BodyNormalizer] = ()
) -> tuple[Generation | None, str]:
    """Which generation of hash rules names the file (None: neither), and its current name.

    Raises TypeError or ValueError when the request cannot be hashed.
    """
    current = expected_file_name(recording, normalizers)
    if recording.path.name == current:
        return Generation.CURRENT, current
    previous = expected_file_name(recording, normalizers, generation=Generation.PREVIOUS)
    if recording.path.name == previous:
        return Generation.PREVIOUS, current
    if recording.path.name == expected_file_name(recording, normalizers, sort_query=False):
        return Generation.CURRENT, current  # the URL as sent, query unsorted: lookup finds it
    return None, current


@dataclass
class Verdict:
    """What ``verify`` found: problems, types it could not check, files with an old name."""

    problems: list[Problem] = field(default_factory=list)
    unchecked: set[str] = field(default_factory=set)
    #: Files named by the previous generation of hash rules: valid, ``rehash`` renames them.
    previous_names: list[Path] = field(default_factory=list)


def verify_recording(
    recording: Recording,
    allowed: Sequence[str] = (),
    normalizers: Sequence[BodyNormalizer] = (),
) -> Verdict:
    """The verdict on one loaded recording."""
    verdict = Verdict()
    problems, unchecked = verdict.problems, verdict.unchecked
    path = recording.path
    # Replay's rule: the allow-list, the user's prefixes and what the recording's tool trusts.
    accepted = allowed_prefixes(recording.response, allowed)
    for type_path in sorted(set(_types(recording.data))):
        if not is_allowed(type_path, accepted):
            problems.append(
                Problem(
                    path,
                    f"__type__ {type_path!r} is not in the allow-list; replay would refuse it "
                    "(if your tests call apirecorder.allow_types for it, pass --allow-type "
                    f"{type_path.split('.', 1)[0]})",
                )
            )
        elif not is_allowed(type_path, allowed):
            # The tool's own module (the test's, or the application's): replay imports it
            # with the tool; a file never makes verify run code it names.
            continue
        elif not _installed(type_path):
            unchecked.add(type_path)
        else:
            try:
                resolve_type(type_path, source=path, extra=allowed)
            except ApiRecorderError as exc:
                problems.append(Problem(path, str(exc).removeprefix(f"{path}: ")))
    try:
        generation, expected = name_generation(recording, normalizers)
    except (TypeError, ValueError) as exc:
        problems.append(Problem(path, f"the request cannot be hashed: {exc}"))
        return verdict
    if generation is Generation.PREVIOUS:
        verdict.previous_names.append(path)
        return verdict
    actual = path.name
    hashed = {key: value for key, value in recording.request.items() if key != "headers"}
    if generation is None and contains_placeholder(hashed):
        # Secrets were redacted after the hash was taken: the name cannot be re-derived.
        return verdict
    if generation is None:
        if is_model_list(recording.request) and HASH_NAME.fullmatch(actual):
            why = "a model-list recording named like a plain one: replay never reads it"
        elif MODELS_NAME.fullmatch(actual) and not is_model_list(recording.request):
            why = "named like a model list, but its endpoint is not one: replay never reads it"
        elif MODELS_NAME.fullmatch(actual) and expected.startswith(actual[:72]):
            why = "the model-list digest does not match the models it holds"
        else:
            why = "the name is not the hash of its request (renamed, or the request was edited)"
        problems.append(Problem(path, f"{why}; expected the name {expected}"))
    return verdict


def _duplicate_model_lists(recordings: Sequence[Recording]) -> list[Problem]:
    groups: dict[tuple[Path, str, frozenset[str]], list[Path]] = {}
    for recording in recordings:
        match = MODELS_NAME.fullmatch(recording.path.name)
        if match is None:
            continue
        ids = frozenset(model_ids(recording.response.get("body")))
        key = (recording.path.parent, match.group("hash"), ids)
        groups.setdefault(key, []).append(recording.path)
    problems: list[Problem] = []
    for (_, _, ids), paths in groups.items():
        # The file whose digest matches its models is the original; the others repeat it.
        suffix = f"-{model_list_digest(list(ids))}.json"
        first, *others = sorted(paths, key=lambda p: (not p.name.endswith(suffix), p))
        problems.extend(
            Problem(path, f"duplicate model list: the same models as {first.name}")
            for path in others
        )
    return problems


def verify_recordings(
    recordings: Sequence[Recording],
    allowed: Sequence[str] = (),
    normalizers: Sequence[BodyNormalizer] = (),
) -> Verdict:
    """Every problem of ``recordings`` (names, types, duplicate model lists), in file order."""
    total = Verdict()
    for recording in progress(recordings, "verifying"):
        verdict = verify_recording(recording, allowed, normalizers)
        total.problems.extend(verdict.problems)
        total.unchecked |= verdict.unchecked
        total.previous_names.extend(verdict.previous_names)
    total.problems.extend(_duplicate_model_lists(recordings))
    total.problems.sort(key=lambda p: (str(p.path), p.message))
    total.previous_names.sort()
    return total
