"""Who may talk to the services: TLS with mutual authentication between them, bearer tokens for the
coordinator's API, and plaintext for loopback only.

Every party (each service, and each user's client) holds a certificate signed by one certificate authority:
a directory `ELM_TLS_DIR` with `ca.pem`, `<name>.pem` and `<name>.key`, `<name>` being `ELM_TLS_NAME`
(`elm certs` writes one for compose). Services other than the coordinator refuse a caller without such a
certificate. The coordinator's API takes a bearer token instead: `read` tokens watch and read runs, `admin`
tokens also create, stop and submit. Its tokens file holds only their SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from elm_core.errors import ConfigError
from services.common._errors import abort

TLS_DIR_ENV, TLS_NAME_ENV = "ELM_TLS_DIR", "ELM_TLS_NAME"
TOKEN_ENV, TOKEN_FILE_ENV = "ELM_TOKEN", "ELM_TOKEN_FILE"
AUTHORIZATION = "authorization"
READ, ADMIN = "read", "admin"
ROLES = (READ, ADMIN)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "[::1]", "localhost"})


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS


@dataclass(frozen=True, repr=False)
class TLSIdentity:
    """A party's certificate and key, and the authority every party's certificate is signed by (PEM)."""

    ca: bytes
    cert: bytes
    key: bytes
    name: str = ""

    @classmethod
    def load(cls, directory: Path, name: str) -> TLSIdentity:
        paths = [directory / "ca.pem", directory / f"{name}.pem", directory / f"{name}.key"]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise ConfigError(
                f"TLS identity {name!r}: missing {', '.join(missing)} (write them with `elm certs`)"
            )
        ca, cert, key = (p.read_bytes() for p in paths)
        return cls(ca, cert, key, name)

    @classmethod
    def from_env(cls, default_name: str = "client") -> TLSIdentity | None:
        """The identity `$ELM_TLS_DIR` / `$ELM_TLS_NAME` name, or None when `$ELM_TLS_DIR` is unset."""
        directory = os.environ.get(TLS_DIR_ENV)
        if not directory:
            return None
        return cls.load(Path(directory), os.environ.get(TLS_NAME_ENV) or default_name)

    def server_credentials(self, *, require_client_cert: bool) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca, require_client_auth=require_client_cert
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key,
                                            certificate_chain=self.cert)  # fmt: skip


@dataclass(frozen=True, repr=False)
class Credentials:
    """What a client presents: a TLS identity (None: plaintext, loopback only) and a bearer token."""

    tls: TLSIdentity | None = None
    token: str | None = None
    server_name: str | None = None  # the name to verify the server's certificate against (default: the host)

    @classmethod
    def from_env(cls) -> Credentials:
        """`$ELM_TLS_DIR` / `$ELM_TLS_NAME`, and `$ELM_TOKEN` or the token in the file `$ELM_TOKEN_FILE`."""
        token = os.environ.get(TOKEN_ENV)
        if not token and os.environ.get(TOKEN_FILE_ENV):
            token = read_token(Path(os.environ[TOKEN_FILE_ENV]))
        return cls(TLSIdentity.from_env(), token or None)

    def for_server(self, name: str) -> Credentials:
        return Credentials(self.tls, self.token, name)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return ((AUTHORIZATION, f"Bearer {self.token}"),) if self.token else ()


def read_token(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(f"cannot read the token file {path}: {e}") from e


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenAuthority:
    """The tokens a coordinator accepts, by SHA-256 digest: each with a name (for the log) and a role."""

    roles: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # digest -> (name, role)

    @classmethod
    def load(cls, path: Path) -> TokenAuthority:
        """From a JSON file `{"tokens": [{"name": ..., "role": "read" | "admin", "sha256": ...}]}`."""
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))["tokens"]
            roles = {str(e["sha256"]): (str(e["name"]), str(e["role"])) for e in entries}
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"cannot read the tokens file {path}: {e}") from e
        bad = sorted({role for _, role in roles.values()} - set(ROLES))
        if bad or not roles:
            raise ConfigError(
                f"the tokens file {path} needs at least one token, roles {ROLES}; got {bad or 'none'}"
            )
        return cls(roles)

    def role(self, metadata: Mapping[str, str]) -> tuple[str, str] | None:
        """(name, role) of the bearer token in the call's metadata, or None."""
        scheme, _, token = metadata.get(AUTHORIZATION, "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return self.roles.get(token_digest(token.strip()))


class AuthorizingInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses a call without a known token (UNAUTHENTICATED) or whose token's role may not call the method
    (PERMISSION_DENIED) before the servicer sees it. `required(service, method)` names the role a method
    needs, or None for methods open to all (health checks, reflection)."""

    def __init__(self, authority: TokenAuthority, required: Callable[[str, str], str | None]) -> None:
        self.authority, self.required = authority, required

    def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        service, _, method = details.method.lstrip("/").partition("/")
        needed = self.required(service, method)
        if needed is None:
            return continuation(details)
        holder = self.authority.role(dict(details.invocation_metadata or ()))
        if holder is None:
            message = "a known bearer token is required (--token, $ELM_TOKEN or $ELM_TOKEN_FILE)"
            return _refusal(
                continuation(details), grpc.StatusCode.UNAUTHENTICATED, message, "UNAUTHENTICATED"
            )
        name, role = holder
        if needed == ADMIN and role != ADMIN:
            message = f"token {name!r} is {role}-only; {method} needs an admin token"
            return _refusal(
                continuation(details), grpc.StatusCode.PERMISSION_DENIED, message, "PERMISSION_DENIED"
            )
        return continuation(details)


def _refusal(handler: Any, code: grpc.StatusCode, message: str, reason: str) -> Any:
    """A handler of the same kind as `handler` that ends every call with `code`."""

    def refuse(request: Any, context: grpc.ServicerContext) -> Any:
        abort(context, code, message, reason)

    streams = handler is not None and handler.unary_stream is not None
    make = grpc.unary_stream_rpc_method_handler if streams else grpc.unary_unary_rpc_method_handler
    return make(
        refuse,
        request_deserializer=getattr(handler, "request_deserializer", None),
        response_serializer=getattr(handler, "response_serializer", None),
    )


# Who may call the evaluators, the model server and the trainer (besides the service itself, e.g. its own
# health probe): the coordinator and users' clients. Never an evaluator: the programs it runs share its uid,
# so its key must not open any other service.
TRUSTED_CALLERS = frozenset({"coordinator", "client"})


class PeerInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """With mutual TLS: a caller reaches `service`'s methods only if its certificate's common name is one of
    `allowed` (PERMISSION_DENIED otherwise). Health checks and reflection take any certificate of the
    authority."""

    def __init__(self, service: str, allowed: frozenset[str]) -> None:
        self.service, self.allowed = service, allowed

    def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        handler = continuation(details)
        service = details.method.lstrip("/").partition("/")[0]
        if handler is None or service != self.service:
            return handler
        serializers = {"request_deserializer": handler.request_deserializer,
                       "response_serializer": handler.response_serializer}  # fmt: skip
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            def checked(request: Any, context: grpc.ServicerContext) -> Any:
                self._check(context)
                return unary(request, context)

            return grpc.unary_unary_rpc_method_handler(checked, **serializers)
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            def checked_stream(request: Any, context: grpc.ServicerContext) -> Any:
                self._check(context)
                yield from stream(request, context)

            return grpc.unary_stream_rpc_method_handler(checked_stream, **serializers)
        return handler

    def _check(self, context: grpc.ServicerContext) -> None:
        names = [n.decode() for n in context.auth_context().get("x509_common_name", [])]
        if not self.allowed.intersection(names):
            abort(context, grpc.StatusCode.PERMISSION_DENIED,
                  f"a certificate of {', '.join(names) or 'nobody'} may not call {self.service}",
                  "PERMISSION_DENIED")  # fmt: skip
