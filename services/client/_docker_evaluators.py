"""`DockerEvaluators`: N locked-down evaluator containers, started and removed with the docker SDK, used as
an `EvaluatorFleet` by an embedded run (`elm run --evaluators docker:N`).

The containers get the compose file's lockdown: the image's non-root user, a read-only root with a small
scratch tmpfs, no capabilities, no privilege gain, the project's seccomp allowlist, memory, CPU and process
limits, and an internal network with no route out. They serve mutual TLS with a certificate authority made
for this fleet alone (only this process holds a certificate they accept). Every container and network is
labelled with its owner (host and pid): they are removed when the fleet closes (the run's end, Ctrl-C, an
exception), and those of an owner that died without closing (`kill -9`) are swept when the next fleet starts.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

from elm_core.errors import BackendUnavailableError, ConfigError
from services.client._evaluators import EvaluatorFleet
from services.common import Credentials, TLSIdentity, write_certificates

log = structlog.get_logger()

FLEET_LABEL = "io.elm.fleet"  # value: the owner, "<host>:<pid>"
PORT = 50052
SECCOMP_PROFILE = Path(__file__).resolve().parents[2] / "deploy" / "seccomp" / "evaluator.json"
DEFAULT_IMAGE = "elm-evaluator:dev"  # what `docker compose build evaluator` (or bootstrap.sh) tags


class DockerEvaluators:
    """Starts `replicas` evaluator containers on `__enter__` (waiting until each is healthy) and returns an
    `EvaluatorFleet` over them; `__exit__` removes them."""

    def __init__(
        self,
        replicas: int,
        *,
        image: str = DEFAULT_IMAGE,
        workers: int = 1,
        cpus: float = 1.0,
        memory: str = "1g",
        healthy_within_s: float = 180.0,
    ) -> None:
        if replicas < 1 or workers < 1 or cpus <= 0:
            raise ConfigError(f"need replicas, workers >= 1 and cpus > 0, got {replicas}, {workers}, {cpus}")
        self.replicas, self.image, self.workers, self.cpus, self.memory = (
            replicas,
            image,
            workers,
            cpus,
            memory,
        )
        self.healthy_within_s = healthy_within_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._client: Any = None
        self._network: Any = None
        self._containers: list[Any] = []
        self._certs: Path | None = None
        self._fleet: EvaluatorFleet | None = None

    def __enter__(self) -> EvaluatorFleet:
        self._client = _docker()
        sweep(self._client)
        try:
            self._fleet = self._start()
        except BaseException:
            self.close()
            raise
        return self._fleet

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Removes the containers, the network and the certificates (what exists of them)."""
        if self._fleet is not None:
            self._fleet.close()
        for container in self._containers:
            _quietly(container.remove, force=True)
        if self._network is not None:
            _quietly(self._network.remove)
        if self._certs is not None:
            shutil.rmtree(self._certs, ignore_errors=True)
        if self._client is not None:
            self._client.close()
        self._containers, self._network, self._certs, self._fleet, self._client = [], None, None, None, None

    def _start(self) -> EvaluatorFleet:
        import docker.errors

        try:
            self._client.images.get(self.image)
        except docker.errors.ImageNotFound as e:
            raise ConfigError(f"no image {self.image}: build it with `docker compose build evaluator` "
                              "(or deploy/scripts/bootstrap.sh)") from e  # fmt: skip
        if not SECCOMP_PROFILE.is_file():
            raise ConfigError(f"the evaluators' seccomp profile {SECCOMP_PROFILE} is missing")
        self._certs = Path(tempfile.mkdtemp(prefix="elm-fleet-certs-"))
        write_certificates(self._certs)
        _readable_by_the_container(self._certs / "evaluator")
        labels = {FLEET_LABEL: self.owner}
        name = f"elm-fleet-{os.getpid()}-{secrets.token_hex(3)}"
        self._network = self._client.networks.create(name, driver="bridge", internal=True, labels=labels)
        for index in range(self.replicas):
            self._containers.append(self._run_container(f"{name}-{index}", labels))
        addresses = [f"{self._await_healthy(c)}:{PORT}" for c in self._containers]
        log.info("evaluator containers up", replicas=self.replicas, image=self.image, network=name)
        identity = TLSIdentity.load(self._certs / "coordinator", "coordinator")
        # they are reached by address; their certificates name them "evaluator"
        return EvaluatorFleet(addresses, credentials=Credentials(identity, server_name="evaluator"))

    def _run_container(self, name: str, labels: dict[str, str]) -> Any:
        assert self._certs is not None
        return self._client.containers.run(
            self.image,
            ["serve", "evaluator"],
            name=name,
            detach=True,
            labels=labels,
            environment={
                "ELM_WORKERS": str(self.workers),
                "ELM_TLS_DIR": "/certs",
                "ELM_TLS_NAME": "evaluator",
            },
            network=self._network.name,
            volumes={str(self._certs / "evaluator"): {"bind": "/certs", "mode": "ro"}},
            read_only=True,
            tmpfs={"/tmp": "size=256m,mode=1777"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true", f"seccomp={SECCOMP_PROFILE.read_text()}"],
            pids_limit=256,
            mem_limit=self.memory,
            memswap_limit=self.memory,
            nano_cpus=int(self.cpus * 1e9),
            init=True,
        )

    def _await_healthy(self, container: Any) -> str:
        """The container's address on the fleet network, once its health check passes."""
        deadline = time.monotonic() + self.healthy_within_s
        while time.monotonic() < deadline:
            container.reload()
            state = container.attrs["State"]
            if not state["Running"]:
                logs = container.logs(tail=20).decode(errors="replace")
                raise BackendUnavailableError(f"evaluator container {container.name} stopped: {logs}")
            if state.get("Health", {}).get("Status") == "healthy":
                return str(container.attrs["NetworkSettings"]["Networks"][self._network.name]["IPAddress"])
            time.sleep(1.0)
        raise BackendUnavailableError(
            f"evaluator container {container.name} not healthy in {self.healthy_within_s:g} s"
        )


def sweep(client: Any) -> int:
    """Removes the containers and networks of fleets whose owner on this host is gone; how many containers."""
    host = socket.gethostname()
    swept = 0
    for container in client.containers.list(all=True, filters={"label": FLEET_LABEL}):
        if _orphaned(container.labels.get(FLEET_LABEL, ""), host):
            _quietly(container.remove, force=True)
            swept += 1
    for network in client.networks.list(filters={"label": FLEET_LABEL}):
        if _orphaned(network.attrs.get("Labels", {}).get(FLEET_LABEL, ""), host):
            _quietly(network.remove)
    if swept:
        log.info("swept evaluator containers a crashed run left", containers=swept)
    return swept


def _orphaned(owner: str, host: str) -> bool:
    owner_host, _, pid = owner.rpartition(":")
    if owner_host != host or not pid.isdigit():
        return False  # another machine's (a shared engine): not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _docker() -> Any:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as e:  # the SDK raises DockerException, or requests' errors, when no engine answers
        raise BackendUnavailableError(f"no Docker engine answers ({e}); start one, or run without "
                                      "--evaluators docker:N") from e  # fmt: skip
    return client


def _readable_by_the_container(directory: Path) -> None:
    """The container runs as the image's user, not this one: it must be able to read its certificate."""
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)


def _quietly(action: Any, **kwargs: Any) -> None:
    try:
        action(**kwargs)
    except Exception as e:  # already gone, or the engine went away: nothing more to do here
        log.warning("cleanup step failed", error=str(e))
