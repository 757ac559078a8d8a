"""Errors across the wire: a gRPC status code plus a typed `google.rpc.ErrorInfo` detail, never a traceback.

Servers turn the project's exceptions into statuses with `abort`; clients turn statuses back into the same
exceptions with `raise_for`, so code above the client handles one family of errors either way.
"""

from __future__ import annotations

from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from elm_core.errors import (
    BackendUnavailableError,
    BackpressureError,
    ConfigError,
    ElmError,
    InvalidRequestError,
    NotFoundError,
    StateError,
)

DOMAIN = "elm.v1"

# Codes a client may retry without changing the request (the call did not take effect, or is idempotent).
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})

_CODES: tuple[tuple[type[ElmError], grpc.StatusCode, str], ...] = (
    (InvalidRequestError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
    (ConfigError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CONFIG"),
    (NotFoundError, grpc.StatusCode.INVALID_ARGUMENT, "NOT_FOUND"),
    (StateError, grpc.StatusCode.FAILED_PRECONDITION, "WRONG_STATE"),
    (BackpressureError, grpc.StatusCode.RESOURCE_EXHAUSTED, "BACKPRESSURE"),
    (BackendUnavailableError, grpc.StatusCode.UNAVAILABLE, "BACKEND_UNAVAILABLE"),
)

_EXCEPTIONS: dict[grpc.StatusCode, type[ElmError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.FAILED_PRECONDITION: StateError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: BackpressureError,
}


class RemoteError(ElmError):
    """A call to a service failed; `code` and `reason` say how (reason is the ErrorInfo detail)."""

    def __init__(self, message: str, code: grpc.StatusCode, reason: str) -> None:
        super().__init__(message)
        self.code, self.reason = code, reason


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and ErrorInfo reason for an exception; anything unexpected is INTERNAL."""
    for kind, code, reason in _CODES:
        if isinstance(error, kind):
            return code, reason
    return grpc.StatusCode.INTERNAL, "INTERNAL"


def abort(
    context: grpc.ServicerContext, code: grpc.StatusCode, message: str, reason: str, **metadata: str
) -> NoReturn:
    """Ends the call with `code`, `message` and an ErrorInfo detail (`reason`, domain elm.v1, metadata)."""
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata))
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("abort_with_status returns only by raising")  # pragma: no cover


def abort_for(context: grpc.ServicerContext, error: BaseException) -> NoReturn:
    code, reason = status_for(error)
    message = str(error) if code is not grpc.StatusCode.INTERNAL else "internal error (see the service's log)"
    abort(context, code, message, reason)


def error_reason(error: grpc.RpcError) -> str:
    """The ErrorInfo reason a service attached to a failed call, or the code's name."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return error.code().name  # type: ignore[no-any-return]


def raise_for(error: grpc.RpcError, target: str) -> NoReturn:
    """Re-raises a failed call as the project's exception for its code (RemoteError for the rest)."""
    code: grpc.StatusCode = error.code()
    message = f"{target}: {error.details()}"
    reason = error_reason(error)
    kind = NotFoundError if reason == "NOT_FOUND" else _EXCEPTIONS.get(code)
    if kind is not None:
        raise kind(message) from error
    if code is grpc.StatusCode.UNAVAILABLE:
        raise BackendUnavailableError(message) from error
    raise RemoteError(message, code, reason) from error
