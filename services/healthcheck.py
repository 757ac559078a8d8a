"""Container health probe: exits 0 when the gRPC server at ADDRESS reports SERVING, else 1.

    python -m services.healthcheck [ADDRESS] [--timeout SECONDS]

Imports only grpc and its health stubs, so a probe every few seconds costs little CPU. ADDRESS defaults to
localhost:$ELM_PORT.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(address: str, timeout_s: float) -> bool:
    with grpc.insecure_channel(address) as channel:
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
