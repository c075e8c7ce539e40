"""Secrets never reach disk: the default rules, user rules, and every recording layer.

The rules are checked on the three record shapes interceptors hand to ``Session.save``
(inference, tool and raw HTTP, DESIGN 3), then end to end through the real client
libraries against the local upstream, scanning every byte written.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import anthropic
import httpx
import ollama
import openai
import pytest
import requests
import tavily  # type: ignore[import-untyped]
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

import apirecorder
from apirecorder._cli import main as cli_main
from apirecorder._hashing import inference_request_hash
from apirecorder._recorder import Session
from apirecorder._redaction import PLACEHOLDER, contains_placeholder, redact_recording
from tests.mcp_servers import notes_server
from tests.upstream import Upstream

pytest_plugins = ["pytester"]

R = PLACEHOLDER

# Real-looking keys, one per place a key can hide. None of them is real.
OPENAI_KEY = "sk-proj-Q3vLw8XnT2bRk9YpZ4mC7hJd1sFg6aUe0iOy5tWq8rEz3xNc"
ANTHROPIC_KEY = "sk-ant-api03-Xp9Lm2Qw7Rt4Yk8Zn3Bv6Hc1Jd5Fs0Ga-7uIeO2wP4qT9"
TAVILY_KEY = "tvly-dev-4Kq8Zp2Xw7Lm9Rt3Yb6Nc1Vd5"
GROQ_KEY = "gsk_7Hq2Lp9Xz4Wm8Rt3Yk6Nb1Vc5Jd0Fs2Ga"
OLLAMA_TOKEN = "olt_9Zx8Cv7Bn6Mq5Wr4Ep3Tk2Yl1Uj0Hg"
CUSTOM_SECRET = "corp-7f3a9b2c1d8e4f6a0b5c3d2e1f9a8b7c"
QUERY_KEY = "qk-5Tz1Rb8Xw3Nm6Lp0Yc4Vd9Hf2Js7Gk"
COOKIE = "sess-8Xk2Lq7Zp4Wm1Rt9Yb3Nc6Vd0Hf5Js"
ALL_KEYS = (
    OPENAI_KEY,
    ANTHROPIC_KEY,
    TAVILY_KEY,
    GROQ_KEY,
    OLLAMA_TOKEN,
    CUSTOM_SECRET,
    QUERY_KEY,
    COOKIE,
)


@pytest.fixture
def session(tmp_path: Path) -> Any:
    with apirecorder.recording("record", tmp_path) as active:
        yield active


def _options_session(tmp_path: Path, **options: Any) -> Session:
    with apirecorder.recording("record", tmp_path, **options) as active:
        return active


def _http_record(headers: dict[str, Any], response_headers: Any = None, **extra: Any) -> Any:
    return {
        "test_id": "t.py::t",
        "request": {
            "test_id": "t.py::t",
            "method": "GET",
            "url": extra.pop("url", "https://api.example.com/v1/things"),
            "headers": headers,
            "payload": extra.pop("payload", None),
        },
        "response": {
            "status": 200,
            "headers": response_headers if response_headers is not None else {},
            "body": extra.pop("body", {"ok": True}),
        },
    }


# -- headers --------------------------------------------------------------------------

SECRET_HEADERS = [
    "Authorization",
    "Proxy-Authorization",
    "X-Api-Key",
    "api-key",
    "Cookie",
    "Set-Cookie",
    "OpenAI-Organization",
    "OpenAI-Project",
    "X-Auth-Token",
    "X-Client-Secret",
    "x-goog-api-key",
    "Anthropic-Key",
]


@pytest.mark.parametrize("name", SECRET_HEADERS)
def test_credential_headers_are_redacted_in_requests_and_responses(
    name: str, session: Session
) -> None:
    record = _http_record(
        {name: "value-1", "Accept": "application/json"},
        {name: "value-2", "Content-Type": "application/json"},
    )
    written = redact_recording(record, session)
    assert written["request"]["headers"] == {name: R, "Accept": "application/json"}
    assert written["response"]["headers"] == {name: R, "Content-Type": "application/json"}


def test_repeated_and_paired_headers_keep_their_shape(session: Session) -> None:
    record = _http_record({}, {"set-cookie": ["a=1", "b=2"], "vary": ["accept", "origin"]})
    assert redact_recording(record, session)["response"]["headers"] == {
        "set-cookie": [R, R],
        "vary": ["accept", "origin"],
    }
    pairs = _http_record({}, [["Set-Cookie", "a=1"], ["Server", "upstream"]])
    assert redact_recording(pairs, session)["response"]["headers"] == [
        ["Set-Cookie", R],
        ["Server", "upstream"],
    ]


# -- query parameters -----------------------------------------------------------------

QUERY_PARAMS = ["key", "api_key", "apikey", "token", "access_token", "client_secret", "sig"]


@pytest.mark.parametrize("name", [*QUERY_PARAMS, "signature", "API_KEY"])
def test_key_like_query_parameters_are_redacted_in_every_url(name: str, session: Session) -> None:
    url = f"https://api.example.com/v1/x?q=saturn&{name}=s3cr3t-value&keyword=rings"
    record = _http_record(
        {},
        url=url,
        payload={"callback": url},
        body={"next": f"https://api.example.com/v1/x?page=2&{name}=other"},
    )
    written = redact_recording(record, session)
    expected = f"https://api.example.com/v1/x?q=saturn&{name}={R}&keyword=rings"
    assert written["request"]["url"] == expected
    assert written["request"]["payload"]["callback"] == expected
    assert written["response"]["body"]["next"] == f"https://api.example.com/v1/x?page=2&{name}={R}"


def test_similar_query_parameters_are_kept(session: Session) -> None:
    url = "https://api.example.com/x?keyword=a&monkey=b&tokens=3&max_tokens=5"
    assert redact_recording(_http_record({}, url=url), session)["request"]["url"] == url


def test_a_form_encoded_payload_is_redacted_like_a_query(session: Session) -> None:
    record = _http_record({}, payload="grant_type=client_credentials&client_secret=abc123")
    written = redact_recording(record, session)
    assert written["request"]["payload"] == f"grant_type=client_credentials&client_secret={R}"


# -- body fields and tool kwargs ------------------------------------------------------


def test_secret_fields_in_an_inference_body(session: Session) -> None:
    record = {
        "test_id": "t.py::t",
        "request": {
            "method": "POST",
            "url": "http://localhost/v1/v1/chat/completions",
            "headers": {},
            "body": {
                "model": "gpt-4o",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}],
                "extra_body": {"api_key": "abc", "auth": {"client_secret": "def", "token": 7}},
                "extra_query": {"key": "ghi", "keywords": "jkl"},
                "metadata": {"session_token": "mno", "Password": "pqr", "openai_api_key": "x"},
            },
            "endpoint": "/v1/chat/completions",
            "model": "gpt-4o",
        },
        "response": {"body": None, "is_streaming": False},
    }
    body = redact_recording(record, session)["request"]["body"]
    assert body == {
        "model": "gpt-4o",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
        "extra_body": {"api_key": R, "auth": {"client_secret": R, "token": 7}},
        "extra_query": {"key": R, "keywords": "jkl"},
        "metadata": {"session_token": R, "Password": R, "openai_api_key": R},
    }


def test_secret_tool_kwargs(session: Session) -> None:
    record = {
        "test_id": "t.py::t",
        "request": {
            "test_id": "t.py::t",
            "provider": "tavily",
            "tool_name": "web_search",
            "kwargs": {"query": "saturn", "api_key": "abc", "options": {"access_token": "d"}},
        },
        "response": {"body": {"results": []}, "is_streaming": False},
    }
    kwargs = redact_recording(record, session)["request"]["kwargs"]
    assert kwargs == {"query": "saturn", "api_key": R, "options": {"access_token": R}}


def test_response_fields_keep_words_and_signatures(session: Session) -> None:
    chunk = {
        "__type__": "x.Chunk",
        "__data__": {
            "logprobs": [{"token": " Saturn", "logprob": -0.1}, {"token": "Hello world"}],
            "thinking": {"type": "thinking", "signature": "EqQBCkgIARABGAIiQL7X9mZ2"},
            "access_token": "eyJhbGciOi",
            "key": "Zq8Lw3Xp7Nm2Rt6Yb1Vc",
            "usage": {"prompt_tokens": 3, "total_tokens": 5},
        },
    }
    written = redact_recording(_http_record({}, body=chunk), session)["response"]["body"]
    assert written["__data__"] == {
        **chunk["__data__"],
        "access_token": R,
        "key": R,
    }


# -- environment values and key formats -----------------------------------------------


@pytest.mark.parametrize(
    "variable",
    ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TAVILY_API_KEY", "AZURE_OPENAI_API_KEY", "HF_TOKEN"],
)
def test_environment_secrets_are_redacted_wherever_they_appear(
    variable: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    value = "v4lue-" + variable.lower()
    monkeypatch.setenv(variable, value)
    record = _http_record(
        {"X-Trace": f"trace {value} end"},
        url=f"https://api.example.com/{value}/x",
        payload={"messages": [{"content": f"my key is {value}."}]},
        body={f"echo-{value}": [f"{value}{value}"]},
    )
    written = redact_recording(record, _options_session(tmp_path))
    assert value not in json.dumps(written)
    assert written["request"]["headers"]["X-Trace"] == f"trace {R} end"
    assert written["request"]["payload"]["messages"][0]["content"] == f"my key is {R}."
    assert written["response"]["body"] == {f"echo-{R}": [R + R]}


def test_environment_secrets_in_another_case_or_percent_encoded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    record = _http_record(
        {},
        url=f"https://x.example/?state={quote(secret, safe='')}",
        body={"slug": secret.lower(), "shout": secret.upper()},
    )
    written = redact_recording(record, _options_session(tmp_path))
    assert written["request"]["url"] == f"https://x.example/?state={R}"
    assert written["response"]["body"] == {"slug": R, "shout": R}


def test_environment_secret_names_and_the_length_floor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MYCORP_API_KEY", "mycorp-key-value")  # *_API_KEY counts
    monkeypatch.setenv("BILLING_PASSWORD", "hunter2hunter2")  # *_PASSWORD counts
    monkeypatch.setenv("SERVICE_CREDENTIAL", "credential-value")  # added by the user
    monkeypatch.setenv("DEBUG_TOKEN", "1")  # too short to redact safely
    monkeypatch.setenv("UNRELATED_SETTING", "plain-setting-value")
    text = "mycorp-key-value hunter2hunter2 credential-value 1 plain-setting-value"
    record = _http_record({}, payload=text)
    session = _options_session(tmp_path, secret_env_vars=["SERVICE_CREDENTIAL"])
    assert redact_recording(record, session)["request"]["payload"] == (
        f"{R} {R} {R} 1 plain-setting-value"
    )


@pytest.mark.parametrize(
    "secret",
    [
        OPENAI_KEY,
        "sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4",
        ANTHROPIC_KEY,
        TAVILY_KEY,
        GROQ_KEY,
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
        "hf_" + "aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV1wX",
    ],
)
def test_known_key_formats_are_redacted_in_any_string(secret: str, session: Session) -> None:
    record = _http_record({}, body={"text": f"the key is {secret}, keep it safe"})
    written = redact_recording(record, session)
    assert written["response"]["body"]["text"] == f"the key is {R}, keep it safe"


def test_bearer_tokens_in_text_are_redacted_but_prose_is_not(session: Session) -> None:
    record = _http_record(
        {},
        body={
            "a": "curl -H 'Authorization: Bearer abc123def456ghi789' https://x",
            "b": "The bearer certificates were issued in 1920.",
            "c": "sk-learn-tutorial-for-beginners is a slug, task-runner-0123456789abcdefghij too",
        },
    )
    body = redact_recording(record, session)["response"]["body"]
    assert body["a"] == f"curl -H 'Authorization: Bearer {R}' https://x"
    assert body["b"] == record["response"]["body"]["b"]
    assert body["c"] == record["response"]["body"]["c"]


# -- user rules -----------------------------------------------------------------------


def test_user_rules_headers_json_paths_and_patterns(tmp_path: Path) -> None:
    session = _options_session(
        tmp_path,
        redact_headers=["X-Customer-Id"],
        redact_json_paths=[
            "request.payload.user.email",
            "response.body.items[*].owner",
            "$.response.body.items[0].id",
            'response.body["odd.key"]',
        ],
        redact_patterns=[r"order-\d{6}", re.compile(r"phone=(\+?\d+)")],
    )
    record = _http_record(
        {"X-Customer-Id": "c-42", "X-Other": "kept"},
        payload={"user": {"email": "ada@example.com", "name": "Ada"}},
        body={
            "items": [{"id": 1, "owner": "ada"}, {"id": 2, "owner": "bob"}],
            "odd.key": "x",
            "note": "order-123456 shipped; phone=+3312345 noted",
        },
    )
    written = redact_recording(record, session)
    assert written["request"]["headers"] == {"X-Customer-Id": R, "X-Other": "kept"}
    assert written["request"]["payload"]["user"] == {"email": R, "name": "Ada"}
    assert written["response"]["body"] == {
        "items": [{"id": R, "owner": R}, {"id": 2, "owner": R}],
        "odd.key": R,
        "note": f"{R} shipped; phone={R} noted",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"redact_patterns": ["(unclosed"]}, "redact_patterns: '(unclosed' is not a valid regex"),
        ({"redact_json_paths": ["request..body"]}, "cannot read the JSON path 'request..body'"),
    ],
)
def test_bad_user_rules_are_named(options: dict[str, Any], message: str, tmp_path: Path) -> None:
    session = _options_session(tmp_path, **options)
    with pytest.raises(ValueError, match=re.escape(message)):
        redact_recording(_http_record({}), session)


def test_the_callers_objects_are_never_changed(session: Session) -> None:
    record = _http_record(
        {"Authorization": "Bearer abc", "Accept": "x"},
        {"set-cookie": ["a=1"]},
        url="https://x.example/?key=abc",
        payload={"api_key": "abc", "nested": [{"token": "t"}]},
    )
    before = copy.deepcopy(record)
    written = redact_recording(record, session)
    assert record == before
    assert written != before


# -- end to end through the OpenAI SDK ------------------------------------------------

TEST_ID = "tests/test_redaction.py::scenario"


def _openai(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", max_retries=0)


def _chat_with_secrets(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": f"my key is {OPENAI_KEY}"}],
        extra_query={"api_key": QUERY_KEY},
        extra_headers={"X-Api-Key": CUSTOM_SECRET},
        extra_body={"metadata": {"client_secret": CUSTOM_SECRET}},
    )


def test_redacted_recording_replays_and_keeps_its_hash(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    client = _openai(upstream.url)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = _chat_with_secrets(client)
    assert OPENAI_KEY in (live.choices[0].message.content or "")  # the upstream echoes it
    (path,) = tmp_path.glob("*.json")
    raw = path.read_bytes()
    for key in (OPENAI_KEY, QUERY_KEY, CUSTOM_SECRET):
        assert key.encode() not in raw
    data = json.loads(raw)
    assert data["request"]["body"]["messages"][0]["content"] == f"my key is {R}"
    assert data["request"]["body"]["extra_query"] == {"api_key": R}
    assert data["request"]["body"]["extra_body"] == {"metadata": {"client_secret": R}}

    # The file is named by the hash of the request as it was made, secret-named fields
    # masked (so another key replays it) and secrets inside free text as they were...
    hashed = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": f"my key is {OPENAI_KEY}"}],
        "extra_query": {"api_key": R},
        "extra_body": {"metadata": {"client_secret": R}},
    }
    url = data["request"]["url"]
    assert path.stem == inference_request_hash("POST", url, hashed, TEST_ID)
    # ...so a stored body whose free text was redacted no longer hashes to the name; a
    # checker of name == hash must skip recordings that hold the placeholder.
    assert path.stem != inference_request_hash("POST", url, data["request"]["body"], TEST_ID)
    assert contains_placeholder(data["request"])

    # The same call replays offline from the redacted file.
    stopped_url = upstream.url
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        replayed = _chat_with_secrets(_openai(stopped_url))
    assert replayed.choices[0].message.content == f"Echo: my key is {R}"


# -- every layer at once --------------------------------------------------------------


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("TAVILY_API_KEY", TAVILY_KEY)
    monkeypatch.setenv("GROQ_API_KEY", GROQ_KEY)
    monkeypatch.setenv("MYCORP_SECRET", CUSTOM_SECRET)


@apirecorder.tool("corp", name="lookup")
def corp_lookup(query: str, api_key: str) -> dict[str, Any]:
    """A tool that takes its key as an argument and mentions it in its answer."""
    return {"answer": f"found {query} with {api_key}", "items": [1, 2]}


async def _aiohttp_calls(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        response = await http.get(
            f"{url}/misc/json",
            params={"access_token": QUERY_KEY, "q": "1"},
            headers={"Proxy-Authorization": f"Basic {CUSTOM_SECRET}"},
        )
        return dict(await response.json())


async def _mcp_calls(url: str) -> list[Any]:
    async with (
        apirecorder.mcp_client(streamable_http_client(url)) as (read, write),
        ClientSession(read, write) as mcp_session,
    ):
        await mcp_session.initialize()
        missing = await mcp_session.call_tool("find_note", {"title": CUSTOM_SECRET})
        prompt = await mcp_session.get_prompt("summarize", {"title": f"x {GROQ_KEY}"})
        return [missing.model_dump(mode="json"), prompt.model_dump(mode="json")]


def _make_every_call(url: str, mcp_url: str) -> list[Any]:
    """One call per layer, each carrying keys in its headers, query, body or arguments."""
    results: list[Any] = []
    # The OpenAI SDK layer (key from the environment, echoed back in the answer).
    client = _openai(url)
    results.append(_chat_with_secrets(client).choices[0].message.content)
    # The HTTP layer under the SDK (with_raw_response): Authorization header, query key.
    raw = client.with_raw_response.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "raw"}],
        extra_query={"key": QUERY_KEY},
    )
    results.append(raw.parse().choices[0].message.content)
    # Anthropic's SDK, through the HTTP layer: x-api-key header.
    claude = anthropic.Anthropic(base_url=url, max_retries=0)
    message = claude.messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=20,
        messages=[{"role": "user", "content": f"repeat {ANTHROPIC_KEY}"}],
    )
    results.append(message.model_dump(mode="json")["content"])
    # The Ollama SDK layer, with an Authorization header on the client.
    local = ollama.Client(host=url, headers={"Authorization": f"Bearer {OLLAMA_TOKEN}"})
    chat = local.chat(model="llama3.2", messages=[{"role": "user", "content": f"hi {GROQ_KEY}"}])
    results.append(chat.message.content)
    # Plain httpx, requests and aiohttp: headers, query strings, JSON bodies, cookies.
    got = httpx.get(
        f"{url}/misc/json",
        params={"api_key": QUERY_KEY, "q": "saturn"},
        headers={"X-Goog-Api-Key": CUSTOM_SECRET, "Cookie": f"session={COOKIE}"},
    )
    results.append(got.json())
    posted = requests.post(
        f"{url}/misc/echo",
        json={"api_key": CUSTOM_SECRET, "note": f"token {OPENAI_KEY}"},
        headers={"Authorization": f"Bearer {OLLAMA_TOKEN}", "api-key": CUSTOM_SECRET},
    )
    results.append(posted.json())
    results.append(requests.get(f"{url}/misc/headers").headers.get("set-cookie"))
    results.append(asyncio.run(_aiohttp_calls(url)))
    # Tools: a decorated function with a key argument, and Tavily's real client.
    results.append(corp_lookup("saturn", api_key=CUSTOM_SECRET))
    search = tavily.TavilyClient(api_key=TAVILY_KEY, api_base_url=url)
    results.append(search.search(f"rings {TAVILY_KEY}", max_results=1)["results"][0]["title"])
    # MCP: tool and prompt arguments, echoed back in an error and a prompt.
    results.append(asyncio.run(_mcp_calls(mcp_url)))
    return results


def _every_layer_session(mode: str, folder: Path) -> Any:
    return apirecorder.recording(
        mode,
        folder,
        tools=["tavily:TavilyClient.search tavily web_search"],
    )


def _layer(request: dict[str, Any]) -> str:
    if "provider" in request:
        return f"tool {request['provider']}.{request['tool_name']}"
    if "payload" in request:
        return f"http {request['method']} {urlsplit(request['url']).path}"
    return f"sdk {request['endpoint']}"


def _leaks(folder: Path) -> list[str]:
    leaks: list[str] = []
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        raw = path.read_bytes()
        for key in ALL_KEYS:
            for form in {key, key.lower(), key.upper(), quote(key, safe="")}:
                if form.encode() in raw:
                    leaks.append(f"{path.name}: {key[:8]}")
    return leaks


def test_every_layer_keeps_every_key_off_disk(
    upstream: Upstream,
    tmp_path: Path,
    secret_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "recordings"
    with (
        notes_server.serve() as mcp_url,
        apirecorder.test_context(TEST_ID),
        _every_layer_session("record", folder),
    ):
        live = _make_every_call(upstream.url, mcp_url)
    files = sorted(folder.glob("*.json"))
    assert sorted(_layer(json.loads(p.read_bytes())["request"]) for p in files) == [
        "http GET /misc/headers",
        "http GET /misc/json",
        "http GET /misc/json",
        "http POST /misc/echo",
        "http POST /v1/chat/completions",
        "http POST /v1/messages",
        "sdk /api/chat",
        "sdk /v1/chat/completions",
        "tool corp.lookup",
        "tool mcp:/mcp.initialize",
        "tool mcp:/mcp.prompts/get",
        "tool mcp:/mcp.tools/call",
        "tool tavily.web_search",
    ]
    assert _leaks(folder) == []

    # apirecorder scan agrees: nothing found, with the same keys in the environment.
    capsys.readouterr()
    assert cli_main(["scan", str(folder)]) == 0
    assert "no secrets found in 13 file(s)" in capsys.readouterr().err

    # Every layer replays offline from the redacted files (nothing listens on port 9).
    url = upstream.url
    upstream.stop()
    with apirecorder.test_context(TEST_ID), _every_layer_session("replay", folder):
        replayed = _make_every_call(url, "http://127.0.0.1:9/mcp")
    assert len(replayed) == len(live)
    assert replayed[0] == f"Echo: my key is {R}"
    assert replayed[-1][0]["content"][0]["text"].endswith(f"no note titled '{R}'")

    # A key planted by hand is found, named and masked.
    planted = files[0]
    data = json.loads(planted.read_bytes())
    data["request"]["headers"] = {"authorization": f"Bearer {OPENAI_KEY}"}
    planted.write_text(json.dumps(data, indent=2), encoding="utf-8")
    assert cli_main(["scan", str(folder)]) == 1
    out = capsys.readouterr().out
    assert f"{planted}: $.request.headers.authorization: credential-header: Bearer" in out
    assert OPENAI_KEY not in out and OPENAI_KEY[8:20] not in out


# -- ini keys -------------------------------------------------------------------------

INI_TEST = """
import os
import openai
import pytest

@pytest.mark.apirecorder(redact_patterns=[r"planet-\\d+"])
def test_chat():
    client = openai.OpenAI(base_url=os.environ["UPSTREAM"] + "/v1", api_key="k", max_retries=0)
    client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "order-123456 planet-7 ada@example.com"}],
        user="customer-42",
    )
"""


@pytest.fixture(scope="module", autouse=True)
def _import_interceptors_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Import the interceptors before pytester snapshots sys.modules (see test_pytest_plugin)."""
    with apirecorder.recording("live", tmp_path_factory.mktemp("warm")):
        pass


def test_ini_rules_add_to_marker_rules(
    pytester: pytest.Pytester, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPSTREAM", upstream.url)
    monkeypatch.setenv("CORP_MAIL", "ada@example.com")
    pytester.makeini(
        "[pytest]\n"
        "apirecorder_redact_patterns =\n    order-\\d{6}\n"
        "apirecorder_redact_json_paths =\n    request.body.user\n"
        "apirecorder_secret_env_vars =\n    CORP_MAIL\n"
    )
    pytester.makepyfile(test_ini=INI_TEST)
    result = pytester.runpytest(
        "-p", "no:hypothesispytest", "--apirecorder-mode=record", "--apirecorder-dir=rec"
    )
    result.assert_outcomes(passed=1)
    (path,) = (pytester.path / "rec").glob("*.json")
    body = json.loads(path.read_bytes())["request"]["body"]
    assert body["messages"][0]["content"] == f"{R} {R} {R}"
    assert body["user"] == R


def test_a_tool_recorded_with_one_key_replays_with_another(tmp_path: Path) -> None:
    calls: list[str] = []

    @apirecorder.tool("search")
    def search(query: str, api_key: str) -> dict[str, str]:
        calls.append(api_key)
        return {"answer": f"about {query}"}

    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        recorded = search("rings", api_key="tvly-recording-key-0123456789abcdef")
    (path,) = tmp_path.glob("*.json")
    assert "tvly-recording-key" not in path.read_text()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        assert search("rings", api_key="dummy-key-in-ci") == recorded
    assert calls == ["tvly-recording-key-0123456789abcdef"]
