"""Redaction of requests and responses as the wire carried them, whatever the body format.

Each case is a realistic raw HTTP record as the HTTP layer hands it to ``Session.save``
(DESIGN 3; body forms from ``_httpbody.encode_body``), holding one secret. Every byte of the
redacted record is searched for the secret raw, lower-cased, percent-encoded and
base64-encoded (and inside bodies stored as base64).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import apirecorder
from apirecorder._httpbody import encode_body
from apirecorder._recorder import Session
from apirecorder._redaction import PLACEHOLDER, redact_recording, redact_text

R = PLACEHOLDER
SECRET = "Zq8Lw3Xp7Nm2Rt6Yb1Vc4Kd9Hs5Jf0Ga"
OPENAI_KEY = "sk-proj-Q3vLw8XnT2bRk9YpZ4mC7hJd1sFg6aUe0iOy5tWq8rEz3xNc"
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMDk4NzY1NDMyMSIsImF1ZCI6Im15YXBwIn0"
    ".Tm9uZSBvZiB0aGlzIGlzIGEgcmVhbCBzaWduYXR1cmUgYXQgYWxs"
)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    with apirecorder.recording("record", tmp_path) as active:
        yield active


def _record(
    *,
    url: str = "https://api.example.com/v1/things",
    method: str = "POST",
    headers: dict[str, Any] | None = None,
    payload: Any = None,
    response_headers: dict[str, Any] | None = None,
    body: bytes = b'{"ok":true}',
    content_type: str = "application/json",
    status: int = 200,
    test_id: str = "tests/test_x.py::test_y",
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "status": status,
        "headers": {"content-type": content_type, **(response_headers or {})},
    }
    response.update(encode_body(body, content_type))
    return {
        "test_id": test_id,
        "request": {
            "test_id": test_id,
            "method": method,
            "url": url,
            "headers": headers or {},
            "payload": payload,
        },
        "response": response,
    }


def _b64_forms(secret: str) -> set[str]:
    # The secret base64-encoded at each of the three alignments it can take inside a body.
    forms = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret.encode()).decode()
        forms.add(encoded[4 * ((shift + 2) // 3) : -4])
    return forms


def _every_byte(written: dict[str, Any]) -> str:
    text = json.dumps(written, ensure_ascii=False)
    # Bodies stored as base64 are searched decoded too.
    response = written.get("response", {})
    if response.get("body_format") == "base64" and response.get("body"):
        text += base64.b64decode(response["body"]).decode("latin-1")
    payload = written.get("request", {}).get("payload")
    if isinstance(payload, str) and payload.startswith("base64:"):
        text += base64.b64decode(payload[7:]).decode("latin-1")
    return text


def assert_no_leak(written: dict[str, Any], secret: str) -> None:
    haystack = _every_byte(written)
    lowered = haystack.lower()
    for form in {secret, quote(secret, safe=""), *_b64_forms(secret)}:
        assert form not in haystack, f"{form!r} leaked"
        assert form.lower() not in lowered, f"{form!r} leaked in another case"


def _form(body: str) -> dict[str, Any]:
    return {"payload": body, "headers": {"content-type": "application/x-www-form-urlencoded"}}


def _multipart(name: str, value: str) -> str:
    return (
        "--apirecorder-boundary\r\n"
        'Content-Disposition: form-data; name="user"\r\n\r\nada\r\n'
        "--apirecorder-boundary\r\n"
        f'Content-Disposition: form-data; name="{name}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
        f"{value}\r\n"
        "--apirecorder-boundary--\r\n"
    )


def _sse(*pieces: str) -> bytes:
    events = [
        json.dumps({"choices": [{"delta": {"content": piece}}]}, separators=(",", ":"))
        for piece in pieces
    ]
    return "".join(f"data: {event}\n\n" for event in events).encode() + b"data: [DONE]\n\n"


# (record, secret) per leak: request side, response side, every body form.
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "form refresh_token (Google OAuth)": (
        _record(**_form(f"grant_type=refresh_token&refresh_token=1//0g{SECRET}&client_id=a")),
        f"1//0g{SECRET}",
    ),
    "form password": (_record(**_form(f"username=ada&password=hunter2-{SECRET}")), SECRET),
    "form client_secret percent-encoded": (
        _record(**_form(f"client_id=a&client_secret={quote(SECRET + '/+=')}")),
        SECRET,
    ),
    "query api-key (Azure)": (
        _record(url=f"https://x.openai.azure.com/o?api-key={SECRET}"),
        SECRET,
    ),
    "query subscription-key": (
        _record(url=f"https://x.cognitive.microsoft.com/t?subscription-key={SECRET}&q=1"),
        SECRET,
    ),
    "query appid (OpenWeather)": (
        _record(url=f"https://api.openweathermap.org/data/2.5/weather?q=Paris&appid={SECRET}"),
        SECRET,
    ),
    "query access_key": (_record(url=f"https://api.ipstack.com/check?access_key={SECRET}"), SECRET),
    "query X-Amz-Security-Token (presigned S3)": (
        _record(url=f"https://b.s3.amazonaws.com/k?X-Amz-Security-Token={SECRET}&X-Amz-Expires=9"),
        SECRET,
    ),
    "fragment access_token": (
        _record(url=f"https://app.example.com/cb#access_token={SECRET}&token_type=bearer"),
        SECRET,
    ),
    "URL userinfo": (_record(url=f"https://ada:{SECRET}@db.example.com/v1"), SECRET),
    "Telegram bot token in the path": (
        _record(url=f"https://api.telegram.org/bot123456789:AAH{SECRET}/sendMessage"),
        f"AAH{SECRET}",
    ),
    "Slack webhook": (
        _record(url=f"https://hooks.slack.com/services/T0001/B0002/{SECRET[:24]}"),
        SECRET[:24],
    ),
    "Discord webhook": (
        _record(url=f"https://discord.com/api/webhooks/1234567890/{SECRET}-x_y"),
        SECRET,
    ),
    "multipart password field": (
        _record(
            payload=_multipart("password", f"pw-{SECRET}"),
            headers={"content-type": "multipart/form-data; boundary=apirecorder-boundary"},
        ),
        f"pw-{SECRET}",
    ),
    "JSON camelCase idToken": (_record(payload={"idToken": f"id.{SECRET}"}), f"id.{SECRET}"),
    "JSON PascalCase AccessToken": (_record(payload={"Auth": {"AccessToken": SECRET}}), SECRET),
    "JSON clientSecret": (_record(payload={"clientId": "a", "clientSecret": SECRET}), SECRET),
    "JSON refresh-token in a list": (_record(payload=[{"refresh-token": SECRET}]), SECRET),
    "header X-Amz-Security-Token": (_record(headers={"x-amz-security-token": SECRET}), SECRET),
    "header Ocp-Apim-Subscription-Key": (
        _record(headers={"ocp-apim-subscription-key": SECRET}),
        SECRET,
    ),
    "request JSON as text/plain, spaced": (
        _record(payload='{ "api_key" : "' + SECRET + '", "q": 1 }'),
        SECRET,
    ),
    "request body as base64": (
        _record(
            payload="base64:"
            + base64.b64encode(f"\xff\x00password={SECRET}".encode("latin-1")).decode()
        ),
        SECRET,
    ),
    "response JSON with Go \\u0026 escapes (stored as text)": (
        _record(
            body=b'{"access_token":"'
            + SECRET.encode()
            + b'","next":"/x?a=1\\u0026token=t0k3nV4lu3XyZ"}'
        ),
        SECRET,
    ),
    "response query in Go-escaped text": (
        _record(body=b'{"next":"/x?a=1\\u0026token=t0k3nV4lu3XyZ9876"}'),
        "t0k3nV4lu3XyZ9876",
    ),
    "response JSON with PHP \\/ escapes": (
        _record(body=b'{"refresh_token":"1\\/' + SECRET.encode() + b'","ok":true}'),
        SECRET,
    ),
    "response JSON served as text/plain": (
        _record(body=b'{"id_token": "' + JWT.encode() + b'"}', content_type="text/plain"),
        JWT,
    ),
    "response id_token (OIDC)": (_record(body=json.dumps({"id_token": SECRET}).encode()), SECRET),
    "response body stored as base64": (
        _record(
            body=b"\x89BIN\x00" + f'{{"api_key": "{OPENAI_KEY}"}}'.encode(),
            content_type="application/octet-stream",
        ),
        OPENAI_KEY,
    ),
    "a key split across stream chunks": (
        _record(
            body=_sse("Your key is sk-pro", "j-Q3vLw8XnT2bRk9YpZ4m", "C7hJd1sFg6aUe0. Bye"),
            content_type="text/event-stream",
        ),
        "Q3vLw8XnT2bRk9YpZ4m",
    ),
    "an error body echoing the key": (
        _record(
            status=401,
            body=json.dumps(
                {"error": {"message": f"Incorrect API key provided: {OPENAI_KEY}.", "code": 1}}
            ).encode(),
        ),
        OPENAI_KEY,
    ),
    "response set-cookie list": (
        _record(response_headers={"set-cookie": [f"sid={SECRET}; Path=/", "theme=dark"]}),
        SECRET,
    ),
    "response echoing request headers": (
        _record(body=json.dumps({"headers": {"X-Goog-Api-Key": SECRET}}).encode()),
        SECRET,
    ),
    "test id holding ?key=": (
        _record(test_id=f"t.py::test_a[https://x.example/?key={SECRET}]"),
        SECRET,
    ),
}

KEY_FORMAT_SAMPLES = {
    "DeepSeek lower-case hex sk-": "sk-" + "3f9a0c7e5b2d4816a9e0f1c2b3d4e5f6",
    "OpenRouter sk-or-v1-": "sk-or-v1-"
    + "4d3c2b1a0f9e8d7c6b5a49382716ffeeddccbbaa99887766554433221100aabb",
    "OpenAI sk-proj-": OPENAI_KEY,
    "Anthropic sk-ant-": "sk-ant-api03-Xp9Lm2Qw7Rt4Yk8Zn3Bv6Hc1Jd5Fs0Ga-7uIeO2wP4qT9",
    "xAI xai-": "xai-" + "Hq7Lp2Xz9Wm4Rt8Yk3Nb6Vc1Jd5Fs0GaQe7Ui2Op4As9Df3Gh6Jk1Lz8Xc5Vb0Nm",
    "Perplexity pplx-": "pplx-" + "0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f",
    "GitLab glpat-": "glpat-" + "xY3kP9qL2mN7vB4cR8tZ",
    "Stripe sk_test_": "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "Stripe sk_live_": "sk_live_" + "51HqLyjWDarjtT1zdp7dcXyZ",
    "GitHub ghp_": "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "JWT": JWT,
    "Bearer token": "Bearer 7f3a9b2c1d8e4f6a0b5c3d2e1f",
}


@pytest.mark.parametrize("case", CASES)
def test_no_secret_survives_in_any_body_form(case: str, session: Session) -> None:
    record, secret = CASES[case]
    written = redact_recording(record, session)
    assert_no_leak(written, secret)
    assert R in _every_byte(written)


@pytest.mark.parametrize("case", KEY_FORMAT_SAMPLES)
@pytest.mark.parametrize(
    "where", ["url path", "query value", "request text", "response text", "sse", "base64"]
)
def test_every_key_format_in_every_body_form(case: str, where: str, session: Session) -> None:
    key = KEY_FORMAT_SAMPLES[case]
    bare = key.removeprefix("Bearer ")
    if where == "url path":
        record = _record(url=f"https://x.example/u/{quote(key)}/v")
    elif where == "query value":
        record = _record(url=f"https://x.example/?state={quote(key, safe='')}")
    elif where == "request text":
        record = _record(payload=f"note: see {key}\n")
    elif where == "response text":
        record = _record(body=f"error: {key} is invalid".encode(), content_type="text/plain")
    elif where == "sse":
        record = _record(body=_sse(f"here {key} there"), content_type="text/event-stream")
    else:
        record = _record(body=b"\x00\x01" + key.encode(), content_type="application/octet-stream")
    assert_no_leak(redact_recording(record, session), bare)


def test_environment_values_of_secret_looking_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {
        "AZURE_OPENAI_KEY": "azure-0f9e8d7c6b5a",
        "MYAPP_TOKEN": "plainwordstoken",
        "DB_PASSWORD": "correct horse battery",
        "SERVICE_SECRET": "s3rv1c3-s3cr3t",
        "GITLAB_PAT": "patvalue-1234",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    with apirecorder.recording("record", tmp_path) as active:
        for value in values.values():
            record = _record(
                payload=f"value={value}",
                body=f'{{"echo": "{value.upper()}"}}'.encode(),
                headers={"x-trace": quote(value, safe="")},
            )
            assert_no_leak(redact_recording(record, active), value)


KEPT = {
    "token counts": {"usage": {"max_tokens": 5, "total_tokens": 9}, "tokens": "3"},
    "pagination token": {"next_page_token": "CAESFhIUY2hhdGNtcGwtMTIzNDU2Nzg5MA"},
    "thinking signature": {"signature": "EqQBCkgIARABGAIiQL7X9mZ2KpW3nX"},
    "word tokens": {"logprobs": [{"token": " Saturn"}]},
    "prose": {"text": "The key: keep it simple. Bearer bonds, sk-learn-tutorial, monkey=banana."},
    "cache key": {"prompt_cache_key": "user-42"},
}


@pytest.mark.parametrize("case", KEPT)
def test_what_is_no_secret_stays(case: str, session: Session) -> None:
    body = KEPT[case]
    record = _record(body=json.dumps(body).encode())
    assert redact_recording(record, session)["response"]["body"] == body


def test_the_stream_still_replays_its_bytes_after_redaction(session: Session) -> None:
    from apirecorder._httpbody import decode_body

    record, _ = CASES["a key split across stream chunks"]
    written = redact_recording(record, session)
    text = b"".join(decode_body(written["response"])).decode()
    assert f"Your key is {R}. Bye" in "".join(
        json.loads(line[6:])["choices"][0]["delta"]["content"]
        for line in text.split("\n\n")
        if line.startswith("data: {")
    )


# -- text the recorder prints or stores ---------------------------------------------------


TEXTS = {
    "replay-miss diff": (
        f'-  "messages": [{{"content": "hi"}}],\n+  "api_key": "{SECRET}",\n'
        f'+  "authorization": "Bearer {OPENAI_KEY}"',
        [SECRET, OPENAI_KEY],
    ),
    "debug log line": (
        f'apirecorder: http call input={{"url": "https://x/?api-key={SECRET}", '
        f'"payload": "refresh_token={SECRET}x"}}',
        [SECRET],
    ),
    "pytest test id": (f"tests/test_a.py::test_b[https://x/?key={SECRET}]", [SECRET]),
    "junit failure text": (
        f"E   RecordingNotFoundError: ... Authorization: Bearer {OPENAI_KEY}\n"
        f"E   X-Api-Key: {SECRET}",
        [OPENAI_KEY, SECRET],
    ),
}


@pytest.mark.parametrize("case", TEXTS)
def test_redact_text_cleans_what_the_recorder_prints(case: str) -> None:
    text, secrets = TEXTS[case]
    cleaned = redact_text(text)
    for secret in secrets:
        assert secret not in cleaned and quote(secret, safe="") not in cleaned
    assert R in cleaned


def test_redact_text_uses_the_session_rules_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORP_CREDENTIAL", "corp-credential-value")
    with apirecorder.recording(
        "record", tmp_path, redact_patterns=[r"order-\d{6}"], secret_env_vars=["CORP_CREDENTIAL"]
    ) as active:
        assert redact_text("order-123456 corp-credential-value", active) == f"{R} {R}"
    assert redact_text("nothing secret here") == "nothing secret here"


URLS = {
    "api-key": "https://x.openai.azure.com/o?api-version=1&api-key=K1",
    "subscription-key": "https://x.example/t?subscription-key=K1&q=1",
    "appid": "https://api.openweathermap.org/w?q=Paris&appid=K1",
    "access_key": "https://api.ipstack.com/check?access_key=K1",
    "X-Amz-Security-Token": "https://b.s3.amazonaws.com/k?X-Amz-Security-Token=K1&X-Amz-Expires=9",
    "fragment": "https://app.example.com/cb#access_token=K1&token_type=bearer",
    "userinfo": "https://ada:K1@db.example.com/v1?q=1",
}


@pytest.mark.parametrize("case", URLS)
def test_mask_url_secrets_hashes_urls_the_way_they_are_written(case: str, session: Session) -> None:
    from apirecorder._redaction import mask_url_secrets

    url = URLS[case]
    masked = mask_url_secrets(url)
    assert "K1" not in masked
    assert masked == mask_url_secrets(url.replace("K1", "another-key"))
    # Redacting the masked URL changes nothing more: the file name follows from the file.
    written = redact_recording(_record(url=masked), session)["request"]["url"]
    assert written == masked
    assert mask_url_secrets("https://x.example/a?q=1&token_type=bearer") == (
        "https://x.example/a?q=1&token_type=bearer"
    )


def test_docs_state_the_name_rule_and_the_format_list_exactly() -> None:
    from apirecorder import _redaction

    docs = (Path(__file__).parents[1] / "docs" / "security.md").read_text(encoding="utf-8")
    rules = docs[docs.index("#### The rule for names") : docs.index("#### Streams")]
    stated = {
        "strong names": _redaction._STRONG_NAMES,
        "strong suffixes": set(_redaction._STRONG_SUFFIXES),
        "weak names": _redaction._WEAK_NAMES,
        "words": _redaction._SECRET_WORDS,
        "formats": {key_format.name for key_format in _redaction.KEY_FORMATS},
    }
    missing = {
        what: sorted(n for n in names if f"`{n}`" not in rules) for what, names in stated.items()
    }
    assert missing == {what: [] for what in stated}
