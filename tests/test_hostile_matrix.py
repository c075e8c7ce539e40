"""Each hostile recording through each client that reads recordings, and through the CLI.

A real recording per client is made against the local upstream, which is then stopped; each
case of ``hostile_cases`` is written in its place, and one child process per client (and per
CLI command) replays every case under a memory limit, each case under an alarm. The outcome
that passes: the recorder's own error naming the file (the CLI: an exit code and a message
naming the file, never a traceback), or, where the file is still a valid recording, the
client's own answer. A raw exception, a hang, a memory error, a crash or an object of the
wrong class handed back is a bug of the loader, the serializer or the flow.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from tests.hostile_cases import AS_RECORDED, Case, hostile_cases
from tests.replay_clients import SCENARIOS, SHAPES
from tests.replay_runner import Matrix, shared_root

CLIENTS = tuple(SCENARIOS)
CASES: dict[str, list[Case]] = {client: hostile_cases(SHAPES[client]) for client in CLIENTS}
#: The CLI reads every kind of recording: an SDK stream, a raw HTTP exchange, a tool call.
CLI_SOURCES = ("openai-stream", "httpx", "tool")
CLI_COMMANDS = (
    *("ls", "show", "stats", "verify", "rehash", "diff"),
    *("normalize", "explain", "rekey", "scan"),
)


@pytest.fixture(scope="session")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    """The matrix of this run: the real recordings made once, the outcomes on demand."""
    made = Matrix(shared_root(tmp_path_factory))
    made.record()
    return made


def _names_the_file(message: str, path: str) -> bool:
    return path in message


def _explain(line: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in line.items() if k != "path"}, indent=1)[:3000]


def _param(client: str, case: str) -> Any:
    return pytest.param(client, case, id=f"{client}::{case}")


@pytest.mark.parametrize(
    ("client", "case"), [_param(c, case.name) for c in CLIENTS for case in CASES[c]]
)
def test_a_hostile_recording_is_refused_by_name_or_replayed_faithfully(
    matrix: Matrix, client: str, case: str
) -> None:
    line = matrix.cases(client, client, CASES[client])[case]
    assert not line.get("imported_canary"), "a recording made apirecorder import a module"
    _check_replay(line, case)


def _check_replay(line: dict[str, Any], case: str) -> None:
    outcome = line["outcome"]
    if outcome == "recorder":
        assert _names_the_file(line["message"], line["path"]), _explain(line)
    elif outcome == "client error":
        # The client's own error class: right only when the file records an error.
        assert line["replays_error"], _explain(line)
    else:
        assert outcome == "ok", _explain(line)
    if case == AS_RECORDED:
        assert outcome == "ok", _explain(line)


#: Commands that read every byte of every kind of file in full: each meets every case.
FULL_COMMANDS = frozenset({"show", "verify"})


def _cli_cases(command: str, source: str) -> list[Case]:
    """The cases a command runs over: all of them for ``show`` and ``verify``; for each other
    command a deterministic quarter that differs by command, so each case meets four or so
    commands. The whole product (10 commands, 3 sources, ~330 cases) took minutes of the
    suite; the client matrix still runs every case."""
    if command in FULL_COMMANDS:
        return list(CASES[source])
    return [
        case for case in CASES[source] if zlib.crc32(f"{command}:{case.name}".encode()) % 4 == 0
    ]


CLI_CASES = {(c, s): _cli_cases(c, s) for c in CLI_COMMANDS for s in CLI_SOURCES}


@pytest.mark.parametrize(
    ("command", "source", "case"),
    [
        pytest.param(command, source, case.name, id=f"{command}::{source}::{case.name}")
        for (command, source), cases in CLI_CASES.items()
        for case in cases
    ],
)
def test_the_cli_names_a_hostile_file_and_never_crashes(
    matrix: Matrix, command: str, source: str, case: str
) -> None:
    line = matrix.cases(f"cli:{command}", source, CLI_CASES[command, source])[case]
    assert line["outcome"] == "exit", _explain(line)
    assert "Traceback" not in line["output"], _explain(line)
    assert line["code"] in (0, 1, 2), _explain(line)
    if line["code"] != 0:
        # The file, or the folder it was found in (rekey: "no recording under ...").
        assert str(Path(line["path"]).parent) in line["output"], _explain(line)


def test_the_matrix_covers_every_client_with_a_couple_of_hundred_cases() -> None:
    assert set(SHAPES) == set(SCENARIOS)
    for client, cases in CASES.items():
        assert len(cases) >= 150, client


def test_each_command_meets_a_share_of_every_kind_of_hostile_case() -> None:
    for (command, source), cases in CLI_CASES.items():
        share = len(cases) / len(CASES[source])
        assert share == 1 if command in FULL_COMMANDS else 0.15 < share < 0.35, command


def test_each_shape_is_the_shape_of_the_recording_made_live(matrix: Matrix) -> None:
    for client, shape in SHAPES.items():
        data = json.loads(matrix.recording_of(client).read_text("utf-8"))
        assert set(data["request"]) == set(shape.request_keys), client
        assert set(data["response"]) == set(shape.response_keys), client
        body = data["response"]["body"]
        assert isinstance(body, list) == shape.listed, client
        first = body[0] if isinstance(body, list) else body
        assert (first.get("__type__", "") if isinstance(first, dict) else "") == shape.type_path


#: ``prune`` meets every case of every source: a hostile file is never deleted.
PRUNE_SOURCES = CLI_SOURCES


def _every_case(runner: str, sources: tuple[str, ...]) -> Any:
    """Parametrize (source, case) over every case of ``sources``."""
    return pytest.mark.parametrize(
        ("source", "case"),
        [
            pytest.param(source, case.name, id=f"{runner}::{source}::{case.name}")
            for source in sources
            for case in CASES[source]
        ],
    )


@_every_case("prune", PRUNE_SOURCES)
def test_prune_deletes_only_a_readable_recording_of_a_removed_test(
    matrix: Matrix, source: str, case: str
) -> None:
    line = matrix.cases("cli:prune", source, CASES[source])[case]
    assert line["outcome"] == "exit", _explain(line)
    assert "Traceback" not in line["output"], _explain(line)
    assert line["code"] in (0, 1, 2), _explain(line)
    if line["deleted"]:
        assert line["readable"], _explain(line)
    if case == AS_RECORDED:
        # The intact recording of the removed test is what prune is for; a tool call's
        # recording may be any test's, and stays unless the run was complete (this one is not).
        assert line["deleted"] == (source != "tool"), _explain(line)


#: What ``apirecorder serve`` replays to an HTTP client: a chat answer, a stream, raw HTTP.
SERVE_SOURCES = ("openai-chat", "openai-stream", "httpx")


@_every_case("serve", SERVE_SOURCES)
def test_serve_answers_a_hostile_file_with_an_error_naming_it_and_keeps_serving(
    matrix: Matrix, source: str, case: str
) -> None:
    line = matrix.cases(f"serve:{source}", source, CASES[source])[case]
    assert line.get("alive"), _explain(line)
    _check_replay(line, case)
