"""EvaluatorFleet: the core's Evaluator port served by evaluator replicas over gRPC.

A batch is split into chunks that run concurrently on the least busy replicas. A replica that fails
(unreachable, deadline exceeded, stopped mid-call) cools off and its chunk goes to another one; a full
replica is retried after a back-off. Every program gets exactly one result, in order.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, cast

import grpc
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential_jitter

from elm_core.errors import (
    BackendUnavailableError,
    BackpressureError,
    ConfigError,
    ElmError,
    InvalidRequestError,
)
from elm_core.evaluation import EvalResult
from elm_core.sandbox import Outcome, SandboxConfig, check_source
from elm_core.sodarace import SimConfig, Terrain
from elm_core.spec import EvaluationSpec
from protos.elm.v1 import evaluator_pb2
from services.client._evaluator_replicas import Patience, Replica, Replicas
from services.common import Credentials, RemoteError
from services.evaluator.convert import result_from_proto, world_to_proto

# Codes after which the chunk may have been lost with the replica: evaluate it again elsewhere.
_FAILOVER_CODES = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED})
_ANY_SIZE = SandboxConfig(source_limit_bytes=2**62)
_BACKOFF = wait_exponential_jitter(multiplier=0.02, max=1.0, jitter=0.05)


class _ReplicaDown(ElmError):
    """The replica failed the call; another may succeed."""


class _ReplicaFull(ElmError):
    """The replica has no room; it or another will, soon."""


def _wait(state: RetryCallState) -> float:
    """No wait before trying another replica; a back-off when replicas are full."""
    full = state.outcome is not None and isinstance(state.outcome.exception(), _ReplicaFull)
    return _BACKOFF(state) if full else 0.0


class EvaluatorFleet:
    """Evaluates programs on the replicas behind `targets` ("host:port"; a name may resolve to several)."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        per_replica_in_flight: int = 2,
        chunk_size: int | None = None,
        deadline_s: float = 120.0,
        give_up_s: float = 300.0,
        cool_off_s: float = 5.0,
        resolve_every_s: float = 30.0,
        credentials: Credentials | None = None,
    ) -> None:
        _check_arguments(targets, per_replica_in_flight, chunk_size, deadline_s, give_up_s)
        self.chunk_size, self.deadline_s, self.give_up_s = chunk_size, deadline_s, give_up_s
        self._replicas = Replicas(
            targets,
            per_replica_in_flight=per_replica_in_flight,
            cool_off_s=cool_off_s,
            resolve_every_s=resolve_every_s,
            credentials=credentials or Credentials.from_env(),
        )
        self._executor = ThreadPoolExecutor(32, thread_name_prefix="evaluator-fleet")
        self._served: Counter[str] = Counter()
        self._served_lock = threading.Lock()

    def __enter__(self) -> EvaluatorFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def evaluate(
        self, sources: Sequence[str], *, sim_config: SimConfig | None = None, terrain: Terrain | None = None
    ) -> list[EvalResult]:
        """One result per program, in order, simulated in the given world (default: each replica's own).
        Text no program can be made of, under the replicas' limits, is a SYNTAX_ERROR here, never sent."""
        world = (
            None
            if sim_config is None and terrain is None
            else world_to_proto(sim_config or SimConfig(), terrain or Terrain())
        )
        results: list[EvalResult | None] = [None] * len(sources)
        texts = _screen(list(enumerate(sources)), _ANY_SIZE, results)  # no replica needed to see this
        if texts:
            texts = _screen(texts, self._limits(), results)
        pending = [(index, text.encode("utf-8")) for index, text in texts]
        chunks = self._chunks(pending)
        futures = [self._executor.submit(self._evaluate_chunk, [p for _, p in c], world) for c in chunks]
        for chunk, future in zip(chunks, futures, strict=True):
            for (index, _), result in zip(chunk, future.result(), strict=True):
                results[index] = result
        return cast(list[EvalResult], results)  # every slot is filled: rejected here or by its chunk

    def capabilities(self) -> list[evaluator_pb2.Capabilities]:
        """What each usable replica offers (sandbox layers and limits, simulator, workers, max_batch)."""
        return [replica.capabilities for replica in self._replicas.usable()]

    def programs_by_replica(self) -> dict[str, int]:
        """How many programs each replica has evaluated for this fleet (by the name it answers with)."""
        with self._served_lock:
            return dict(self._served)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._replicas.close()

    def _limits(self) -> SandboxConfig:
        """The strictest source limit the usable replicas report (waiting for one to be usable)."""
        replicas = self._replicas.usable(Patience(self.give_up_s))
        return SandboxConfig(
            source_limit_bytes=min(r.capabilities.limits.source_limit_bytes for r in replicas)
        )

    def _chunks(self, pending: list[tuple[int, bytes]]) -> list[list[tuple[int, bytes]]]:
        """Even shares for the usable replicas (or `chunk_size`), never above any replica's max_batch."""
        if not pending:
            return []
        replicas = self._replicas.usable(Patience(self.give_up_s))
        size = min(
            self.chunk_size or math.ceil(len(pending) / len(replicas)),
            *(r.capabilities.max_batch for r in replicas),
        )
        return [pending[start : start + size] for start in range(0, len(pending), size)]

    def _evaluate_chunk(
        self, programs: list[bytes], world: evaluator_pb2.SimulatorSettings | None
    ) -> list[EvalResult]:
        patience = Patience(self.give_up_s)
        retrying = Retrying(
            retry=retry_if_exception_type((_ReplicaDown, _ReplicaFull)),
            wait=_wait,
            stop=lambda _: patience.exhausted,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._call(programs, world, patience)
        except (_ReplicaDown, _ReplicaFull) as e:
            raise BackendUnavailableError(
                f"no evaluator replica took the batch in {self.give_up_s:g} s: {e}"
            ) from e
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(
        self, programs: list[bytes], world: evaluator_pb2.SimulatorSettings | None, patience: Patience
    ) -> list[EvalResult]:
        """One Evaluate call on the least busy replica; failures say whether to go elsewhere or wait."""
        replica = self._replicas.acquire(len(programs), patience)
        failed = False
        try:
            response = self._evaluate_on(
                replica, evaluator_pb2.EvaluateRequest(programs=programs, simulator=world)
            )
        except BackpressureError as e:
            patience.alive()  # it answered; it is only busy with other clients' work
            raise _ReplicaFull(str(e)) from e
        except (BackendUnavailableError, _ReplicaDown) as e:
            failed = True
            raise _ReplicaDown(str(e)) from e
        finally:
            self._replicas.release(replica, len(programs), failed=failed)
        with self._served_lock:
            self._served[response.replica or replica.name] += len(programs)
        return [result_from_proto(r) for r in response.results]

    def _evaluate_on(
        self, replica: Replica, request: evaluator_pb2.EvaluateRequest
    ) -> evaluator_pb2.EvaluateResponse:
        try:
            return replica.caller.call(
                replica.stub.Evaluate, request, deadline_s=self.deadline_s, retry=False
            )
        except RemoteError as e:
            if e.code in _FAILOVER_CODES:
                raise _ReplicaDown(str(e)) from e
            raise


def _screen(
    sources: list[tuple[int, str]], limits: SandboxConfig, results: list[EvalResult | None]
) -> list[tuple[int, str]]:
    """The programs that pass `check_source`; the others get their SYNTAX_ERROR result in `results`."""
    passed = []
    for index, source in sources:
        try:
            passed.append((index, check_source(source, limits)))
        except InvalidRequestError as e:
            results[index] = EvalResult(Outcome.SYNTAX_ERROR, None, str(e))
    return passed


def _check_arguments(
    targets: Sequence[str],
    per_replica_in_flight: int,
    chunk_size: int | None,
    deadline_s: float,
    give_up_s: float,
) -> None:
    if not targets or any(":" not in t for t in targets):
        raise ConfigError(f"targets must be a non-empty list of 'host:port', got {list(targets)!r}")
    if per_replica_in_flight < 1 or (chunk_size is not None and chunk_size < 1):
        raise ConfigError(
            f"need per_replica_in_flight >= 1 and chunk_size >= 1, got {per_replica_in_flight}, {chunk_size}"
        )
    if not (deadline_s > 0 and give_up_s > 0):
        raise ConfigError(f"need deadline_s > 0 and give_up_s > 0, got {deadline_s}, {give_up_s}")


class WorldEvaluator(Protocol):
    """An evaluator shared by runs with different settings: each batch names the world to simulate in."""

    def evaluate(
        self, sources: Sequence[str], *, sim_config: SimConfig | None = None, terrain: Terrain | None = None
    ) -> list[EvalResult]: ...


@dataclass(frozen=True)
class InRunWorld:
    """The loop's Evaluator port for one run: the shared evaluator, simulating in the run's world."""

    evaluator: WorldEvaluator
    world: EvaluationSpec

    def evaluate(self, sources: Sequence[str]) -> list[EvalResult]:
        return self.evaluator.evaluate(sources, sim_config=self.world.sim, terrain=self.world.terrain_model)
