"""What every service shares: server bootstrap (health, reflection, logs, metrics, SIGTERM drain), errors
across the wire, and client-side call policy (deadlines, retries of retryable codes only)."""

from services.common._certs import PARTIES, write_certificates
from services.common._client import Caller, channel
from services.common._errors import (
    DOMAIN,
    RETRYABLE_CODES,
    RemoteError,
    abort,
    abort_for,
    error_reason,
    raise_for,
    status_for,
)
from services.common._logging import configure_logging
from services.common._security import (
    ADMIN,
    READ,
    AuthorizingInterceptor,
    Credentials,
    TLSIdentity,
    TokenAuthority,
    is_loopback,
    token_digest,
)
from services.common._server import (
    MAX_MESSAGE_BYTES,
    REQUEST_ID,
    RunningServer,
    Service,
    start_backend,
    start_server,
)
from services.common.metrics import serve_metrics

__all__ = [
    "PARTIES",
    "write_certificates",
    "ADMIN",
    "READ",
    "AuthorizingInterceptor",
    "Credentials",
    "TLSIdentity",
    "TokenAuthority",
    "is_loopback",
    "token_digest",
    "DOMAIN",
    "MAX_MESSAGE_BYTES",
    "REQUEST_ID",
    "RETRYABLE_CODES",
    "Caller",
    "RemoteError",
    "RunningServer",
    "Service",
    "abort",
    "abort_for",
    "channel",
    "configure_logging",
    "error_reason",
    "raise_for",
    "serve_metrics",
    "start_backend",
    "start_server",
    "status_for",
]
