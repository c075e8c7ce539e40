"""The benchmark workloads, each a module with ``run(bench, sizes) -> list[Measurement]``."""

from . import chat, cost, embeddings, memory, record, serve, storage_size, streams

#: name -> module, in the order they run and appear in BENCHMARKS.md
WORKLOADS = {
    "chat": chat,
    "streams": streams,
    "embeddings": embeddings,
    "storage": storage_size,
    "record": record,
    "memory": memory,
    "cost": cost,
    "serve": serve,
}

__all__ = ["WORKLOADS"]
