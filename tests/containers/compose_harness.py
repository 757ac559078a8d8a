"""The compose stack under test: a project of its own (its own containers, networks and volumes), the
coordinator (and the dashboard, when a test starts it) published on free loopback ports, the tiny model
(nothing to download)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import pytest

from services.client import CoordinatorClient
from services.common import Credentials, TLSIdentity
from tests.e2e.services_harness import free_port

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_ENV = "ELM_REQUIRE_DOCKER"  # CI sets it: no engine is then a failure, not a skip


def docker_unavailable() -> str | None:
    """Why the container tests cannot run here, or None."""
    try:
        with contextlib.closing(docker.from_env()) as client:
            client.ping()
    except docker.errors.DockerException as e:
        return f"no Docker engine answers ({e}): run deploy/scripts/bootstrap.sh"
    if shutil.which("docker") is None:  # compose has no SDK: its plugin runs through the docker command
        return "no docker command for the compose plugin"
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60).returncode != 0:
        return "`docker compose version` fails: run deploy/scripts/bootstrap.sh"
    return None


def require_docker() -> None:
    reason = docker_unavailable()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but Docker is not usable: {reason}")
    pytest.skip(reason)


@dataclass
class ComposeStack:
    project: str
    port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)
    client_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="elm-client-")))

    @property
    def coordinator(self) -> str:
        return f"127.0.0.1:{self.port}"

    def compose(self, *args: str, timeout: float = 600, input: str | None = None) -> str:
        env = {**os.environ, "ELM_MODEL": "tiny", "ELM_COORDINATOR_PORT": str(self.port),
               "ELM_DASHBOARD_PORT": str(self.dashboard_port)}  # fmt: skip
        command = ["docker", "compose", "--project-name", self.project, *args]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                              input=input)  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-4000:]}")
        return done.stdout

    def up(self) -> None:
        self.compose("up", "--detach", "--wait", "--wait-timeout", "300")

    def credentials(self, role: str | None = "admin") -> Credentials:
        """The client's certificate and a token (none for None), copied out of the certs volume."""
        if not (self.client_dir / "client").is_dir():
            self.compose("cp", "certs:/certs/client", str(self.client_dir))
        token = (self.client_dir / "client" / f"{role}.token").read_text().strip() if role else None
        return Credentials(TLSIdentity.load(self.client_dir / "client", "client"), token)

    def client(self, role: str | None = "admin") -> CoordinatorClient:
        """A client of the published coordinator, over TLS with the stack's client certificate."""
        return CoordinatorClient(self.coordinator, credentials=self.credentials(role))

    def down(self) -> None:
        # with every optional profile on, so that a dashboard a test started goes too
        self.compose("--profile", "dashboard", "down", "--volumes", "--remove-orphans", "--timeout", "5")

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "--quiet", service).split()

    def exec(self, service: str, *command: str, input: str | None = None, index: int = 1) -> str:
        return self.compose("exec", "-T", "--index", str(index), service, *command, input=input)

    def python(self, service: str, script: str, payload: object = None) -> object:
        """Runs `script` with the service's Python inside its container; `payload` arrives as JSON on
        stdin (`PAYLOAD`), and the script prints one JSON value."""
        prelude = "import json, sys\nPAYLOAD = json.load(sys.stdin)\n"
        out = self.exec(service, "python3", "-c", prelude + script, input=json.dumps(payload))
        return json.loads(out.strip().splitlines()[-1])

    def kill(self, container: str) -> None:
        with contextlib.closing(docker.from_env()) as client:
            client.containers.get(container).kill()

    def inspect(self, container: str) -> dict:
        with contextlib.closing(docker.from_env()) as client:
            return client.containers.get(container).attrs

    def wait_running(self, container: str, timeout_s: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.inspect(container)["State"]
            if state["Running"] and state.get("Health", {}).get("Status") == "healthy":
                return state
            time.sleep(1)
        raise AssertionError(f"{container} did not come back healthy within {timeout_s} s: {state}")
