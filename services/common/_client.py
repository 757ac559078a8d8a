"""Client-side call policy: every call has a deadline and a request id; only retryable codes are retried."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from services.common._errors import RETRYABLE_CODES, raise_for
from services.common._security import Credentials
from services.common._server import MAX_MESSAGE_BYTES, REQUEST_ID

Response = TypeVar("Response")


def channel(target: str, credentials: Credentials | None = None) -> grpc.Channel:
    """A channel with the services' message limits: TLS with the credentials' identity, else plaintext."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.enable_retries", 0),  # retries are ours, so that they are counted and bounded
    ]
    if credentials is None or credentials.tls is None:
        return grpc.insecure_channel(target, options=options)
    if credentials.server_name:
        options.append(("grpc.ssl_target_name_override", credentials.server_name))
    return grpc.secure_channel(target, credentials.tls.channel_credentials(), options=options)


def _retryable(error: BaseException) -> bool:
    return isinstance(error, grpc.RpcError) and error.code() in RETRYABLE_CODES


class Caller:
    """Calls one service's methods with a deadline, a request id and retries of retryable codes; presents
    `credentials` (default: from the environment, see `Credentials.from_env`)."""

    def __init__(
        self,
        target: str,
        *,
        deadline_s: float = 30.0,
        attempts: int = 5,
        max_wait_s: float = 2.0,
        credentials: Credentials | None = None,
    ):
        self.target, self.deadline_s = target, deadline_s
        self.attempts, self.max_wait_s = attempts, max_wait_s
        self.credentials = credentials or Credentials.from_env()
        self.channel = channel(target, self.credentials)

    def call(
        self,
        method: Callable[..., Response],
        request: Any,
        *,
        deadline_s: float | None = None,
        retry: bool = True,
    ) -> Response:
        """Unary call; a failure after the retries is raised as the project's exception for its code."""
        metadata = ((REQUEST_ID, uuid.uuid4().hex[:16]), *self.credentials.metadata())
        timeout = deadline_s or self.deadline_s
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self.attempts if retry else 1),
            wait=wait_random_exponential(multiplier=0.05, max=self.max_wait_s),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return method(request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as e:
            raise_for(e, self.target)
        raise AssertionError("unreachable")  # pragma: no cover

    def stream(
        self, method: Callable[..., Iterator[Response]], request: Any, *, deadline_s: float | None = None
    ) -> Iterator[Response]:
        """Server-streaming call (no retries: the caller decides whether to watch again)."""
        metadata = ((REQUEST_ID, uuid.uuid4().hex[:16]), *self.credentials.metadata())
        try:
            yield from method(request, timeout=deadline_s, metadata=metadata)
        except grpc.RpcError as e:
            raise_for(e, self.target)

    def close(self) -> None:
        self.channel.close()
