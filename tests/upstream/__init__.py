"""A local fake of the AI providers' HTTP APIs, for tests: `with Upstream() as up: up.url`.

Routes: OpenAI under `/v1/...`, Ollama under `/api/...`, Anthropic `/v1/messages`,
Gemini `/v1beta/models/{model}:{method}`,
Tavily `/search`, plain HTTP under `/misc/...`. Trigger strings in prompts make errors.
"""

from .server import (
    FIXED_DURATION_NS,
    FIXED_TIME,
    Handler,
    Request,
    Response,
    Upstream,
    json_response,
    ndjson_response,
    reply_text,
    sse_event,
    sse_response,
    text_response,
)

TRIGGER_400 = "TRIGGER_400"
TRIGGER_401 = "TRIGGER_401"
TRIGGER_429 = "TRIGGER_429"
TRIGGER_500 = "TRIGGER_500"
TRIGGER_529 = "TRIGGER_529"
TRIGGER_STREAM_ERROR = "TRIGGER_STREAM_ERROR"
TRIGGER_QUIRKS = "TRIGGER_QUIRKS"
MISSING_MODEL = "missing-model"

__all__ = [
    "FIXED_DURATION_NS",
    "FIXED_TIME",
    "MISSING_MODEL",
    "TRIGGER_400",
    "TRIGGER_401",
    "TRIGGER_429",
    "TRIGGER_500",
    "TRIGGER_529",
    "TRIGGER_QUIRKS",
    "TRIGGER_STREAM_ERROR",
    "Handler",
    "Request",
    "Response",
    "Upstream",
    "json_response",
    "ndjson_response",
    "reply_text",
    "sse_event",
    "sse_response",
    "text_response",
]
