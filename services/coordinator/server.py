"""The coordinator server: the run manager over a store in a data directory, behind CoordinatorService."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from elm_core.errors import ConfigError
from elm_core.evaluation import EvaluatorPool
from elm_core.mutation import Mutator, build_mutator
from elm_core.spec import RunSpec
from elm_core.store import SQLiteStore
from protos.elm.v1 import coordinator_pb2_grpc
from services.client import EvaluatorFleet, RemoteMutator, WorldEvaluator
from services.common import (
    ADMIN,
    READ,
    AuthorizingInterceptor,
    Credentials,
    RunningServer,
    Service,
    TLSIdentity,
    TokenAuthority,
    is_loopback,
    start_server,
)
from services.coordinator.rounds import FinetuneRounds
from services.coordinator.runs import RunManager
from services.coordinator.servicer import CoordinatorServicer

log = structlog.get_logger()

SERVICE_NAME = "elm.v1.CoordinatorService"
STORE_FILE = "coordinator.sqlite"


@dataclass(frozen=True, kw_only=True)
class CoordinatorServerConfig:
    data_dir: Path  # the store (coordinator.sqlite) and the runs' seed programs
    evaluators: tuple[str, ...] = ()  # evaluator addresses (a DNS name may give several); () = a local pool
    model_server: str | None = None  # the model server's address, for llm runs
    trainer: str | None = None  # the trainer's address, for runs with fine-tuning rounds
    local_workers: int = field(default_factory=lambda: os.cpu_count() or 1)  # the local pool's size
    per_replica_in_flight: int = 2  # Evaluate calls one evaluator replica gets at once
    # Its TLS identity: its API is served over TLS with it, and it presents it to the evaluators, the model
    # server and the trainer. None: plaintext, on loopback only.
    tls: TLSIdentity | None = None
    tokens: TokenAuthority | None = None  # the API's bearer tokens; None: open, on loopback only


# What each API method needs: reading and watching runs takes a read token, the rest an admin token.
READ_METHODS = frozenset(
    {"GetRun", "ListRuns", "WatchRun", "GetArchive", "GetIndividual", "GetLineage", "GetMetrics"}
)


def build_service(config: CoordinatorServerConfig) -> Service:
    """Opens the store, connects the evaluators and resumes the runs a previous coordinator left running."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(config.data_dir / STORE_FILE)
    evaluator = _evaluator(config)
    rounds = _rounds(config)
    runs = RunManager(store, config.data_dir / "seeds", evaluator, lambda run: _mutator(config, run),
                      on_batch=rounds.on_batch if rounds else lambda *_: None,
                      admit=lambda run: _admit(config, run))  # fmt: skip
    runs.resume_interrupted()

    def close() -> None:
        evaluator.close()
        if rounds is not None:
            rounds.close()
        store.close()

    return Service(
        name=SERVICE_NAME,
        servicer=CoordinatorServicer(runs),
        register=coordinator_pb2_grpc.add_CoordinatorServiceServicer_to_server,
        drain=runs.drain,
        close=close,
    )


def serve(
    config: CoordinatorServerConfig,
    *,
    port: int,
    metrics_port: int | None = None,
    host: str = "127.0.0.1",
    health_port: int | None = None,
) -> RunningServer:
    """Starts the coordinator; off loopback it needs a TLS identity and API tokens."""
    if config.tokens is None and not is_loopback(host):
        raise ConfigError(f"a coordinator listening on {host} needs API tokens: --tokens FILE or "
                          "$ELM_TOKENS_FILE (`elm certs` writes one)")  # fmt: skip
    interceptors = [AuthorizingInterceptor(config.tokens, required_role)] if config.tokens else []
    return start_server([build_service(config)], port=port, host=host, metrics_port=metrics_port,
                        tls=config.tls, require_client_cert=False, interceptors=interceptors,
                        health_port=health_port)  # fmt: skip


def required_role(service: str, method: str) -> str | None:
    """The token role a coordinator method needs; None for the health and reflection services."""
    if service != SERVICE_NAME:
        return None
    return READ if method in READ_METHODS else ADMIN


def _evaluator(config: CoordinatorServerConfig) -> WorldEvaluator:
    if config.evaluators:
        return EvaluatorFleet(list(config.evaluators), per_replica_in_flight=config.per_replica_in_flight,
                              credentials=_credentials(config))  # fmt: skip
    log.info("no evaluators given: evaluating in a local sandbox pool", workers=config.local_workers)
    return EvaluatorPool(workers=config.local_workers)


def _rounds(config: CoordinatorServerConfig) -> FinetuneRounds | None:
    if config.trainer is None or config.model_server is None:
        return None
    return FinetuneRounds(config.trainer, config.model_server, credentials=_credentials(config))


def _mutator(config: CoordinatorServerConfig, run: RunSpec) -> Mutator:
    if run.finetune.every_batches and (config.trainer is None or config.model_server is None):
        raise ConfigError("fine-tuning rounds need a trainer and a model server: start the coordinator with "
                          "--trainer ADDRESS --model-server ADDRESS")  # fmt: skip
    if run.mutation.operator != "llm":
        return build_mutator(run.mutation.operator)
    if config.model_server is None:
        raise ConfigError("llm runs need a model server: start the coordinator with --model-server ADDRESS")
    return RemoteMutator(config.model_server, style=run.mutation.style, sampling=run.mutation.sampling,
                         credentials=_credentials(config))  # fmt: skip


def _credentials(config: CoordinatorServerConfig) -> Credentials | None:
    """What the coordinator presents to the other services: its own identity (None: from the environment)."""
    return Credentials(tls=config.tls) if config.tls is not None else None


def _admit(config: CoordinatorServerConfig, run: RunSpec) -> None:
    """Refuses a run whose model the model server does not serve (ConfigError)."""
    mutator = _mutator(config, run)
    if not isinstance(mutator, RemoteMutator):
        return
    with mutator:
        info = mutator.model_info()
    model = run.mutation.model
    if model and model != info.name:
        raise ConfigError(f"[mutation] model {model!r}: the model server serves {info.name!r}; leave model "
                          "unset to use it, or reload the model server")  # fmt: skip
