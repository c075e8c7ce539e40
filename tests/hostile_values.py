"""The values hostile recordings are made of: retypes, ``__type__`` values, wrong classes,
exception variants and HTTP headers, each by a readable label (``hostile_cases`` uses them)."""

from __future__ import annotations

from typing import Any

#: A ``__type__`` whose import would run this module's top level: it must never be imported.
CANARY_MODULE = "tests.hostile_canary"
#: Far over any message or field a recording holds (16 MiB took a tenth of the suite to
#: write, once per client and command, for no other path).
HUGE = 4 * 1024 * 1024
#: Made once and shared by every client's cases (each would otherwise hold its own).
HUGE_TEXT = "s" * HUGE
BIG_MAPPING = {f"rec-{i}": f"orig-{i}" for i in range(100_000)}

#: Values every field is retyped to.
RETYPES: dict[str, Any] = {
    "null": None,
    "zero": 0,
    "negative": -1,
    "float": 1.5,
    "huge float": 1e308,
    "string": "x",
    "list": [],
    "list of junk": [1, "a", None, [], {}],
    "object": {},
    "true": True,
}

#: ``__type__`` values that would import or run code, or name no class at all.
HOSTILE_TYPES: dict[str, Any] = {
    "os.system": "os.system",
    "subprocess.Popen": "subprocess.Popen",
    "builtins.eval": "builtins.eval",
    "builtins.exec": "builtins.exec",
    "builtins.__import__": "builtins.__import__",
    "posix.system": "posix.system",
    "importlib.import_module": "importlib.import_module",
    "pickle.loads": "pickle.loads",
    "a canary module": f"{CANARY_MODULE}.Boom",
    "typing.TypedDict": "typing.TypedDict",
    "an allowed TypedDict": "openai.types.chat.chat_completion_user_message_param."
    "ChatCompletionUserMessageParam",
    "an allowed TypedDict of params": "openai.types.chat.completion_create_params."
    "CompletionCreateParamsBase",
    "an allowed Literal alias": "openai.types.chat.chat_completion_role.ChatCompletionRole",
    "an allowed Union alias": "openai.types.chat.chat_completion_message_param."
    "ChatCompletionMessageParam",
    "an allowed module": "openai.types.chat",
    "a metaclass by attribute": "openai.types.chat.chat_completion.ChatCompletion.__class__",
    "BaseModel through an allowed module": "openai.types.chat.chat_completion.BaseModel",
    "typing through an allowed module": "openai.types.chat.chat_completion.List",
    "os through an allowed module": "openai.types.chat.chat_completion.os.system",
    "a method by attribute": "anthropic.types.message.Message.model_construct",
    "a dunder": "openai.types.__builtins__",
    "a missing class": "openai.types.NoSuchClass",
    "a missing module": "openai.types.no_such_module.Thing",
    "a trailing dot": "openai.types.",
    "a leading dot": ".openai.types.Model",
    "empty": "",
    "a long name": "openai.types." + "a" * 100_000,
    "a number": 123,
    "a list": ["openai.types.Model"],
    "an object": {"module": "os"},
    "null": None,
    "true": True,
}

#: Classes of other calls (and other SDKs) a recording may name: never the call's answer.
WRONG_CLASSES: dict[str, tuple[str, dict[str, Any]]] = {
    "anthropic Message": (
        "anthropic.types.message.Message",
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude",
            "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1, "output_tokens": 1},
        },
    ),
    "openai Embedding": (
        "openai.types.embedding.Embedding",
        {"embedding": [0.1, 0.2], "index": 0, "object": "embedding"},
    ),
    "openai CreateEmbeddingResponse": (
        "openai.types.create_embedding_response.CreateEmbeddingResponse",
        {"data": [], "model": "m", "object": "list",
         "usage": {"prompt_tokens": 1, "total_tokens": 1}},
    ),
    "openai ChatCompletion": (
        "openai.types.chat.chat_completion.ChatCompletion",
        {"id": "c", "choices": [], "created": 0, "model": "m", "object": "chat.completion"},
    ),
    "openai ChatCompletionChunk": (
        "openai.types.chat.chat_completion_chunk.ChatCompletionChunk",
        {"id": "c", "choices": [], "created": 0, "model": "m", "object": "chat.completion.chunk"},
    ),
    "openai Model": ("openai.types.model.Model", {"id": "m", "created": 0, "object": "model",
                                                  "owned_by": "o"}),
    "ollama ChatResponse": ("ollama._types.ChatResponse", {"model": "m", "message": {
        "role": "assistant", "content": "hi"}}),
    "mcp Tool": ("mcp.types.Tool", {"name": "t", "inputSchema": {"type": "object"}}),
}  # fmt: skip

#: ``exception_data`` variants, each written with ``is_exception: true``.
EXCEPTIONS: dict[str, Any] = {
    "missing": "<missing>",
    "null": None,
    "a list": [],
    "a string": "boom",
    "a number": 7,
    "empty": {},
    "NaN body": {"type": "APIStatusError", "status_code": 500, "body": float("nan")},
    "Infinity body": {"type": "APIStatusError", "status_code": 500, "body": float("inf")},
    "-Infinity in a body": {"type": "APIStatusError", "status_code": 500, "body": {"x": -1e999}},
    "lone surrogate body": {"type": "APIStatusError", "status_code": 500, "body": "\ud800"},
    "lone surrogate message": {"type": "APIError", "message": "bad \udfff"},
    "message a list": {"type": "APIError", "message": ["a", "b"]},
    "message an object": {"type": "APIError", "message": {"a": 1}},
    "status a string": {"type": "APIStatusError", "status_code": "500"},
    "status huge": {"type": "APIStatusError", "status_code": 10**30},
    "status negative": {"type": "APIStatusError", "status_code": -5},
    "status 200": {"type": "APIStatusError", "status_code": 200},
    "status a float": {"type": "APIStatusError", "status_code": 500.0},
    "status true": {"type": "APIStatusError", "status_code": True},
    "type SystemExit": {"type": "SystemExit", "module": "builtins", "message": "bye"},
    "type KeyboardInterrupt": {"type": "KeyboardInterrupt", "module": "builtins"},
    "type GeneratorExit": {"type": "GeneratorExit", "module": "builtins"},
    "type BaseException": {"type": "BaseException", "module": "builtins"},
    "type MemoryError": {"type": "MemoryError", "module": "builtins"},
    "type os.system": {"type": "system", "module": "os"},
    "type subprocess.Popen": {"type": "Popen", "module": "subprocess"},
    "type a canary": {"type": "Boom", "module": CANARY_MODULE},
    "type a number": {"type": 12, "module": 34},
    "type a dunder": {"type": "__class__", "module": "builtins"},
    "type a non-exception": {"type": "dict", "module": "builtins"},
    "args not a list": {"type": "ValueError", "module": "builtins", "args": "abc"},
    "args a typed value": {"type": "ValueError", "module": "builtins",
                           "args": [{"__type__": "os.system", "__data__": "id"}]},
    "args huge": {"type": "ValueError", "module": "builtins", "args": [HUGE_TEXT]},
    "attributes not an object": {"type": "ValueError", "module": "builtins", "attributes": [1]},
    "attributes dunder": {"type": "ValueError", "module": "builtins",
                          "attributes": {"__class__": "x", "__dict__": 1}},
    "timeout error": {"type": "APITimeoutError"},
    "connection error": {"type": "APIConnectionError", "message": "down"},
    "auth error without status": {"type": "AuthenticationError", "status_code": None},
}  # fmt: skip

#: Header values an HTTP response cannot carry, or that lie about the body.
HEADERS: dict[str, dict[str, Any]] = {
    "non-latin-1 value": {"x-note": "snow ☃"},
    "lone surrogate value": {"x-note": "\ud800"},
    "CRLF in a value": {"x-note": "a\r\nset-cookie: evil=1"},
    "NUL in a value": {"x-note": "a\x00b"},
    "a list value": {"x-note": ["a", "b"]},
    "a number value": {"x-note": 5},
    "a null value": {"x-note": None},
    "an object value": {"x-note": {"a": 1}},
    "a space in a name": {"bad name": "v"},
    "a colon in a name": {"bad:name": "v"},
    "an empty name": {"": "v"},
    "a non-latin-1 name": {"näme☃": "v"},
    "gzip over a plain body": {"content-encoding": "gzip"},
    "deflate over a plain body": {"content-encoding": "deflate"},
    "br over a plain body": {"content-encoding": "br"},
    "zstd over a plain body": {"content-encoding": "zstd"},
    "gzip twice": {"content-encoding": "gzip, gzip"},
    "an unknown encoding": {"content-encoding": "snappy"},
    "content-length a word": {"content-length": "abc"},
    "content-length negative": {"content-length": "-1"},
    "content-length huge": {"content-length": str(10**20)},
    "content-length short": {"content-length": "1"},
    "chunked": {"transfer-encoding": "chunked"},
    "charset unknown": {"content-type": "application/json; charset=no-such-charset"},
    "charset utf-16": {"content-type": "text/plain; charset=utf-16"},
}

BODY_FORMATS = ("base64", "text", "json", "sse", "ndjson", "xml", "", 5, None)


def brotli_stored(data: bytes) -> bytes:
    """``data`` as a brotli stream of uncompressed meta-blocks (RFC 7932, section 9.2).

    What a brotli encoder writes for incompressible input; written here because neither
    ``brotli`` nor ``brotlicffi`` is installed, so the recorder cannot decode it either.
    """
    bits: list[int] = [0]  # WBITS: a single 0 bit is a 16-bit window

    def put(value: int, count: int) -> None:
        bits.extend((value >> i) & 1 for i in range(count))

    def pad() -> None:
        bits.extend([0] * (-len(bits) % 8))

    out = bytearray()

    def flush() -> None:
        pad()
        for start in range(0, len(bits), 8):
            out.append(sum(bit << i for i, bit in enumerate(bits[start : start + 8])))
        bits.clear()

    for start in range(0, len(data), 1 << 16):
        block = data[start : start + (1 << 16)]
        put(0, 1)  # ISLAST
        put(0, 2)  # MNIBBLES: 4
        put(len(block) - 1, 16)  # MLEN - 1
        put(1, 1)  # ISUNCOMPRESSED
        flush()
        out += block
    put(1, 1)  # ISLAST
    put(1, 1)  # ISLASTEMPTY
    flush()
    return bytes(out)
