"""The ports the MAP-Elites loop consumes. In-process adapters and gRPC stubs both implement them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from elm_core.evaluation import EvalResult
from elm_core.store import BatchRecord, EliteRecord, IndividualRecord, MetricsRecord, RunRecord, RunStatus


class Evaluator(Protocol):
    """Programs in, one EvalResult per program out, in order; a bad program is a result, not an exception."""

    def evaluate(self, sources: Sequence[str]) -> list[EvalResult]: ...


class Store(Protocol):
    """What the loop needs from storage: a run, its elites, and one atomic commit per batch."""

    def get_run(self, run_id: str) -> RunRecord: ...

    def set_status(self, run_id: str, status: RunStatus) -> None: ...

    def elites(self, run_id: str) -> list[EliteRecord]: ...

    def individual(self, run_id: str, individual_id: int) -> IndividualRecord: ...

    def individuals(
        self, run_id: str, *, status: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[IndividualRecord]: ...

    def iter_individuals(self, run_id: str) -> Iterator[IndividualRecord]: ...

    def next_individual_id(self, run_id: str) -> int: ...

    def metrics(self, run_id: str) -> list[MetricsRecord]: ...

    def mutation_outcome_counts(self, run_id: str) -> dict[str, int]: ...

    def commit_batch(self, batch: BatchRecord) -> None: ...
