"""Where the dashboard reads runs from: a run store on disk, or a coordinator over gRPC.

Both answer in the store's own records (`elm_core.store`), so the pages do not know which one they read.
Only a coordinator's runs can be paused, resumed and stopped from the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from elm_core.errors import ConfigError, InvalidRequestError, NotFoundError
from elm_core.run import STORE_FILE
from elm_core.spec import RunSpec
from elm_core.store import (
    EliteRecord,
    IndividualRecord,
    MetricsRecord,
    MutationRecord,
    OperatorStats,
    RunRecord,
    RunStatus,
    SQLiteStore,
)
from protos.elm.v1 import coordinator_pb2 as pb
from services.client import CoordinatorClient

CONTROLS = ("pause", "resume", "stop")


class RunSource(Protocol):
    """What the dashboard reads; every method raises NotFoundError for an unknown run or individual."""

    controllable: bool  # whether runs can be paused, resumed and stopped through `control`

    def runs(self) -> list[RunRecord]: ...
    def run(self, run_id: str) -> RunRecord: ...
    def spec(self, run_id: str) -> RunSpec: ...
    def elites(self, run_id: str) -> list[EliteRecord]: ...
    def metrics(self, run_id: str, after_batch: int) -> list[MetricsRecord]: ...
    def operators(self, run_id: str) -> list[OperatorStats]: ...
    def individual(self, run_id: str, individual_id: int) -> IndividualRecord: ...
    def mutation_of(self, run_id: str, individual_id: int) -> MutationRecord | None: ...
    def lineage(self, run_id: str, individual_id: int) -> list[IndividualRecord]: ...
    def control(self, run_id: str, action: str) -> RunRecord: ...
    def close(self) -> None: ...


def _decoded_spec(config_json: str) -> RunSpec:
    """A run whose stored spec no longer decodes is shown with the default archive and world."""
    try:
        return RunSpec.from_json(config_json)
    except ConfigError:
        return RunSpec()


class StoreSource:
    """Runs in a SQLite run store, read while a run may be writing to it (WAL readers never block it)."""

    controllable = False

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_dir():
            path = path / STORE_FILE
        if not path.is_file():
            raise NotFoundError(f"no run store at {path}: give a store file or a run directory")
        self.path = path
        self.store = SQLiteStore(path)

    def runs(self) -> list[RunRecord]:
        return self.store.list_runs()

    def run(self, run_id: str) -> RunRecord:
        return self.store.get_run(run_id)

    def spec(self, run_id: str) -> RunSpec:
        return _decoded_spec(self.store.get_run(run_id).config_json)

    def elites(self, run_id: str) -> list[EliteRecord]:
        return self.store.elites(run_id)

    def metrics(self, run_id: str, after_batch: int) -> list[MetricsRecord]:
        return self.store.metrics(run_id, after_batch=after_batch)

    def operators(self, run_id: str) -> list[OperatorStats]:
        return self.store.operator_stats(run_id)

    def individual(self, run_id: str, individual_id: int) -> IndividualRecord:
        return self.store.individual(run_id, individual_id)

    def mutation_of(self, run_id: str, individual_id: int) -> MutationRecord | None:
        return self.store.mutation_of(run_id, individual_id)

    def lineage(self, run_id: str, individual_id: int) -> list[IndividualRecord]:
        return self.store.lineage(run_id, individual_id)

    def control(self, run_id: str, action: str) -> RunRecord:
        raise InvalidRequestError("runs read from a store cannot be controlled here; a coordinator's can")

    def close(self) -> None:
        self.store.close()


class CoordinatorSource:
    """Runs on a coordinator, read (and paused, resumed, stopped) through its gRPC API."""

    controllable = True

    def __init__(self, client: CoordinatorClient) -> None:
        self.client = client

    def runs(self) -> list[RunRecord]:
        return [_run_record(run) for run in self.client.list_runs()]

    def run(self, run_id: str) -> RunRecord:
        return _run_record(self.client.get_run(run_id))

    def spec(self, run_id: str) -> RunSpec:
        return _decoded_spec(self.client.get_run(run_id).config_json)

    def elites(self, run_id: str) -> list[EliteRecord]:
        return [
            EliteRecord(run_id=run_id, cell=e.cell, individual_id=e.individual_id, fitness=e.fitness,
                        descriptors=tuple(e.descriptors))
            for e in self.client.get_archive(run_id)
        ]  # fmt: skip

    def metrics(self, run_id: str, after_batch: int) -> list[MetricsRecord]:
        return [_metrics_record(run_id, p) for p in self.client.get_metrics(run_id, after_batch=after_batch)]

    def operators(self, run_id: str) -> list[OperatorStats]:
        return [
            OperatorStats(operator=o.operator, mutations=o.mutations, applied=o.applied, ran=o.ran,
                          inserted=o.inserted, duplicates=o.duplicates, generated_tokens=o.generated_tokens)
            for o in self.client.get_run(run_id).operators
        ]  # fmt: skip

    def individual(self, run_id: str, individual_id: int) -> IndividualRecord:
        return _individual_record(self.client.get_individual(run_id, individual_id))

    def mutation_of(self, run_id: str, individual_id: int) -> MutationRecord | None:
        message = self.client.get_individual(run_id, individual_id)
        return _mutation_record(message) if message.HasField("mutation") else None

    def lineage(self, run_id: str, individual_id: int) -> list[IndividualRecord]:
        return [_individual_record(step) for step in self.client.get_lineage(run_id, individual_id)]

    def control(self, run_id: str, action: str) -> RunRecord:
        commands = {
            "pause": self.client.pause_run,
            "resume": self.client.resume_run,
            "stop": self.client.stop_run,
        }
        if action not in commands:
            raise InvalidRequestError(f"unknown action {action!r}; known: {', '.join(CONTROLS)}")
        return _run_record(commands[action](run_id))

    def close(self) -> None:
        self.client.close()


# -- elm.v1 messages to store records ----------------------------------------------------------------------


def _run_record(run: pb.Run) -> RunRecord:
    spec = _decoded_spec(run.config_json)
    return RunRecord(run_id=run.run_id, name=run.name, config_json=run.config_json,
                     status=RunStatus(run.status), rng_seed=spec.rng_seed, evaluations=run.evaluations,
                     batches=run.batches, rng_state_json="", created_at=run.created_at,
                     updated_at=run.updated_at)  # fmt: skip


def _metrics_record(run_id: str, p: pb.Progress) -> MetricsRecord:
    return MetricsRecord(
        run_id=run_id, batch=p.batch, evaluations=p.evaluations, filled=p.filled, coverage=p.coverage,
        qd_score=p.qd_score, max_fitness=p.max_fitness if p.HasField("max_fitness") else None,
        applied_fraction=p.applied_fraction, ran_fraction=p.ran_fraction,
        inserted_fraction=p.inserted_fraction, evaluations_per_s=p.evaluations_per_s, elapsed_s=p.elapsed_s,
        created_at=0.0,
    )  # fmt: skip


def _individual_record(i: pb.Individual) -> IndividualRecord:
    return IndividualRecord(
        run_id=i.run_id, individual_id=i.individual_id, batch=i.batch,
        parent_id=i.parent_id if i.HasField("parent_id") else None, source=i.source, status=i.status,
        message=i.message, fitness=i.fitness if i.HasField("fitness") else None,
        descriptors=tuple(i.descriptors) or None, cell=i.cell if i.HasField("cell") else None,
        walker_json=i.walker_json or None, timings_json="{}", created_at=0.0,
    )  # fmt: skip


def _mutation_record(i: pb.Individual) -> MutationRecord:
    m = i.mutation
    return MutationRecord(
        run_id=i.run_id, batch=i.batch, parent_id=m.parent_id, child_id=i.individual_id, operator=m.operator,
        style=m.style, message=m.message, raw_output=m.raw_output, mutation_outcome=m.outcome,
        applied=True, ran=i.status == "OK", inserted=False, fitness_delta=None,
        generated_tokens=m.generated_tokens,
    )  # fmt: skip
