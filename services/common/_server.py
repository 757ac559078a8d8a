"""Server bootstrap shared by every service: health, reflection, request logs, metrics, graceful shutdown."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from elm_core.errors import ConfigError
from services.common._errors import abort, abort_for, status_for
from services.common._security import TLS_DIR_ENV, TRUSTED_CALLERS, PeerInterceptor, TLSIdentity, is_loopback
from services.common.metrics import IN_FLIGHT, LATENCY, REQUESTS, serve_metrics

log = structlog.get_logger()

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a batch of programs or of raw model outputs stays far below this
REQUEST_ID = "x-request-id"


@dataclass
class Service:
    """One gRPC service to host: its servicer, how to register it, and what to do when the server stops.

    `drain` runs when shutdown starts (stop taking work, end streams); `close` after in-flight calls end.
    """

    name: str  # the full service name, e.g. "elm.v1.EvaluatorService"
    servicer: Any
    register: Callable[[Any, grpc.Server], None]
    drain: Callable[[], None] = lambda: None
    close: Callable[[], None] = lambda: None


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    services: list[Service]
    health: health.HealthServicer
    metrics_port: int | None = None
    grace_s: float = 30.0
    health_server: grpc.Server | None = None  # plaintext, health only (`health_port`)
    _stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, grace_s: float | None = None) -> None:
        """Graceful shutdown: NOT_SERVING, drain, wait for calls in flight (up to the grace), close."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        grace = self.grace_s if grace_s is None else grace_s
        log.info("shutting down", grace_s=grace)
        self.health.enter_graceful_shutdown()
        for service in self.services:
            service.drain()
        self.server.stop(grace).wait()
        if self.health_server is not None:
            self.health_server.stop(0).wait()
        for service in self.services:
            service.close()
        log.info("stopped")

    def wait_for_signal(self) -> None:
        """Blocks until SIGTERM or SIGINT, then shuts down gracefully."""
        received = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda number, frame: received.set())
        while not received.wait(1.0) and not self._stopped.is_set():
            pass
        self.stop()


def start_server(
    services: list[Service],
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    metrics_port: int | None = None,
    max_workers: int = 32,
    grace_s: float = 30.0,
    tls: TLSIdentity | None = None,
    require_client_cert: bool = True,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    health_port: int | None = None,
) -> RunningServer:
    """Starts a gRPC server hosting `services` plus health and reflection; port 0 picks a free port.

    With `tls`, callers must present a certificate signed by its authority (unless `require_client_cert` is
    False); without, the server listens in plaintext, which only a loopback `host` may. `health_port` adds a
    plaintext port serving only the health protocol, for probes that cannot speak TLS (Kubernetes')."""
    if tls is None and not is_loopback(host):
        raise ConfigError(f"plaintext is for loopback only, not {host}: give the service a TLS identity "
                          f"(--tls-dir or ${TLS_DIR_ENV}; `elm certs` writes one)")  # fmt: skip
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=[_ObservingInterceptor(max(1, max_workers // 2)), *interceptors],
        # calls past this many (running or waiting for a thread) are refused with RESOURCE_EXHAUSTED, which
        # bounds the memory that requests of up to MAX_MESSAGE_BYTES can hold
        maximum_concurrent_rpcs=2 * max_workers,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in services:
        service.register(service.servicer, server)
    names = [s.name for s in services]
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    address = f"{host}:{port}"
    if tls is None:
        bound = server.add_insecure_port(address)
    else:
        bound = server.add_secure_port(
            address, tls.server_credentials(require_client_cert=require_client_cert)
        )
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    for name in ["", *names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_server = _health_only(health_servicer, host, health_port) if health_port is not None else None
    metrics = serve_metrics(metrics_port) if metrics_port is not None else None
    transport = "plaintext, loopback only" if tls is None else "mutual TLS" if require_client_cert else "TLS"
    log.info("serving", host=host, port=bound, services=names, metrics_port=metrics, transport=transport)
    return RunningServer(server, bound, services, health_servicer, metrics, grace_s, health_server)


def _health_only(servicer: health.HealthServicer, host: str, port: int) -> grpc.Server:
    """A plaintext server with the health service alone (it tells SERVING or not, nothing else)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health"))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot listen on {host}:{port} for health checks")
    server.start()
    return server


def start_backend(service: Service, party: str, *, tls: TLSIdentity | None, **options: Any) -> RunningServer:
    """Starts a backend service (evaluator, model server, trainer) alone: with `tls`, mutual TLS, and only the
    coordinator, clients and `party` itself get past its caller check. The service is closed if the server
    does not start."""
    guard = [] if tls is None else [PeerInterceptor(service.name, TRUSTED_CALLERS | {party})]
    try:
        return start_server([service], tls=tls, interceptors=guard, **options)
    except BaseException:
        service.close()
        raise


class _ObservingInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Per call: a request id (from the caller's `x-request-id` or new), one log line, metrics. At most
    `max_streams` server streams (WatchRun, WatchJob) are open at once, each holding a worker thread: more
    are refused with RESOURCE_EXHAUSTED, so watchers never take the threads unary calls need."""

    def __init__(self, max_streams: int) -> None:
        self.streams = threading.BoundedSemaphore(max_streams)
        self.max_streams = max_streams

    def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        service, _, method = details.method.lstrip("/").partition("/")
        request_id = dict(details.invocation_metadata or ()).get(REQUEST_ID) or uuid.uuid4().hex[:16]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _observed_unary(handler.unary_unary, service, method, request_id),
                request_deserializer=_lenient(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _observed_stream(handler.unary_stream, service, method, request_id, self),
                request_deserializer=_lenient(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler  # client and bidirectional streams: none in elm.v1 (health Watch is server-streaming)


@dataclass(frozen=True)
class _Undecodable:
    error: str


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer that returns bytes it cannot decode as `_Undecodable` (e.g. a string field that is not
    UTF-8), so that the call is refused with INVALID_ARGUMENT rather than gRPC's bare INTERNAL."""
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as e:  # protobuf's DecodeError, or anything a malformed message makes it raise
            return _Undecodable(str(e) or type(e).__name__)

    return deserialize


def _refuse_undecodable(request: Any, context: grpc.ServicerContext) -> None:
    if isinstance(request, _Undecodable):
        abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"the request does not decode: {request.error}",
              "UNDECODABLE_REQUEST")  # fmt: skip


def _observed_unary(behaviour: Callable[..., Any], service: str, method: str, request_id: str) -> Any:
    def observed(request: Any, context: grpc.ServicerContext) -> Any:
        with _observing(context, service, method, request_id):
            _refuse_undecodable(request, context)
            return behaviour(request, context)

    return observed


def _observed_stream(
    behaviour: Callable[..., Any], service: str, method: str, request_id: str, limits: _ObservingInterceptor
) -> Any:
    def observed(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with _observing(context, service, method, request_id):
            _refuse_undecodable(request, context)
            if not limits.streams.acquire(blocking=False):
                message = f"{limits.max_streams} streams are open on this server; retry later"
                abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, message, "TOO_MANY_STREAMS")
            try:
                yield from behaviour(request, context)
            finally:
                limits.streams.release()

    return observed


@contextlib.contextmanager
def _observing(context: grpc.ServicerContext, service: str, method: str, request_id: str) -> Iterator[None]:
    """Logs and measures one call; an exception the servicer raised becomes a typed status (never a trace)."""
    started = time.perf_counter()
    structlog.contextvars.bind_contextvars(request_id=request_id, method=method)
    IN_FLIGHT.labels(service, method).inc()
    try:
        yield
    except Exception as error:
        if context.code() is not None:  # the servicer aborted with a status already
            raise
        if status_for(error)[0] is grpc.StatusCode.INTERNAL:
            log.exception("call failed")
        abort_for(context, error)
    finally:
        code = context.code() or grpc.StatusCode.OK
        seconds = time.perf_counter() - started
        IN_FLIGHT.labels(service, method).dec()
        REQUESTS.labels(service, method, code.name).inc()
        LATENCY.labels(service, method).observe(seconds)
        if method != "Check":  # health probes every few seconds would drown the log
            level = log.info if code in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED) else log.warning
            level("call", code=code.name, ms=round(seconds * 1e3, 2))
        structlog.contextvars.unbind_contextvars("request_id", "method")
