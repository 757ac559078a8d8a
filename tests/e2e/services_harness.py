"""Starting `elm serve ...` as separate processes on loopback, and waiting for their health."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ELM = [sys.executable, "-c", "from services.cli.main import app; app()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """A service outlives no test run, even one killed by a timeout (PR_SET_PDEATHSIG, SIGKILL)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


@dataclass
class ServiceProcess:
    """One `elm serve KIND` process; logs go to LOG_DIR/KIND-PORT.log (JSON lines)."""

    kind: str
    args: list[str]
    log_dir: Path
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.log_dir / f"{self.kind}-{self.port}.log"

    def start(self) -> ServiceProcess:
        command = [*ELM, "serve", self.kind, "--port", str(self.port), "--host", "127.0.0.1",
                   "--metrics-port", str(self.metrics_port), *self.args]  # fmt: skip
        env = {**os.environ, **self.env}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True, preexec_fn=_die_with_parent)  # fmt: skip
        return self

    def wait_healthy(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        raise TimeoutError(f"{self.kind} not healthy after {timeout_s} s:\n{self.log.read_text()[-3000:]}")

    def signal(self, number: int) -> int:
        """Sends a signal and waits for the exit; returns the exit status."""
        assert self.process is not None
        self.process.send_signal(number)
        return self.process.wait(timeout=90)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
