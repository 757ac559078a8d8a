"""The SQL of the `training_jobs` table and its rows as `JobRecord`s; `SQLiteStore` runs them."""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from elm_core.errors import InvalidRequestError
from elm_core.store._records import JobRecord, JobStatus

_JOB_COLUMNS = (
    "job_id, run_id, kind, status, model, config_json, message, progress, metrics_json, checkpoint, "
    "created_at, updated_at"
)
INSERT_JOB = """
INSERT INTO training_jobs (job_id, run_id, kind, status, model, config_json, message, progress, metrics_json,
    checkpoint, created_at, updated_at)
VALUES (:job_id, :run_id, :kind, :status, :model, :config_json, '', 0.0, '{}', '', :now, :now)
"""
SELECT_JOB_EXISTS = "SELECT 1 FROM training_jobs WHERE job_id = ?"
SELECT_JOB = f"SELECT {_JOB_COLUMNS} FROM training_jobs WHERE job_id = ?"
# Oldest first; rowid breaks ties between jobs created within one clock tick, so the queue is FIFO.
SELECT_JOBS = f"""
SELECT {_JOB_COLUMNS} FROM training_jobs
WHERE (:run_id IS NULL OR run_id = :run_id) AND (:status IS NULL OR status = :status)
ORDER BY created_at, rowid
"""


def update_statement(changes: dict[str, Any]) -> str:
    """`UPDATE training_jobs SET` the given columns (always `updated_at`) `WHERE job_id = :job_id`."""
    assignments = ", ".join(f"{column} = :{column}" for column in [*changes, "updated_at"])
    return f"UPDATE training_jobs SET {assignments} WHERE job_id = :job_id"


def job_changes(
    *,
    status: JobStatus | None,
    message: str | None,
    progress: float | None,
    metrics_json: str | None,
    checkpoint: str | None,
) -> dict[str, Any]:
    """The columns an update sets (those given), checked."""
    if progress is not None and not (math.isfinite(progress) and 0.0 <= progress <= 1.0):
        raise InvalidRequestError(f"progress must be in [0, 1], got {progress}")
    changes = {
        "status": None if status is None else JobStatus(status).value,
        "message": message,
        "progress": progress,
        "metrics_json": metrics_json,
        "checkpoint": checkpoint,
    }
    return {column: value for column, value in changes.items() if value is not None}


def job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(**{**dict(row), "status": JobStatus(row["status"])})
