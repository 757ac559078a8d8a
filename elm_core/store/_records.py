"""The records a run stores: one frozen dataclass per table, plus `BatchRecord`, the unit of commit."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from elm_core.errors import InvalidRequestError


class RunStatus(enum.StrEnum):
    """Where a run is in its life."""

    CREATED = "CREATED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"  # stopped by a person; can be resumed
    FINISHED = "FINISHED"  # reached its evaluation budget
    FAILED = "FAILED"


def _require_not_nan(name: str, value: float | None) -> None:
    # SQLite stores NaN as NULL, so a NaN would come back as None: refuse it instead of changing it.
    if value is not None and math.isnan(value):
        raise InvalidRequestError(f"{name} must be a number or None, got NaN")


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One run: its resolved config, status, committed counters and the RNG state to resume from."""

    run_id: str
    name: str
    config_json: str  # the resolved config as JSON
    status: RunStatus
    rng_seed: int
    evaluations: int  # individuals committed so far
    batches: int  # batches committed so far; the next batch number
    rng_state_json: str  # numpy bit-generator state after the last committed batch
    created_at: float  # unix seconds
    updated_at: float


@dataclass(frozen=True, kw_only=True)
class IndividualRecord:
    """One evaluated program. `individual_id` is assigned by the caller, unique within its run."""

    run_id: str
    individual_id: int
    batch: int
    parent_id: int | None  # None for seeds
    source: str
    status: str  # the evaluation outcome: "OK", "SYNTAX_ERROR", "SIMULATION_TIMEOUT", ...
    message: str
    fitness: float | None
    descriptors: tuple[float, ...] | None
    cell: int | None
    walker_json: str | None
    timings_json: str  # a JSON object of floats (seconds per stage)
    created_at: float

    def __post_init__(self) -> None:
        _require_not_nan("fitness", self.fitness)


@dataclass(frozen=True, kw_only=True)
class MutationRecord:
    """One mutation of one parent; `child_id` is None when it produced no program to evaluate."""

    run_id: str
    batch: int
    parent_id: int
    child_id: int | None
    operator: str
    style: str
    message: str  # the commit message the child was asked for
    raw_output: str  # what the model wrote
    mutation_outcome: str  # "OK", "DIFF_DID_NOT_APPLY", ...
    applied: bool
    ran: bool
    inserted: bool
    fitness_delta: float | None  # child fitness minus parent fitness
    generated_tokens: int = 0  # what the model wrote for this mutation, in tokens (0 for GP)

    def __post_init__(self) -> None:
        _require_not_nan("fitness_delta", self.fitness_delta)


@dataclass(frozen=True, kw_only=True)
class OperatorStats:
    """What one mutation operator earned over a run: calls, and how many of them applied, ran, entered the
    archive, or were duplicates (of a program or a walker already evaluated); the tokens the model wrote."""

    operator: str
    mutations: int
    applied: int
    ran: int
    inserted: int
    duplicates: int
    generated_tokens: int

    def fraction(self, count: int) -> float:
        return count / self.mutations if self.mutations else 0.0

    @property
    def tokens_per_inserted(self) -> float | None:
        return self.generated_tokens / self.inserted if self.inserted else None


@dataclass(frozen=True, kw_only=True)
class EliteRecord:
    """The occupant of one archive cell."""

    run_id: str
    cell: int
    individual_id: int
    fitness: float
    descriptors: tuple[float, ...]


@dataclass(frozen=True, kw_only=True)
class MetricsRecord:
    """The archive and throughput after one batch; fractions are over that batch's mutations."""

    run_id: str
    batch: int
    evaluations: int
    filled: int
    coverage: float
    qd_score: float
    max_fitness: float | None
    applied_fraction: float
    ran_fraction: float
    inserted_fraction: float
    elapsed_s: float
    evaluations_per_s: float
    created_at: float

    def __post_init__(self) -> None:
        _require_not_nan("max_fitness", self.max_fitness)


class JobStatus(enum.StrEnum):
    """Where a training job is in its life; SUCCEEDED, FAILED and CANCELLED are final."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def final(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True, kw_only=True)
class JobRecord:
    """One trainer job: what it learns from (`run_id`), its kind and settings, and how far it got."""

    job_id: str
    run_id: str
    kind: str  # "dataset", "finetune", ...
    status: JobStatus
    model: str  # the base model
    config_json: str  # the job's settings as a JSON object
    message: str  # what it is doing, or why it failed
    progress: float  # 0..1
    metrics_json: str  # a JSON object of floats
    checkpoint: str  # the directory the job wrote, or ""
    created_at: float  # unix seconds
    updated_at: float


@dataclass(frozen=True, kw_only=True)
class BatchRecord:
    """Everything one batch commits, in one transaction: the store takes all of it or none of it."""

    run_id: str
    batch: int
    individuals: tuple[IndividualRecord, ...]
    mutations: tuple[MutationRecord, ...]
    elites: tuple[EliteRecord, ...]  # upserted: each replaces its cell's previous elite
    metrics: MetricsRecord
    rng_state_json: str  # numpy bit-generator state after this batch

    def __post_init__(self) -> None:
        parts: list[IndividualRecord | MutationRecord | EliteRecord | MetricsRecord] = [
            *self.individuals,
            *self.mutations,
            *self.elites,
            self.metrics,
        ]
        for part in parts:
            if part.run_id != self.run_id:
                raise InvalidRequestError(
                    f"{type(part).__name__}.run_id must be the batch's {self.run_id!r}, got {part.run_id!r}"
                )
            if not isinstance(part, EliteRecord) and part.batch != self.batch:
                raise InvalidRequestError(
                    f"{type(part).__name__}.batch must be the batch's {self.batch}, got {part.batch}"
                )
