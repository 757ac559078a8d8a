"""The trainer server: a job runner over the coordinator's store, behind TrainerService."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elm_core.errors import ConfigError
from elm_core.models import DEFAULT_MODEL
from elm_core.store import SQLiteStore
from protos.elm.v1 import trainer_pb2, trainer_pb2_grpc
from services.common import RunningServer, Service, TLSIdentity, start_backend
from services.trainer.jobs import JobRunner
from services.trainer.servicer import TrainerServicer

SERVICE_NAME = trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"].full_name


@dataclass(frozen=True, kw_only=True)
class TrainerServerConfig:
    store_path: Path  # the coordinator's SQLite file (shared with it)
    checkpoints_dir: Path  # each job writes into <checkpoints_dir>/<job_id>
    default_model: str = DEFAULT_MODEL  # the base model of jobs that name none
    poll_s: float = 1.0  # how often the queue and watched jobs are re-read
    finish_grace_s: float = 30.0  # how long closing waits for the current job before re-queueing it

    def __post_init__(self) -> None:
        if not self.poll_s > 0:
            raise ConfigError(f"poll_s must be > 0, got {self.poll_s}")
        if not self.finish_grace_s >= 0:
            raise ConfigError(f"finish_grace_s must be >= 0, got {self.finish_grace_s}")


def build_service(config: TrainerServerConfig) -> Service:
    """Opens the store, re-queues the jobs a killed trainer left running, and starts the worker."""
    config.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    config.store_path.parent.mkdir(parents=True, exist_ok=True)  # may start before the coordinator
    store = SQLiteStore(config.store_path)
    runner = JobRunner(
        store, config.checkpoints_dir, poll_s=config.poll_s, finish_grace_s=config.finish_grace_s
    )
    try:
        runner.start()
    except BaseException:
        store.close()
        raise

    def close() -> None:
        runner.close()
        store.close()

    servicer = TrainerServicer(
        runner, default_model=config.default_model, checkpoints_dir=config.checkpoints_dir
    )
    return Service(
        name=SERVICE_NAME,
        servicer=servicer,
        register=trainer_pb2_grpc.add_TrainerServiceServicer_to_server,
        drain=runner.drain,
        close=close,
    )


def serve(
    config: TrainerServerConfig,
    *,
    port: int,
    metrics_port: int | None = None,
    host: str = "127.0.0.1",
    tls: TLSIdentity | None = None,
    health_port: int | None = None,
) -> RunningServer:
    """Starts the trainer (port 0 picks a free port) with health, reflection and metrics; with `tls`, only
    callers with a certificate of its authority get in."""
    return start_backend(build_service(config), "trainer", tls=tls, port=port, host=host,
                         metrics_port=metrics_port, health_port=health_port)  # fmt: skip
