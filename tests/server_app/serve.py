"""Run the app under test with uvicorn on a free port of 127.0.0.1 and print ``PORT <n>``.

The socket listens before the port is printed, so a client may connect at once: uvicorn
accepts the queued connection as soon as its start-up (lifespan included) is done.
"""

from __future__ import annotations

import socket
import sys

import uvicorn


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config("tests.server_app.app:app", log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
