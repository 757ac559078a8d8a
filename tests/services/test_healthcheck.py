"""The containers' health probe (`python -m services.healthcheck`) against a real server on loopback."""

from __future__ import annotations

import subprocess
import sys

from services.common import start_server
from tests.e2e.services_harness import free_port


def probe(address: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "services.healthcheck", address, "--timeout", "2"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_probe_follows_the_servers_health() -> None:
    server = start_server([], port=0, host="127.0.0.1")
    try:
        serving = probe(server.address)
        assert serving.returncode == 0 and serving.stdout.strip() == "SERVING"
        server.health.enter_graceful_shutdown()  # what SIGTERM does first: NOT_SERVING while draining
        draining = probe(server.address)
        assert draining.returncode == 1 and draining.stdout.strip() == "NOT SERVING"
    finally:
        server.stop(0)
    nobody = probe(f"127.0.0.1:{free_port()}")
    assert nobody.returncode == 1 and nobody.stdout.strip() == "NOT SERVING"
