"""Durable storage for ELM runs: SQLite (WAL) files holding runs, individuals, mutations, elites, metrics,
and the trainer's jobs.

`SQLiteStore.commit_batch` writes everything one batch produced in one transaction, and refuses a batch
number that is not the run's next, so a run killed at any moment resumes from its last committed batch
without double counting. `export_run` writes a run as JSON Lines for analysis.
"""

from elm_core.store._export import RunExport, export_run
from elm_core.store._records import (
    BatchRecord,
    EliteRecord,
    IndividualRecord,
    JobRecord,
    JobStatus,
    MetricsRecord,
    MutationRecord,
    OperatorStats,
    RunRecord,
    RunStatus,
)
from elm_core.store._schema import LATEST_VERSION as SCHEMA_VERSION
from elm_core.store._sqlite import SQLiteStore

__all__ = [
    "SCHEMA_VERSION",
    "BatchRecord",
    "EliteRecord",
    "IndividualRecord",
    "JobRecord",
    "JobStatus",
    "MetricsRecord",
    "MutationRecord",
    "OperatorStats",
    "RunExport",
    "RunRecord",
    "RunStatus",
    "SQLiteStore",
    "export_run",
]
