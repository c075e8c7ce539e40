"""The app under test: a Starlette service whose routes call the OpenAI SDK.

The SDK reads ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` from the environment; apirecorder's
middleware turns recording on from ``APIRECORDER_MODE``/``APIRECORDER_DIR`` and runs each
request under the test id its ``X-Apirecorder-Test-Id`` header carries.
"""

from __future__ import annotations

from typing import Any

import openai
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import apirecorder
from apirecorder.asgi import TestIdMiddleware

MODEL = "gpt-4o-mini"


def _messages(request: Request) -> Any:
    return [{"role": "user", "content": request.query_params.get("q", "")}]


async def ask(request: Request) -> Response:
    """Stream an answer with the async client (runs on the event loop)."""
    async with openai.AsyncOpenAI(max_retries=0) as client:
        stream = await client.chat.completions.create(
            model=MODEL, messages=_messages(request), stream=True
        )
        parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    return JSONResponse({"answer": "".join(parts), "test_id": apirecorder.current_test_id()})


def ask_sync(request: Request) -> Response:
    """Answer with the sync client (Starlette runs it in a worker thread)."""
    with openai.OpenAI(max_retries=0) as client:
        completion = client.chat.completions.create(model=MODEL, messages=_messages(request))
    answer = completion.choices[0].message.content
    return JSONResponse({"answer": answer, "test_id": apirecorder.current_test_id()})


async def recorder_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, status_code=500)


app = Starlette(
    routes=[Route("/ask", ask), Route("/ask-sync", ask_sync)],
    middleware=[Middleware(TestIdMiddleware)],
    exception_handlers={apirecorder.ApiRecorderError: recorder_error},
)
