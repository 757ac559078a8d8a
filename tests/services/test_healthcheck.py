"""The containers' health probe (`python -m services.healthcheck`) against a real server on loopback: gRPC
health, and HTTP (`--http`, the dashboard's /healthz)."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading

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


class _Answers(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802
        body = b"ok" if self.path == "/healthz" else b"no"
        self.send_response(self.server.status if self.path == "/healthz" else 404)  # type: ignore[attr-defined]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def probe_http(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "services.healthcheck", "--http", *args, "--timeout", "2"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_http_probe_follows_the_dashboards_healthz() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    server.status = 200  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/healthz"
    try:
        healthy = probe_http(url)
        assert healthy.returncode == 0 and healthy.stdout.strip() == "SERVING"
        assert probe_http(url.replace("/healthz", "/elsewhere")).returncode == 1  # a 404
        server.status = 503  # type: ignore[attr-defined]
        unhealthy = probe_http(url)
        assert unhealthy.returncode == 1 and unhealthy.stdout.strip() == "NOT SERVING"
    finally:
        server.shutdown()
        server.server_close()
    nobody = probe_http(f"http://127.0.0.1:{free_port()}/healthz")
    assert nobody.returncode == 1 and nobody.stdout.strip() == "NOT SERVING"
