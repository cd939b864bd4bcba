"""The app on a real uvicorn server, on a free loopback port, in a background thread: for
tests whose clients (a browser, OWSLib, GDAL, an Open311 client) speak real HTTP."""

from __future__ import annotations

import os
import socket
import threading
import time

import uvicorn

from gis_service.app import create_app
from gis_service.config import Settings

# Loopback only, whatever proxy the environment names.
NO_PROXY = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


class Server:
    """``with Server(settings) as base:`` serves the app at ``base`` until the block ends."""

    def __init__(self, settings: Settings) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(settings),
            log_level="warning",
            lifespan="on",
            # A client that keeps a request open (a browser's, say) must not hold up the end
            # of the module: the server closes it after this long.
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        # Signals belong to the main thread; uvicorn leaves them alone in another thread.
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> str:
        for key, value in NO_PROXY.items():
            os.environ.setdefault(key, value)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("uvicorn did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()
