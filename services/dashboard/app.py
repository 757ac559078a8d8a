"""The dashboard's web app (Starlette): pages, a JSON API, and server-sent events that push each committed
batch to open pages.

Locked down for untrusted content: a strict Content-Security-Policy (scripts and styles only from this
server, no inline script), no framing, no sniffing; the Host header must name this machine (or an
allowed host), so another site cannot reach it through DNS rebinding; the run controls take POSTs carrying
a header a cross-site form cannot send.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import structlog
from grpc import StatusCode
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from elm_core.errors import (
    ConfigError,
    ElmError,
    InvalidRequestError,
    InvalidWalkerError,
    NotFoundError,
    StateError,
)
from elm_core.report import walker_gif
from services.common import RemoteError
from services.dashboard import pages
from services.dashboard.sources import CONTROLS, RunSource
from services.dashboard.state import run_state, runs_state

log = structlog.get_logger("elm.dashboard")

STATIC = Path(__file__).parent / "static"
CONTROL_HEADER = "x-elm-dashboard"  # the run controls need it: a cross-site form cannot set a header
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_GIF_CACHE = 64  # walker animations kept (a few hundred kB each); an individual never changes


class _SecurityHeaders:
    """Adds the lockdown headers to every response, pages, JSON, events and errors alike."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


class Dashboard:
    """The app's handlers over one run source. `poll_s`: how often open event streams look for a new batch."""

    def __init__(self, source: RunSource, *, source_name: str, poll_s: float = 0.5) -> None:
        self.source = source
        self.source_name = source_name
        self.poll_s = poll_s
        self._gifs: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._render_lock = threading.Lock()  # one animation rendered at a time: it is a simulation

    # -- pages ------------------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return HTMLResponse(pages.index_page(self.source_name))

    async def run(self, request: Request) -> Response:
        run = await run_in_threadpool(self.source.run, request.path_params["run_id"])
        return HTMLResponse(pages.run_page(run))

    async def individual(self, request: Request) -> Response:
        run_id, individual_id = request.path_params["run_id"], request.path_params["individual_id"]

        def read() -> str:
            run = self.source.run(run_id)
            individual = self.source.individual(run_id, individual_id)
            lineage = self.source.lineage(run_id, individual_id)
            return pages.individual_page(
                run, individual, self.source.mutation_of(run_id, individual_id), lineage
            )

        return HTMLResponse(await run_in_threadpool(read))

    # -- JSON and events ----------------------------------------------------------------------------------

    async def runs_json(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(runs_state, self.source))

    async def run_json(self, request: Request) -> Response:
        after = _int_param(request, "after_batch", -1)
        return JSONResponse(
            await run_in_threadpool(run_state, self.source, request.path_params["run_id"], after)
        )

    async def runs_events(self, request: Request) -> Response:
        def version() -> Any:
            return [(r.run_id, r.status.value, r.batches, r.updated_at) for r in self.source.runs()]

        return self._events(request, version, lambda: runs_state(self.source))

    async def run_events(self, request: Request) -> Response:
        """The run's full state first, then after each new batch (or status change) what changed."""
        run_id = request.path_params["run_id"]
        await run_in_threadpool(self.source.run, run_id)  # 404 before the stream starts
        after = [-1]

        def version() -> Any:
            run = self.source.run(run_id)
            return run.status.value, run.batches, run.updated_at

        def state() -> dict[str, Any]:
            current = run_state(self.source, run_id, after[0]) | {"reset": after[0] < 0}
            after[0] = current["last_batch"]
            return current

        return self._events(request, version, state)

    def _events(self, request: Request, version: Callable[[], Any], payload: Callable[[], Any]) -> Response:
        async def stream() -> AsyncIterator[str]:
            seen: Any = None
            idle = 0.0
            while not await request.is_disconnected():
                try:
                    now = await run_in_threadpool(version)
                    if now != seen:
                        data = await run_in_threadpool(payload)
                        seen, idle = now, 0.0
                        yield f"event: state\ndata: {json.dumps(data, allow_nan=False)}\n\n"
                except ElmError as e:  # the coordinator went away: say so, keep trying
                    yield f"event: problem\ndata: {json.dumps({'error': str(e)})}\n\n"
                idle += self.poll_s
                if idle >= 15.0:
                    idle = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(self.poll_s)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def walker(self, request: Request) -> Response:
        run_id, individual_id = request.path_params["run_id"], request.path_params["individual_id"]
        gif = await run_in_threadpool(self._walker_gif, run_id, individual_id)
        return Response(gif, media_type="image/gif", headers={"Cache-Control": "private, max-age=86400"})

    def _walker_gif(self, run_id: str, individual_id: int) -> bytes:
        key = (run_id, individual_id)
        with self._render_lock:
            if key not in self._gifs:
                individual = self.source.individual(run_id, individual_id)
                if not individual.walker_json:
                    raise NotFoundError(f"individual {individual_id} made no walker ({individual.status})")
                self._gifs[key] = walker_gif(individual.walker_json, self.source.spec(run_id))
                while len(self._gifs) > _GIF_CACHE:
                    self._gifs.popitem(last=False)
            self._gifs.move_to_end(key)
            return self._gifs[key]

    async def control(self, request: Request) -> Response:
        action = request.path_params["action"]
        if request.headers.get(CONTROL_HEADER) != "1":
            raise HTTPException(403, f"run controls need the {CONTROL_HEADER} header (sent by the page)")
        if action not in CONTROLS:
            raise NotFoundError(f"unknown action {action!r}; known: {', '.join(CONTROLS)}")
        run = await run_in_threadpool(self.source.control, request.path_params["run_id"], action)
        log.info("run_control", run_id=run.run_id, action=action, status=run.status.value)
        return JSONResponse({"run_id": run.run_id, "status": run.status.value})

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def no_icon(self, request: Request) -> Response:
        return Response(status_code=204)


def create_app(
    source: RunSource,
    *,
    source_name: str,
    allowed_hosts: Iterable[str] = (),
    poll_s: float = 0.5,
) -> Starlette:
    """The dashboard over `source`. Requests must name this machine or one of `allowed_hosts` in Host."""
    d = Dashboard(source, source_name=source_name, poll_s=poll_s)
    routes = [
        Route("/", d.index),
        Route("/healthz", d.health),
        Route("/favicon.ico", d.no_icon),
        Route("/runs/{run_id}", d.run),
        Route("/runs/{run_id}/individuals/{individual_id:int}", d.individual),
        Route("/api/runs", d.runs_json),
        Route("/api/events", d.runs_events),
        Route("/api/runs/{run_id}", d.run_json),
        Route("/api/runs/{run_id}/events", d.run_events),
        Route("/api/runs/{run_id}/individuals/{individual_id:int}/walker.gif", d.walker),
        Route("/api/runs/{run_id}/{action}", d.control, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    hosts = [*LOCAL_HOSTS, *allowed_hosts]
    middleware = [Middleware(_SecurityHeaders), Middleware(TrustedHostMiddleware, allowed_hosts=hosts)]
    handlers = {ElmError: _elm_error, HTTPException: _http_error}
    return Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)  # type: ignore[arg-type]


def _int_param(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError as e:
        raise InvalidRequestError(f"{name} must be an integer, got {text!r}") from e


def _status_of(error: ElmError) -> int:
    refused = (StatusCode.PERMISSION_DENIED, StatusCode.UNAUTHENTICATED)
    if isinstance(error, RemoteError) and error.code in refused:
        return 403  # the coordinator refused the dashboard's token (pausing needs an admin token)
    statuses = {NotFoundError: 404, InvalidRequestError: 400, ConfigError: 400, InvalidWalkerError: 400,
                StateError: 409}  # fmt: skip
    return next((code for kind, code in statuses.items() if isinstance(error, kind)), 503)  # 503: no answer


async def _elm_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ElmError)
    return _error(request, _status_of(exc), str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(request, exc.status_code, exc.detail)


def _error(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    return HTMLResponse(pages.error_page(status, message), status_code=status)
