"""The `apirecorder` command on the reference fixtures (copied) and on recordings the tests make."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import ollama
import openai
import pytest

import apirecorder
from apirecorder._cli import main
from apirecorder._cli._files import progress
from apirecorder._cli._views import Style
from tests.upstream import Upstream

FIXTURES = Path(__file__).parent / "fixtures"
SEED = "007c4711219f0fe25bd410d6dd8b18eae1251c3e83ab1f8d1d85ce86f5e197f3.json"
SEED_TEST = (
    "tests/integration/responses/test_basic_responses.py::test_response_streaming_basic"
    "[openai_client-txt=openai/gpt-4o-saturn]"
)
SATURN = (
    'The planet with rings around it that has a name starting with the letter "S" is Saturn. '
    "Saturn is renowned for its prominent and visually striking ring system."
)
TOOL_FILE = "6d9cbffef9f5654b2a520171ac36175f6886d64f0c6c1eb94c9b4d86d718b606.json"
MODELS_HASH = "64a2277c90f0f42576f60c1030e3a020403d34a95f56931b792d5939f4cebc57"
COMMANDS = ["ls", "show", "stats", "verify", "diff", "normalize", "explain", "prune"]
MADE_TEST = "tests/test_app.py::test_agent"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in this process: exit code, stdout, stderr."""
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse: --help, usage errors
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


#: The fixture folders the counts below describe (others, such as reference-2026, are tested
#: where they are used).
COUNTED = ("seed", "reference-sample")


@pytest.fixture
def fixtures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the seed and the reference sample in the current folder (the originals are
    never touched)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    for name in COUNTED:
        shutil.copytree(FIXTURES / name, tmp_path / "fixtures" / name)
    return tmp_path / "fixtures"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Recordings made here through the real SDKs against the local upstream."""
    folder = tmp_path_factory.mktemp("made")
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    with (
        Upstream() as up,
        apirecorder.recording("record", folder),
        apirecorder.test_context(MADE_TEST),
    ):
        client = openai.OpenAI(base_url=f"{up.url}/v1", api_key="sk-test", max_retries=0)
        chat = [{"role": "user", "content": "Which planet has rings?"}]
        client.chat.completions.create(model="gpt-4o", messages=chat, temperature=0.2)
        client.chat.completions.create(model="gpt-4o", messages=chat, temperature=0.7)
        list(
            client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "Weather in Paris?"}],
                tools=[tool],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        list(client.completions.create(model="davinci", prompt="Roses are red", stream=True))
        client.embeddings.create(model="text-embedding-3-small", input="rings")
        list(client.responses.create(model="gpt-4o", input="Tell me a story", stream=True))
        list(client.models.list())
        claude = anthropic.Anthropic(base_url=up.url, api_key="sk-ant-test", max_retries=0)
        with claude.messages.stream(
            model="claude-x", max_tokens=50, messages=[{"role": "user", "content": "Hello Claude"}]
        ) as stream:
            "".join(stream.text_stream)
        llama = ollama.Client(host=up.url)
        list(
            llama.chat(
                model="llama3", messages=[{"role": "user", "content": "Hi Ollama"}], stream=True
            )
        )
    return folder


def _find(folder: Path, **match: Any) -> Path:
    """The one recording in ``folder`` whose request has all of ``match``'s items."""
    found = []
    for path in folder.glob("*.json"):
        request = json.loads(path.read_text())["request"]
        body = request.get("body", request.get("payload")) or {}
        merged = {**body, **request}
        if all(merged.get(key) == value for key, value in match.items()):
            found.append(path)
    assert len(found) == 1, (match, found)
    return found[0]


# -- every command ------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_exit_codes(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert f"usage: apirecorder {command}" in out
    assert "Exit codes: 0 " in " ".join(out.split())


def test_the_installed_command_runs_and_prints_no_colour_into_a_pipe(fixtures: Path) -> None:
    script = Path(sys.executable).parent / "apirecorder"
    done = subprocess.run(
        [str(script), "verify", "fixtures", "--allow-type", "ogx_api"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "21 recordings checked: no problems.\n")
    shown = subprocess.run(
        [str(script), "show", "007c"], capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0
    assert "\x1b[" not in shown.stdout


# -- ls -----------------------------------------------------------------------------------


def test_ls_filters_by_kind_and_prints_a_table(
    fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "ls", "fixtures", "--kind", "tool")
    assert code == 0
    assert out.splitlines() == [
        "HASH          KIND  ENDPOINT           MODEL  FLAGS  TEST",
        "6d9cbffef9f5  tool  tavily.web_search  -      -      "
        "tests/integration/telemetry/test_tool_runtime_metrics.py::test_metrics_accumulate",
        "1 recording",
    ]


def test_ls_filters_by_test_endpoint_and_model(
    fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "ls")[1].splitlines()[-1] == "21 recordings"
    assert run(capsys, "ls", "--endpoint", "/v1/models")[1].splitlines()[-1] == "3 recordings"
    _, out, _ = run(capsys, "ls", "--test", "test_mcp.py", "--model", "llama3.2:*")
    rows = out.splitlines()
    assert rows[-1] == "3 recordings"
    assert all("stream" in row for row in rows[1:-1])
    _, out, _ = run(capsys, "ls", "fixtures/reference-sample", "--endpoint", "/v1/chat/*")
    assert out.splitlines()[-1] == "9 recordings"
    assert run(capsys, "ls", "--model", "no-such-model")[1] == "0 recordings\n"


def test_ls_json_lists_every_field(fixtures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ls", "fixtures/seed", "--json")
    assert code == 0
    (entry,) = json.loads(out)
    assert entry == {
        "path": str(Path("fixtures/seed").resolve() / SEED),
        "hash": SEED.removesuffix(".json"),
        "kind": "inference",
        "test_id": SEED_TEST,
        "endpoint": "/v1/chat/completions",
        "model": "gpt-4o",
        "streaming": True,
        "exception": False,
        "bytes": (FIXTURES / "seed" / SEED).stat().st_size,
        "input_tokens": None,
        "output_tokens": None,
    }


def test_ls_reports_an_unreadable_recording(
    fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (fixtures / "seed" / SEED).write_text("{")
    code, out, err = run(capsys, "ls", "fixtures")
    assert code == 1
    assert out.splitlines()[-1] == "20 recordings"
    assert f"skipped fixtures/seed/{SEED}: the file is not valid JSON" in err
    assert run(capsys, "ls", "nowhere")[0] == 2


# -- show ---------------------------------------------------------------------------------


def test_show_reassembles_a_streamed_chat(
    fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "show", "007c47")
    assert code == 0
    assert out.splitlines() == [
        f"file      fixtures/seed/{SEED}",
        "kind      inference, streaming, 34 chunks",
        f"test      {SEED_TEST}",
        "endpoint  /v1/chat/completions",
        "url       POST https://api.openai.com/v1/v1/chat/completions",
        "model     gpt-4o",
        "",
        "Request",
        "  [user] Which planet has rings around it with a name starting with letter S?",
        '  model: "gpt-4o"',
        "  stream: true",
        "",
        "Response",
        f"  {SATURN}",
    ]
    assert run(capsys, "show", f"fixtures/seed/{SEED}")[1] == out


def test_show_tool_calls_usage_and_errors(
    fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, "show", "8823085c", "--dir", "fixtures")
    assert out.splitlines()[-7:] == [
        "Response",
        "  (no text)",
        "",
        "Tool calls",
        '  1. get_weather {"location":"San Francisco"}  (id call_psji79pf)',
        "",
        "usage     161 tokens in, 18 out",
    ]
    _, out, _ = run(capsys, "show", "28a43dc8")
    assert "  [user] What is in this image? <image>" in out.splitlines()
    assert out.splitlines()[-1] == (
        "error     BadRequestError, status 400: Error code: 400 - {'error': {'message': "
        "'invalid image input', 'type': 'invalid_request_error', 'param': None, 'code': None}}"
    )


def test_show_a_tool_result_a_model_list_and_a_completion_stream(
    fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, "show", TOOL_FILE[:8])
    lines = out.splitlines()
    assert lines[1:4] == [
        "kind      tool",
        "test      tests/integration/telemetry/test_tool_runtime_metrics.py::"
        "test_metrics_accumulate",
        "endpoint  tavily.web_search",
    ]
    assert lines[5:7] == ["Request", '  query: "test query 0"']
    assert '      "query": "test query 0",' in lines  # the JSON string field, expanded
    _, out, _ = run(
        capsys, "show", "fixtures/reference-sample/" + f"models-{MODELS_HASH}-826d44c3.json"
    )
    assert out.splitlines()[-1] == (
        "  8 model(s): all-minilm:l6-v2, gpt-oss:latest, llama3.2:1b, llama3.2:3b, "
        "llama3.2:3b-instruct-fp16, llama3.2:latest, nomic-embed-text:latest, qwen3:4b"
    )
    _, out, _ = run(capsys, "show", "c03bc36f")
    assert "  Blue." in out.splitlines()


def test_show_refuses_ambiguous_missing_and_broken_targets(
    fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "show", MODELS_HASH[:6])
    assert code == 2
    assert f"2 recordings match {MODELS_HASH[:6]}:" in err
    code, _, err = run(capsys, "show", "abcdef0123")
    assert (code, err.strip()) == (
        2,
        "apirecorder show: error: no recording under . has a hash starting with abcdef0123",
    )
    assert run(capsys, "show", "not-a-file")[0] == 2
    broken = fixtures / "broken.json"
    broken.write_text('{"request": {}}')
    code, _, err = run(capsys, "show", str(broken))
    assert code == 1
    assert 'the "response" field is missing' in err


def test_show_json(fixtures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "007c", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["response"]["text"] == {"0": SATURN}
    assert data["response"]["chunks"] == 34
    assert data["request"]["body"]["model"] == "gpt-4o"


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Style.for_stream(Terminal()).red("x") == "\x1b[31mx\x1b[0m"
    assert Style.for_stream(io.StringIO()).red("x") == "x"
    monkeypatch.setenv("NO_COLOR", "1")
    assert Style.for_stream(Terminal()).red("x") == "x"


def test_show_recordings_made_through_every_sdk(
    made: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def shown(path: Path) -> list[str]:
        code, out, _ = run(capsys, "show", str(path))
        assert code == 0
        return out.splitlines()

    lines = shown(_find(made, endpoint="/v1/chat/completions", stream=True))
    call = next(line for line in lines if line.startswith("  1. get_weather "))
    arguments = json.loads(call.removeprefix("  1. get_weather ").split("  (id ")[0])
    assert arguments == {"city": "Weather in Paris?"}
    assert lines[-1] == "usage     3 tokens in, 3 out"

    lines = shown(_find(made, endpoint="/v1/completions"))
    assert lines[lines.index("Response") + 1] == "  Echo: Roses are red"

    lines = shown(_find(made, endpoint="/v1/responses"))
    assert lines[lines.index("Response") + 1] == "  Echo: Tell me a story"

    lines = shown(_find(made, endpoint="/v1/embeddings"))
    assert lines[lines.index("Response") + 1].startswith("  1 embedding(s) of dimension ")

    lines = shown(_find(made, model="claude-x"))
    assert lines[1].startswith("kind      http, streaming, ")
    assert "  [user] Hello Claude" in lines
    assert lines[lines.index("Response") + 2] == "  Echo: Hello Claude"
    assert lines[-1] == "usage     2 tokens in, 3 out"

    lines = shown(_find(made, endpoint="/api/chat"))
    assert lines[lines.index("Response") + 1] == "  Echo: Hi Ollama"


# -- stats --------------------------------------------------------------------------------


def test_stats_counts_and_tokens(fixtures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "stats", "fixtures")
    size = sum(p.stat().st_size for name in COUNTED for p in (FIXTURES / name).rglob("*.json"))
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == f"21 recordings, {size / 1024:.1f} KiB"
    assert lines[1:5] == ["", "By kind (2)", "  20     inference", "  1      tool"]
    assert lines[lines.index("By endpoint (6)") + 1] == "  10     /v1/chat/completions"
    assert lines[-6:] == [
        "Tokens by model (4)",
        "  IN   OUT  MODEL",
        "  7    2    Qwen/Qwen3-0.6B",
        "  750  253  llama3.2:3b-instruct-fp16",
        "  71   52   openai.gpt-oss-20b-1:0",
        "  19   0    text-embedding-3-small",
    ]
    assert "  ... and 8 more (--limit 0 shows all)" in lines


def test_stats_json(fixtures: Path, made: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "stats", "fixtures", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["files"] == 21
    assert data["by_kind"] == {"inference": 20, "tool": 1}
    assert data["by_model"]["llama3.2:3b-instruct-fp16"] == 10
    assert sum(data["by_test"].values()) == 21
    assert data["unreadable"] == []
    data = json.loads(run(capsys, "stats", str(made), "--json")[1])
    assert data["by_kind"] == {"inference": 8, "http": 1}
    assert data["by_test"] == {MADE_TEST: 9}
    assert data["tokens"]["claude-x"] == {"input_tokens": 2, "output_tokens": 3}


# -- verify -------------------------------------------------------------------------------


def test_verify_passes_on_the_fixtures_and_on_made_recordings(
    fixtures: Path, made: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "verify", "fixtures", "--allow-type", "ogx_api")
    assert (code, out) == (0, "21 recordings checked: no problems.\n")
    code, out, _ = run(capsys, "verify", str(made))
    assert (code, out) == (0, "9 recordings checked: no problems.\n")


def test_verify_accepts_a_recording_whose_request_was_redacted(
    tmp_path: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    client = openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="sk-test", max_retries=0)
    with apirecorder.test_context("t.py::t"), apirecorder.recording("record", tmp_path):
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"api_key": "sk-proj-abcdefghijklmnopqrstuvwxyz0123"},
        )
    (path,) = tmp_path.glob("*.json")
    assert "sk-proj-abc" not in path.read_text()
    code, out, _ = run(capsys, "verify", str(tmp_path))
    assert (code, out) == (0, "1 recording checked: no problems.\n")


def test_verify_names_a_type_outside_the_allow_list(
    fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "verify", "fixtures")
    assert code == 1
    assert out.splitlines() == [
        f"fixtures/reference-sample/{TOOL_FILE}: __type__ 'ogx_api.tools.ToolInvocationResult' "
        "is not in the allow-list; replay would refuse it (if your tests call "
        "apirecorder.allow_types for it, pass --allow-type ogx_api)",
        "21 recordings checked: 1 problem.",
    ]


def test_verify_names_a_renamed_and_a_corrupted_file(
    fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    renamed = fixtures / "seed" / ("0" * 64 + ".json")
    (fixtures / "seed" / SEED).rename(renamed)
    corrupted = fixtures / "reference-sample" / TOOL_FILE
    corrupted.write_bytes(corrupted.read_bytes()[:100])
    code, out, _ = run(capsys, "verify", "fixtures")
    assert code == 1
    broken, wrong_name, summary = out.splitlines()
    assert broken.startswith(f"fixtures/reference-sample/{TOOL_FILE}: the file is not valid JSON")
    assert broken.endswith("; it may be truncated or hand-edited: re-record it")
    assert wrong_name == (
        f"fixtures/seed/{renamed.name}: the name is not the hash of its request (renamed, or "
        f"the request was edited); expected the name {SEED}"
    )
    assert summary == "21 recordings checked: 2 problems."


def test_verify_model_list_digests_duplicates_and_orphans(
    fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = fixtures / "reference-sample"
    good = folder / f"models-{MODELS_HASH}-826d44c3.json"
    shutil.copy(good, folder / f"models-{MODELS_HASH}-00000000.json")
    shutil.copy(good, folder / f"{MODELS_HASH}.json")
    code, out, _ = run(capsys, "verify", str(folder), "--allow-type", "ogx_api")
    assert code == 1
    prefix = "fixtures/reference-sample/"
    assert out.splitlines() == [
        f"{prefix}{MODELS_HASH}.json: a model-list recording named like a plain one: replay "
        f"never reads it; expected the name {good.name}",
        f"{prefix}models-{MODELS_HASH}-00000000.json: duplicate model list: the same models "
        f"as {good.name}",
        f"{prefix}models-{MODELS_HASH}-00000000.json: the model-list digest does not match the "
        f"models it holds; expected the name {good.name}",
        "22 recordings checked: 3 problems.",
    ]
    code, out, _ = run(capsys, "verify", str(folder), "--allow-type", "ogx_api", "--json")
    report = json.loads(out)
    assert (code, report["checked"], len(report["problems"])) == (1, 22, 3)


def test_verify_refuses_unsafe_types_and_bad_options(
    fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = fixtures / "seed" / SEED
    data = json.loads(seed.read_text())
    data["response"]["body"][0]["__type__"] = "os.system"
    seed.write_text(json.dumps(data))
    code, out, _ = run(capsys, "verify", "fixtures/seed")
    assert code == 1
    assert "__type__ 'os.system' is not in the allow-list" in out
    assert run(capsys, "verify", "--normalizer", "nonsense")[0] == 2
    assert run(capsys, "verify", "missing-folder")[0] == 2


# -- diff ---------------------------------------------------------------------------------


def test_diff_of_two_fixtures(fixtures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diff", "0a2adfcb", "c03bc36f")
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith("--- fixtures/reference-sample/0a2adfcb")
    assert lines[1].startswith("+++ fixtures/reference-sample/c03bc36f")
    assert lines[2] == "Request (A -> B):"
    for expected in [
        '  stop: removed (was ["blathering", "1963"])',
        "  stream: false -> true",
        "  max_tokens: added 50",
        "Response (A -> B):",
        "  streaming: false -> true",
        "  chunks: 0 -> 51",
        "  usage.input_tokens: 48 -> null",
    ]:
        assert expected in lines
    code, out, _ = run(capsys, "diff", "0a2adfcb", "0a2adfcb")
    assert (code, out.splitlines()[-1]) == (0, "The recordings are the same.")
    assert run(capsys, "diff", "0a2adfcb", "ffffffff")[0] == 2


def test_diff_of_two_made_recordings_shows_the_changed_parameter(
    made: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _find(made, temperature=0.2)
    new = _find(made, temperature=0.7)
    code, out, _ = run(capsys, "diff", str(old), str(new))
    assert code == 1
    assert out.splitlines()[2:] == ["Request (A -> B):", "  temperature: 0.2 -> 0.7"]
    data = json.loads(run(capsys, "diff", str(old), str(new), "--json")[1])
    assert data["request"] == [{"path": "temperature", "change": "changed", "old": 0.2, "new": 0.7}]
    assert data["response"] == []


# -- normalize ----------------------------------------------------------------------------


def test_normalize_is_a_dry_run_until_yes(
    fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = fixtures / "seed" / SEED
    data = json.loads(seed.read_text())
    data["response"]["body"][0]["__data__"].update(id="chatcmpl-live", created=1700000000)
    seed.write_text(json.dumps(data, indent=2))
    before = seed.read_bytes()

    code, out, _ = run(capsys, "normalize", "fixtures/seed")
    assert (code, out.splitlines()) == (
        0,
        [
            f"would normalize fixtures/seed/{SEED} (2 values)",
            "1 of 1 recordings would change; run with --yes to write them.",
        ],
    )
    assert seed.read_bytes() == before
    assert run(capsys, "normalize", "fixtures/seed", "--check")[0] == 1

    code, out, _ = run(capsys, "normalize", "fixtures/seed", "--yes")
    assert out.splitlines() == [
        f"normalized fixtures/seed/{SEED} (2 values)",
        "1 of 1 recordings normalized.",
    ]
    chunk = json.loads(seed.read_text())["response"]["body"][0]["__data__"]
    assert (chunk["id"], chunk["created"]) == (f"rec-{SEED[:12]}", 0)
    assert run(capsys, "normalize", "fixtures/seed", "--check")[1] == (
        "1 recordings checked: all normalized.\n"
    )
    assert run(capsys, "verify", "fixtures/seed")[0] == 0


def test_normalize_skips_ids_that_a_recorded_request_sends_back(
    fixtures: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = fixtures / "reference-sample"
    _, out, _ = run(capsys, "normalize", str(folder))
    assert "would normalize fixtures/reference-sample/8823085c" in out
    later = json.loads((folder / TOOL_FILE).read_text())
    later["request"]["kwargs"]["query"] = "weather for call_psji79pf"
    (folder / ("1" * 64 + ".json")).write_text(json.dumps(later))
    code, out, err = run(capsys, "normalize", str(folder), "--yes")
    assert code == 0
    assert "8823085c" not in out
    assert (
        "skipped fixtures/reference-sample/8823085c58bdb7dca853d7a661e51d80446d906528ee8f715d"
        "57f748fd533afc.json: the request of fixtures/reference-sample/"
        f"{'1' * 64}.json sends its id call_psji79pf back"
    ) in err


# -- explain ------------------------------------------------------------------------------


def _seed_body(fixtures: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((fixtures / "seed" / SEED).read_text())["request"]["body"]
    return body


def test_explain_a_request_that_replays(fixtures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (fixtures / "body.json").write_text(json.dumps(_seed_body(fixtures)))
    code, out, _ = run(
        capsys,
        "explain",
        "fixtures/body.json",
        "--dir",
        "fixtures/seed",
        "--test-id",
        SEED_TEST,
        "--endpoint",
        "/v1/chat/completions",
    )
    assert (code, out.splitlines()) == (
        0,
        [
            f"Replay would read fixtures/seed/{SEED}",
            f"  test id:  {SEED_TEST}",
            "  endpoint: /v1/chat/completions",
            f"  hash:     {SEED.removesuffix('.json')}",
        ],
    )


def test_explain_a_miss_from_stdin(
    fixtures: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _seed_body(fixtures)
    body["messages"][0]["content"] = body["messages"][0]["content"].replace("rings", "moons")
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(body)))
    code, out, _ = run(
        capsys,
        "explain",
        "--dir",
        "fixtures/seed",
        "--test-id",
        SEED_TEST,
        "--url",
        "https://api.openai.com/v1/v1/chat/completions",
    )
    lines = out.splitlines()
    assert code == 1
    assert lines[0] == "No recording for this inference call (mode: replay)."
    assert lines[6] == (
        f"Nearest recording (same test and endpoint): {(fixtures / 'seed' / SEED).resolve()}"
    )
    assert lines[8:12] == [
        "    messages[0].content:",
        "      - Which planet has rings around it with a name starting with letter S?",
        "      + Which planet has moons around it with a name starting with letter S?",
        "      ~ Which planet has [-rings-]{+moons+} around it with a name...",
    ]


def test_explain_a_tool_call_and_json(
    fixtures: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (fixtures / "kwargs.json").write_text('{"query": "test query 0"}')
    code, out, _ = run(
        capsys,
        "explain",
        "fixtures/kwargs.json",
        "--dir",
        "fixtures/reference-sample",
        "--tool",
        "tavily.web_search",
        "--json",
    )
    assert code == 0
    assert json.loads(out) == {
        "hash": TOOL_FILE.removesuffix(".json"),
        "test_id": None,
        "endpoint": "tavily.web_search",
        "found": True,
        "path": str((fixtures / "reference-sample" / TOOL_FILE).resolve()),
        "explanation": None,
    }


def test_explain_usage_errors(fixtures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (fixtures / "body.json").write_text("{not json")
    assert run(capsys, "explain", "fixtures/body.json", "--dir", "fixtures")[0] == 2
    code, _, err = run(
        capsys, "explain", "fixtures/body.json", "--dir", "fixtures", "--endpoint", "/v1/x"
    )
    assert code == 2
    assert "the body fixtures/body.json is not JSON" in err
    assert run(capsys, "explain", "--endpoint", "/v1/x")[0] == 2  # no --dir or --root


# -- progress -----------------------------------------------------------------------------


def test_a_progress_bar_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    assert list(progress(list(range(300)), "reading", terminal)) == list(range(300))
    assert list(progress(list(range(300)), "reading", pipe)) == list(range(300))
    assert "\rreading [##############################] 300/300" in terminal.getvalue()
    assert pipe.getvalue() == ""
