"""Serving the web app with uvicorn on a background thread (in-process mode)."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI

from rlhp.errors import ConfigError


class AppServer:
    """uvicorn on a daemon thread; ``port`` 0 takes a free port (see ``.port``)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="feedback-app", daemon=True)
        self._thread.start()
        deadline = time.time() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.time() > deadline:
                raise ConfigError(
                    f"feedback.port: cannot serve the labelling app on {host}:{port} (in use or "
                    "not allowed); choose another with --set feedback.port=PORT (0 = any free)"
                )
            time.sleep(0.02)
        sock = self._server.servers[0].sockets[0]
        self.host, self.port = host, int(sock.getsockname()[1])

    def url(self, token: str | None = None) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}/" + (f"#token={token}" if token else "")

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C stops it)."""
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=1.0)
        except KeyboardInterrupt:
            self.stop()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
