"""Container health probe: exits 0 when the server at ADDRESS is healthy, else 1.

    python -m services.healthcheck [ADDRESS] [--timeout SECONDS]          # a gRPC service
    python -m services.healthcheck --http [URL] [--timeout SECONDS]       # an HTTP service (the dashboard)

gRPC: healthy when the server reports SERVING on the gRPC health protocol. Imports only grpc and its health
stubs, so a probe every few seconds costs little CPU. ADDRESS defaults to localhost:$ELM_PORT. With
$ELM_TLS_DIR set (a service serving TLS), it calls over TLS as $ELM_TLS_NAME.

HTTP (`--http`): healthy when a GET of URL (default http://127.0.0.1:8080/healthz) answers 200. Imports only
the standard library, and never goes through a proxy.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import grpc

DEFAULT_HTTP_URL = "http://127.0.0.1:8080/healthz"


def _channel(address: str) -> grpc.Channel:
    import grpc

    directory = os.environ.get("ELM_TLS_DIR")
    if not directory:
        return grpc.insecure_channel(address)
    tls, name = Path(directory), os.environ.get("ELM_TLS_NAME", "")
    credentials = grpc.ssl_channel_credentials(
        (tls / "ca.pem").read_bytes(), (tls / f"{name}.key").read_bytes(), (tls / f"{name}.pem").read_bytes()
    )
    return grpc.secure_channel(address, credentials)


def check(address: str, timeout_s: float) -> bool:
    """Whether the gRPC server at `address` reports SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with _channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def check_http(url: str, timeout_s: float) -> bool:
    """Whether a GET of `url` answers 200 (directly: no proxy from the environment)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, method="GET"), timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.healthcheck", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("address", nargs="?", default=None,
                        help="host:port of a gRPC service, or with --http a URL")  # fmt: skip
    parser.add_argument("--http", action="store_true", help="probe an HTTP endpoint instead of gRPC health")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    if args.http:
        healthy = check_http(args.address or DEFAULT_HTTP_URL, args.timeout)
    else:
        healthy = check(args.address or f"localhost:{os.environ.get('ELM_PORT', '50051')}", args.timeout)
    print("SERVING" if healthy else "NOT SERVING")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
