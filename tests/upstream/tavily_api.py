"""The Tavily search API (`POST /search`); the client sends its key as `Authorization: Bearer`.

A request without a key (and not in keyless mode) or with TRIGGER_401 in the query gets
401; TRIGGER_400 and TRIGGER_429 give those statuses, in Tavily's `{"detail": ...}` body.
"""

from __future__ import annotations

import re
from typing import Any

from .server import Request, Response, Routes, json_response

ERRORS: dict[str, tuple[int, str]] = {
    "TRIGGER_400": (400, "Invalid request: the query contains TRIGGER_400."),
    "TRIGGER_401": (401, "Unauthorized: missing or invalid API key."),
    "TRIGGER_429": (429, "Your request has been blocked due to excessive requests."),
}


def _error(status: int, message: str) -> Response:
    return json_response({"detail": {"error": message}}, status)


def search(request: Request) -> Response:
    body: dict[str, Any] = request.json()
    query = str(body.get("query", ""))
    keyless = request.headers.get("x-tavily-access-mode") == "keyless"
    if not keyless and not request.headers.get("authorization", "").startswith("Bearer "):
        return _error(*ERRORS["TRIGGER_401"])
    for trigger, (status, message) in ERRORS.items():
        if trigger in query:
            return _error(status, message)
    slug = re.sub(r"[^a-z0-9]+", "-", query.lower()).strip("-") or "empty"
    results = []
    for i in range(int(body.get("max_results") or 5)):
        result: dict[str, Any] = {
            "url": f"https://example.com/{slug}/{i + 1}",
            "title": f"Result {i + 1} for {query}",
            "content": f"Snippet {i + 1} about {query}.",
            "score": round(0.9 - i * 0.07123456, 8),
            "raw_content": None,
        }
        if body.get("include_raw_content"):
            result["raw_content"] = f"# {query}\n\nFull text of result {i + 1} about {query}."
        if body.get("include_favicon"):
            result["favicon"] = f"https://example.com/{slug}/favicon.ico"
        results.append(result)
    answer = f"An answer about {query}." if body.get("include_answer") else None
    images = [f"https://example.com/{slug}/image.png"] if body.get("include_images") else []
    response: dict[str, Any] = {
        "query": query,
        "follow_up_questions": None,
        "answer": answer,
        "images": images,
        "results": results,
        "response_time": request.seconds(),
        "request_id": request.new_id("", 32),
    }
    if body.get("auto_parameters"):
        response["auto_parameters"] = {"topic": "general", "search_depth": "basic"}
    if body.get("include_usage"):
        response["usage"] = {"credits": 2 if body.get("search_depth") == "advanced" else 1}
    return json_response(response)


ROUTES: Routes = {("POST", "/search"): search}
