"""One module per client library; each patches its library's call path inside an ExitStack."""

from __future__ import annotations

from contextlib import ExitStack

__all__ = ["INTERCEPTORS", "install_all"]

#: (interceptor module, the library it needs), in the order they are installed.
INTERCEPTORS: tuple[tuple[str, str], ...] = (
    ("_openai", "openai"),
    ("_ollama", "ollama"),
    ("_mcp", "mcp"),
    ("_genai", "google.genai"),
    # Recorded below, at the HTTP layer: this one checks what the SDK parses a replay into.
    ("_anthropic", "anthropic"),
    # The HTTP layer comes after every SDK layer; _httpx serves httpx and httpx2 (either one).
    ("_httpx", "httpx"),
    ("_httpx", "httpx2"),
    ("_requests", "requests"),
    ("_urllib3", "urllib3"),  # botocore; the requests layer above marks what it records
    ("_httpclient", "http.client"),  # urllib.request; urllib3's connections go their own way
    ("_aiohttp", "aiohttp"),
)


def install_all(stack: ExitStack) -> None:
    """Install every interceptor when its library is imported (for those already imported:
    at once, or for the HTTP libraries on the first call of a method it patches, see
    ``_lazy.DEFERRED``); undo is ``stack.close()``. Nothing is imported for a library the code
    never uses."""
    from ._lazy import install_lazily

    install_lazily(stack, INTERCEPTORS)
