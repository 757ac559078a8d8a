"""One evaluator replica: its config, the hosted service (servicer + core EvaluatorPool), and the server."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from elm_core.errors import ConfigError, StateError
from elm_core.evaluation import EvaluatorPool
from elm_core.sandbox import Layer, Sandbox, SandboxConfig
from elm_core.sodarace import SimConfig, Terrain
from protos.elm.v1 import evaluator_pb2, evaluator_pb2_grpc
from services.common import RunningServer, Service, TLSIdentity, start_backend
from services.evaluator.convert import capabilities_to_proto
from services.evaluator.servicer import EvaluatorServicer

SERVICE_NAME = evaluator_pb2.DESCRIPTOR.services_by_name["EvaluatorService"].full_name
_WARM_UP = """
def make_walker():
    wc = walker_creator()
    wc.add_muscle(wc.add_joint(0, 0), wc.add_joint(1, 0))
    return wc.get_walker()
"""


@dataclass(frozen=True, kw_only=True)
class EvaluatorServerConfig:
    """One replica: its lanes, the world walkers walk in unless a request names another, how many programs it
    admits, the sandbox limits."""

    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    terrain: str = "flat"
    sim: SimConfig = field(default_factory=SimConfig)
    max_in_flight: int = 0  # programs across concurrent calls; 0 means 4 x workers
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    replica: str = ""  # the name this replica answers with; empty means host name and port

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.max_in_flight < 0:
            raise ConfigError(f"max_in_flight must be >= 1 (or 0 for 4 x workers), got {self.max_in_flight}")
        if self.max_in_flight == 0:
            object.__setattr__(self, "max_in_flight", 4 * self.workers)
        Terrain.named(self.terrain)  # raises ConfigError naming the choices


def build_service(config: EvaluatorServerConfig) -> Service:
    """The evaluator service, with a warm EvaluatorPool; closing the service closes the pool."""
    capabilities = capabilities_to_proto(
        layers=_sandbox_layers(config.sandbox),
        sandbox=config.sandbox,
        sim=config.sim,
        terrain=Terrain.named(config.terrain),
        workers=config.workers,
        max_batch=config.max_in_flight,
    )
    evaluator = EvaluatorPool(
        config.sandbox,
        config.sim,
        Terrain.named(config.terrain),
        workers=config.workers,
        queue_size=config.max_in_flight,  # admission keeps it from ever filling
    )
    try:
        _warm_up(evaluator, config.workers)
    except BaseException:
        evaluator.close()
        raise
    servicer = EvaluatorServicer(evaluator, capabilities, replica=config.replica)
    return Service(
        name=SERVICE_NAME,
        servicer=servicer,
        register=evaluator_pb2_grpc.add_EvaluatorServiceServicer_to_server,
        drain=servicer.drain,
        close=evaluator.close,
    )


def serve(
    config: EvaluatorServerConfig,
    *,
    port: int,
    metrics_port: int | None = None,
    host: str = "127.0.0.1",
    tls: TLSIdentity | None = None,
    health_port: int | None = None,
) -> RunningServer:
    """Starts a replica (port 0 picks a free port) with health, reflection and metrics; with `tls`, only
    callers with a certificate of its authority get in."""
    service = build_service(config)
    running = start_backend(service, "evaluator", tls=tls, port=port, host=host, metrics_port=metrics_port,
                            health_port=health_port)  # fmt: skip
    if not config.replica:
        service.servicer.replica = f"{socket.gethostname()}:{running.port}"
    return running


def _warm_up(evaluator: EvaluatorPool, workers: int) -> None:
    """One walker per lane, so that the first requests find every simulation process started."""
    for result in evaluator.evaluate([_WARM_UP] * workers):
        if not result.ok:  # the sandbox or the simulator is broken on this host
            raise StateError(
                f"the evaluator cannot evaluate a trivial walker: {result.status} {result.message}"
            )


def _sandbox_layers(config: SandboxConfig) -> dict[Layer, tuple[bool, str]]:
    """The isolation layers this host gives programs (read from a short-lived sandbox)."""
    with Sandbox(config) as probe:
        return probe.layers
