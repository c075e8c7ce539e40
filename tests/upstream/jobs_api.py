"""Stateful provider APIs: what an application polls, lists and uploads.

OpenAI: background Responses (`POST /v1/responses` with `background: true`, then
`GET /v1/responses/{id}` walks queued -> in_progress -> completed), batches (`/v1/batches`,
validating -> in_progress -> finalizing -> completed), files (multipart upload, list,
retrieve, content) and audio transcriptions (multipart). Anthropic: message batches
(`/v1/messages/batches`, in_progress -> in_progress -> ended). Every poll of an id moves it one
step, so a replay that returns the last response for every poll is caught.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
from typing import Any

from . import openai_api
from .server import Request, Response, Routes, json_response

_lock = threading.Lock()
Job = tuple[tuple[str, ...], int, dict[str, Any]]
File = tuple[dict[str, Any], bytes]


def _jobs(request: Request) -> dict[str, Job]:
    """id -> (the statuses it walks through, polls so far, its state), per upstream."""
    jobs: dict[str, Job] = request.state.setdefault("jobs", {})
    return jobs


def _files(request: Request) -> dict[str, File]:
    """file id -> (the file object, its bytes), in upload order, per upstream."""
    files: dict[str, File] = request.state.setdefault("files", {})
    return files


RESPONSE_STEPS = ("queued", "in_progress", "completed")
BATCH_STEPS = ("validating", "in_progress", "finalizing", "completed")
MESSAGE_BATCH_STEPS = ("in_progress", "in_progress", "ended")


def _not_found(kind: str, object_id: str) -> Response:
    body = {
        "error": {"message": f"No {kind} with id {object_id!r}", "type": "invalid_request_error"}
    }
    return json_response(body, 404)


def _poll(request: Request, object_id: str) -> tuple[str, dict[str, Any]] | None:
    """The next status of a job, one step per poll, and its object."""
    with _lock:
        jobs = _jobs(request)
        found = jobs.get(object_id)
        if found is None:
            return None
        steps, polls, obj = found
        jobs[object_id] = (steps, polls + 1, obj)
        return steps[min(polls + 1, len(steps) - 1)], obj


def form_parts(request: Request) -> list[dict[str, Any]]:
    """The parts of a multipart/form-data body: name, filename, content type, content."""
    head = f"Content-Type: {request.headers.get('content-type', '')}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    parts = []
    for part in message.iter_parts():
        parts.append(
            {
                "name": part.get_param("name", header="content-disposition"),
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "content": part.get_payload(decode=True) or b"",
            }
        )
    return parts


def _field(parts: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((part for part in parts if part["name"] == name), None)


# -- OpenAI background responses -------------------------------------------------------------


def create_response(request: Request) -> Response:
    body = request.json()
    if not body.get("background"):
        return openai_api.responses(request)
    live = openai_api.responses(request)
    final = json.loads(live.body) if live.status == 200 else None
    if final is None:
        return live
    final["background"] = True
    queued = {**final, "status": "queued", "output": [], "usage": None, "completed_at": None}
    with _lock:
        _jobs(request)[final["id"]] = (RESPONSE_STEPS, 0, final)
    return openai_api.with_headers(json_response(queued), request)


def retrieve_response(request: Request) -> Response:
    polled = _poll(request, request.params["response_id"])
    if polled is None:
        return _not_found("response", request.params["response_id"])
    status, final = polled
    if status == "completed":
        return openai_api.with_headers(json_response(final), request)
    pending = {**final, "status": status, "output": [], "usage": None, "completed_at": None}
    return openai_api.with_headers(json_response(pending), request)


# -- OpenAI batches ---------------------------------------------------------------------------


def _batch(batch_id: str, body: dict[str, Any], created: int, status: str) -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": batch_id,
        "object": "batch",
        "endpoint": body.get("endpoint", "/v1/chat/completions"),
        "errors": None,
        "input_file_id": body.get("input_file_id", ""),
        "completion_window": body.get("completion_window", "24h"),
        "status": status,
        "output_file_id": "file-output" if done else None,
        "error_file_id": None,
        "created_at": created,
        "in_progress_at": created if status != "validating" else None,
        "expires_at": created + 86_400,
        "completed_at": created if done else None,
        "request_counts": {"total": 2, "completed": 2 if done else 0, "failed": 0},
        "metadata": body.get("metadata"),
    }


def create_batch(request: Request) -> Response:
    body = request.json()
    batch_id, created = request.new_id("batch_"), request.unix_time()
    with _lock:
        _jobs(request)[batch_id] = (BATCH_STEPS, 0, {"body": body, "created": created})
    return json_response(_batch(batch_id, body, created, BATCH_STEPS[0]))


def retrieve_batch(request: Request) -> Response:
    batch_id = request.params["batch_id"]
    polled = _poll(request, batch_id)
    if polled is None:
        return _not_found("batch", batch_id)
    status, state = polled
    return json_response(_batch(batch_id, state["body"], state["created"], status))


# -- OpenAI files and audio -------------------------------------------------------------------


def upload_file(request: Request) -> Response:
    parts = form_parts(request)
    upload, purpose = _field(parts, "file"), _field(parts, "purpose")
    if upload is None:
        return json_response({"error": {"message": "file is required", "type": "invalid"}}, 400)
    file_id = request.new_id("file-")
    obj = {
        "id": file_id,
        "object": "file",
        "bytes": len(upload["content"]),
        "created_at": request.unix_time(),
        "filename": upload["filename"] or "upload",
        "purpose": purpose["content"].decode() if purpose else "user_data",
        "status": "processed",
    }
    with _lock:
        _files(request)[file_id] = (obj, upload["content"])
    return json_response(obj)


def list_files(request: Request) -> Response:
    with _lock:
        data = [obj for obj, _ in _files(request).values()]
    return json_response({"object": "list", "data": data, "has_more": False})


def retrieve_file(request: Request) -> Response:
    with _lock:
        found = _files(request).get(request.params["file_id"])
    if found is None:
        return _not_found("file", request.params["file_id"])
    return json_response(found[0])


def file_content(request: Request) -> Response:
    with _lock:
        found = _files(request).get(request.params["file_id"])
    if found is None:
        return _not_found("file", request.params["file_id"])
    return Response(200, [("Content-Type", "application/octet-stream")], found[1])


def transcribe(request: Request) -> Response:
    parts = form_parts(request)
    upload, model = _field(parts, "file"), _field(parts, "model")
    if upload is None or model is None:
        return json_response({"error": {"message": "file and model are required"}}, 400)
    heard = f"{len(upload['content'])} bytes of {upload['filename']}"
    text = f"{heard} heard by {model['content'].decode()}"
    return json_response({"text": text})


# -- Anthropic message batches ----------------------------------------------------------------


def _message_batch(batch_id: str, status: str, count: int) -> dict[str, Any]:
    ended = status == "ended"
    return {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {
            "processing": 0 if ended else count,
            "succeeded": count if ended else 0,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        },
        "created_at": "2024-09-24T18:37:24.100435Z",
        "expires_at": "2024-09-25T18:37:24.100435Z",
        "ended_at": "2024-09-24T18:39:24.100435Z" if ended else None,
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": f"https://api.anthropic.com/v1/messages/batches/{batch_id}/results"
        if ended
        else None,
    }


def create_message_batch(request: Request) -> Response:
    count = len(request.json().get("requests") or [])
    batch_id = request.new_id("msgbatch_")
    with _lock:
        _jobs(request)[batch_id] = (MESSAGE_BATCH_STEPS, 0, {"count": count})
    return json_response(_message_batch(batch_id, MESSAGE_BATCH_STEPS[0], count))


def retrieve_message_batch(request: Request) -> Response:
    batch_id = request.params["batch_id"]
    polled = _poll(request, batch_id)
    if polled is None:
        return _not_found("message batch", batch_id)
    status, state = polled
    return json_response(_message_batch(batch_id, status, state["count"]))


ROUTES: Routes = {
    ("POST", "/v1/responses"): create_response,
    ("GET", "/v1/responses/{response_id}"): retrieve_response,
    ("POST", "/v1/batches"): create_batch,
    ("GET", "/v1/batches/{batch_id}"): retrieve_batch,
    ("POST", "/v1/files"): upload_file,
    ("GET", "/v1/files"): list_files,
    ("GET", "/v1/files/{file_id}"): retrieve_file,
    ("GET", "/v1/files/{file_id}/content"): file_content,
    ("POST", "/v1/audio/transcriptions"): transcribe,
    ("POST", "/v1/messages/batches"): create_message_batch,
    ("GET", "/v1/messages/batches/{batch_id}"): retrieve_message_batch,
}
