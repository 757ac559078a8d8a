"""Serving the dashboard with uvicorn: in the foreground (`elm dashboard`), or on a thread beside an embedded
run (`elm run --dashboard`) and in tests."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from elm_core.errors import BackendUnavailableError


def _config(app: Starlette, host: str, port: int) -> uvicorn.Config:
    # a short graceful shutdown: open event streams never end by themselves
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                          timeout_graceful_shutdown=1, lifespan="off")  # fmt: skip


def serve(app: Starlette, host: str, port: int) -> None:
    """Serves until interrupted (Ctrl-C or SIGTERM)."""
    uvicorn.Server(_config(app, host, port)).run()


class DashboardThread:
    """The dashboard served on a daemon thread; `url` once started. Port 0 takes a free port."""

    def __init__(self, app: Starlette, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = uvicorn.Server(_config(app, host, port))
        self.thread = threading.Thread(target=self.server.run, name="elm-dashboard", daemon=True)
        self.url = ""

    def start(self, timeout_s: float = 10.0) -> DashboardThread:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise BackendUnavailableError("the dashboard did not start (is its port taken?)")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> DashboardThread:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
