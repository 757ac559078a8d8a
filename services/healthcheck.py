"""Container health probe: exits 0 when the gRPC server at ADDRESS reports SERVING, else 1.

    python -m services.healthcheck [ADDRESS] [--timeout SECONDS]

Imports only grpc and its health stubs, so a probe every few seconds costs little CPU. ADDRESS defaults to
localhost:$ELM_PORT. With $ELM_TLS_DIR set (a service serving TLS), it calls over TLS as $ELM_TLS_NAME.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _channel(address: str) -> grpc.Channel:
    directory = os.environ.get("ELM_TLS_DIR")
    if not directory:
        return grpc.insecure_channel(address)
    tls, name = Path(directory), os.environ.get("ELM_TLS_NAME", "")
    credentials = grpc.ssl_channel_credentials(
        (tls / "ca.pem").read_bytes(), (tls / f"{name}.key").read_bytes(), (tls / f"{name}.pem").read_bytes()
    )
    return grpc.secure_channel(address, credentials)


def check(address: str, timeout_s: float) -> bool:
    with _channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.healthcheck", description=__doc__)
    parser.add_argument("address", nargs="?", default=f"localhost:{os.environ.get('ELM_PORT', '50051')}")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    serving = check(args.address, args.timeout)
    print("SERVING" if serving else "NOT SERVING")
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
