"""`SQLiteStore`: runs, individuals, mutations, elites, metrics and training jobs in one SQLite file.

Durability: WAL journal with `synchronous=NORMAL` by default. A commit is in the WAL file before
`commit_batch` returns, so it survives the process being killed at any moment; a power loss may lose the
last few commits (never corrupt the file), because the WAL is fsynced at checkpoints only. Pass
`power_safe=True` for `synchronous=FULL`, an fsync per commit.

Threads: one connection opened with `check_same_thread=False` and every call holds one lock, so a store
may be shared by the loop's thread and a service's reader threads; calls run one at a time. Other
processes may open the same file at once (WAL: readers never block the writer; writers wait up to
`busy_timeout_s`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from elm_core.errors import InvalidRequestError, NotFoundError, StateError
from elm_core.store import _jobs
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
from elm_core.store._schema import migrate

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1  # SQLite INTEGER
PAGE_SIZE = 1000  # rows one query of iter_individuals / iter_mutations reads
Record = TypeVar("Record")
_MAX_LINEAGE_DEPTH = 100_000  # guards the recursive query against a parent cycle
_RUN_COLUMNS = (
    "run_id, name, config_json, status, rng_seed, evaluations, batches, rng_state_json, created_at, "
    "updated_at"
)
_INDIVIDUAL_COLUMNS = (
    "run_id, individual_id, batch, parent_id, source, status, message, fitness, descriptors_json, cell, "
    "walker_json, timings_json, created_at"
)
_MUTATION_COLUMNS = (
    "run_id, batch, seq, parent_id, child_id, operator, style, message, raw_output, mutation_outcome, "
    "applied, ran, inserted, fitness_delta, generated_tokens"
)
_METRICS_COLUMNS = (
    "run_id, batch, evaluations, filled, coverage, qd_score, max_fitness, applied_fraction, ran_fraction, "
    "inserted_fraction, elapsed_s, evaluations_per_s, created_at"
)
_ELITE_COLUMNS = "run_id, cell, individual_id, fitness, descriptors_json"


def _placeholders(columns: str) -> str:
    return ", ".join(f":{column.strip()}" for column in columns.split(","))


_INSERT_RUN = """
INSERT INTO runs (run_id, name, config_json, status, rng_seed, rng_state_json, created_at, updated_at)
VALUES (:run_id, :name, :config_json, :status, :rng_seed, :rng_state_json, :now, :now)
"""
_SELECT_RUN = f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?"
_SELECT_RUNS = f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at, run_id"
_SELECT_RUN_EXISTS = "SELECT 1 FROM runs WHERE run_id = ?"
_UPDATE_CONFIG = "UPDATE runs SET config_json = ?, updated_at = ? WHERE run_id = ?"
_UPDATE_STATUS = "UPDATE runs SET status = ?, updated_at = ? WHERE run_id = ?"
_SELECT_BATCHES = "SELECT batches FROM runs WHERE run_id = ?"
_ADVANCE_RUN = """
UPDATE runs SET evaluations = evaluations + :count, batches = :batch + 1, rng_state_json = :rng_state_json,
    updated_at = :now
WHERE run_id = :run_id AND batches = :batch
"""
_INSERT_INDIVIDUAL = (
    f"INSERT INTO individuals ({_INDIVIDUAL_COLUMNS}) VALUES ({_placeholders(_INDIVIDUAL_COLUMNS)})"
)
_INSERT_MUTATION = f"INSERT INTO mutations ({_MUTATION_COLUMNS}) VALUES ({_placeholders(_MUTATION_COLUMNS)})"
_INSERT_METRICS = f"INSERT INTO metrics ({_METRICS_COLUMNS}) VALUES ({_placeholders(_METRICS_COLUMNS)})"
_UPSERT_ELITE = f"""
INSERT INTO elites ({_ELITE_COLUMNS}) VALUES ({_placeholders(_ELITE_COLUMNS)})
ON CONFLICT (run_id, cell) DO UPDATE SET individual_id = excluded.individual_id,
    fitness = excluded.fitness, descriptors_json = excluded.descriptors_json
"""
_SELECT_ELITES = f"SELECT {_ELITE_COLUMNS} FROM elites WHERE run_id = ? ORDER BY cell"
_SELECT_TOP_ELITES = (
    f"SELECT {_ELITE_COLUMNS} FROM elites WHERE run_id = ? ORDER BY fitness DESC, cell LIMIT ?"
)
_SELECT_INDIVIDUAL = f"SELECT {_INDIVIDUAL_COLUMNS} FROM individuals WHERE run_id = ? AND individual_id = ?"
_SELECT_INDIVIDUALS = f"""
SELECT {_INDIVIDUAL_COLUMNS} FROM individuals WHERE run_id = ? ORDER BY individual_id LIMIT ? OFFSET ?
"""
_SELECT_INDIVIDUALS_BY_STATUS = f"""
SELECT {_INDIVIDUAL_COLUMNS} FROM individuals WHERE run_id = ? AND status = ?
ORDER BY individual_id LIMIT ? OFFSET ?
"""
_SELECT_MUTATIONS = f"""
SELECT {_MUTATION_COLUMNS} FROM mutations WHERE run_id = ? ORDER BY batch, seq LIMIT ? OFFSET ?
"""
_SELECT_METRICS = f"SELECT {_METRICS_COLUMNS} FROM metrics WHERE run_id = ? AND batch > ? ORDER BY batch"
_SELECT_MUTATION_OF_CHILD = f"SELECT {_MUTATION_COLUMNS} FROM mutations WHERE run_id = ? AND child_id = ?"
_SELECT_OUTCOME_COUNTS = """
SELECT mutation_outcome, COUNT(*) FROM mutations WHERE run_id = ? GROUP BY mutation_outcome
ORDER BY mutation_outcome
"""
_SELECT_OPERATOR_STATS = """
SELECT operator, COUNT(*), SUM(applied), SUM(ran), SUM(inserted),
    SUM(mutation_outcome IN ('DUPLICATE', 'DUPLICATE_WALKER')), SUM(generated_tokens)
FROM mutations WHERE run_id = ? GROUP BY operator ORDER BY operator
"""
_SELECT_NEXT_INDIVIDUAL_ID = "SELECT COALESCE(MAX(individual_id) + 1, 0) FROM individuals WHERE run_id = ?"
# From the individual up its parents (depth 0, 1, ...), returned seed first.
_SELECT_LINEAGE = f"""
WITH RECURSIVE chain (individual_id, depth) AS (
    SELECT :individual_id, 0
    UNION ALL
    SELECT i.parent_id, chain.depth + 1
    FROM individuals AS i JOIN chain ON i.individual_id = chain.individual_id
    WHERE i.run_id = :run_id AND i.parent_id IS NOT NULL AND chain.depth < {_MAX_LINEAGE_DEPTH}
)
SELECT {", ".join("i." + c.strip() for c in _INDIVIDUAL_COLUMNS.split(","))}
FROM chain JOIN individuals AS i ON i.run_id = :run_id AND i.individual_id = chain.individual_id
ORDER BY chain.depth DESC
"""


class SQLiteStore:
    """Durable storage for ELM runs; one file may hold several runs. See the module docstring."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_s: float = 10.0,
        power_safe: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = _connect(self.path, busy_timeout_s, power_safe)

    # -- lifecycle ---------------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- runs --------------------------------------------------------------------------------------------

    def create_run(
        self, *, run_id: str, name: str, config_json: str, rng_seed: int, rng_state_json: str
    ) -> RunRecord:
        if not _INT64_MIN <= rng_seed <= _INT64_MAX:
            raise InvalidRequestError(f"rng_seed must fit in 64 signed bits, got {rng_seed}")
        params = {
            "run_id": run_id,
            "name": name,
            "config_json": config_json,
            "status": RunStatus.CREATED.value,
            "rng_seed": rng_seed,
            "rng_state_json": rng_state_json,
            "now": self._clock(),
        }
        with self._write(f"creating run {run_id!r}") as conn:
            if conn.execute(_SELECT_RUN_EXISTS, (run_id,)).fetchone() is not None:
                raise StateError(f"run {run_id!r} already exists in {self.path}")
            conn.execute(_INSERT_RUN, params)
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._read(_SELECT_RUN, (run_id,))
        if not rows:
            raise NotFoundError(f"run {run_id!r} not found in {self.path}")
        return _run(rows[0])

    def list_runs(self) -> list[RunRecord]:
        return [_run(row) for row in self._read(_SELECT_RUNS, ())]

    def set_status(self, run_id: str, status: RunStatus) -> None:
        with self._write(f"setting the status of run {run_id!r}") as conn:
            if conn.execute(_UPDATE_STATUS, (RunStatus(status).value, self._clock(), run_id)).rowcount == 0:
                raise NotFoundError(f"run {run_id!r} not found in {self.path}")

    def update_config(self, run_id: str, config_json: str) -> None:
        """Replaces a run's stored config (a resumed run with a new budget)."""
        with self._write(f"updating the config of run {run_id!r}") as conn:
            if conn.execute(_UPDATE_CONFIG, (config_json, self._clock(), run_id)).rowcount == 0:
                raise NotFoundError(f"run {run_id!r} not found in {self.path}")

    # -- the unit of commit ------------------------------------------------------------------------------

    def commit_batch(self, batch: BatchRecord) -> None:
        """Commit one batch atomically; a batch number other than the run's next one is a StateError."""
        with self._write(f"committing batch {batch.batch} of run {batch.run_id!r}") as conn:
            _check_next_batch(conn, batch, self.path)
            conn.executemany(_INSERT_INDIVIDUAL, [_individual_params(i) for i in batch.individuals])
            conn.executemany(_INSERT_MUTATION, _mutation_params(batch.mutations))
            conn.executemany(_UPSERT_ELITE, [_elite_params(e) for e in batch.elites])
            conn.execute(_INSERT_METRICS, vars(batch.metrics))
            conn.execute(
                _ADVANCE_RUN,
                {
                    "run_id": batch.run_id,
                    "batch": batch.batch,
                    "count": len(batch.individuals),
                    "rng_state_json": batch.rng_state_json,
                    "now": self._clock(),
                },
            )

    # -- queries -----------------------------------------------------------------------------------------

    def elites(self, run_id: str) -> list[EliteRecord]:
        return [_elite(row) for row in self._read_run(run_id, _SELECT_ELITES, (run_id,))]

    def top_elites(self, run_id: str, n: int) -> list[EliteRecord]:
        return [_elite(row) for row in self._read_run(run_id, _SELECT_TOP_ELITES, (run_id, n))]

    def individual(self, run_id: str, individual_id: int) -> IndividualRecord:
        rows = self._read_run(run_id, _SELECT_INDIVIDUAL, (run_id, individual_id))
        if not rows:
            raise NotFoundError(f"individual {individual_id} not found in run {run_id!r}")
        return _individual(rows[0])

    def individuals(
        self, run_id: str, *, status: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[IndividualRecord]:
        """Individuals in id order; `status` filters by evaluation outcome, `limit`/`offset` page."""
        page = (-1 if limit is None else limit, offset)
        if status is None:
            rows = self._read_run(run_id, _SELECT_INDIVIDUALS, (run_id, *page))
        else:
            rows = self._read_run(run_id, _SELECT_INDIVIDUALS_BY_STATUS, (run_id, status, *page))
        return [_individual(row) for row in rows]

    def mutations(self, run_id: str, *, limit: int | None = None, offset: int = 0) -> list[MutationRecord]:
        """Mutations in commit order (batch, then position within the batch)."""
        rows = self._read_run(run_id, _SELECT_MUTATIONS, (run_id, -1 if limit is None else limit, offset))
        return [_mutation(row) for row in rows]

    def iter_individuals(self, run_id: str, *, page_size: int = PAGE_SIZE) -> Iterator[IndividualRecord]:
        """Every individual in id order, read a page at a time so that a large run is never held at once."""
        return _paged(lambda offset: self.individuals(run_id, limit=page_size, offset=offset))

    def iter_mutations(self, run_id: str, *, page_size: int = PAGE_SIZE) -> Iterator[MutationRecord]:
        """Every mutation in commit order, read a page at a time."""
        return _paged(lambda offset: self.mutations(run_id, limit=page_size, offset=offset))

    def metrics(self, run_id: str, *, after_batch: int = -1) -> list[MetricsRecord]:
        """The metrics of every batch after `after_batch` (all of them by default), in batch order."""
        return [_metrics(row) for row in self._read_run(run_id, _SELECT_METRICS, (run_id, after_batch))]

    def mutation_of(self, run_id: str, child_id: int) -> MutationRecord | None:
        """The mutation that produced individual `child_id`; None for a seed."""
        rows = self._read_run(run_id, _SELECT_MUTATION_OF_CHILD, (run_id, child_id))
        return _mutation(rows[0]) if rows else None

    def lineage(self, run_id: str, individual_id: int) -> list[IndividualRecord]:
        """The individual's ancestry: its seed first, the individual last."""
        rows = self._read_run(run_id, _SELECT_LINEAGE, {"run_id": run_id, "individual_id": individual_id})
        if not rows:
            raise NotFoundError(f"individual {individual_id} not found in run {run_id!r}")
        return [_individual(row) for row in rows]

    def mutation_outcome_counts(self, run_id: str) -> dict[str, int]:
        return {
            outcome: count for outcome, count in self._read_run(run_id, _SELECT_OUTCOME_COUNTS, (run_id,))
        }

    def operator_stats(self, run_id: str) -> list[OperatorStats]:
        """Per mutation operator (paper, directed, crossover, gp): calls, applied, ran, inserted, tokens."""
        rows = self._read_run(run_id, _SELECT_OPERATOR_STATS, (run_id,))
        return [OperatorStats(operator=r[0], mutations=r[1], applied=r[2], ran=r[3], inserted=r[4],
                              duplicates=r[5], generated_tokens=r[6]) for r in rows]  # fmt: skip

    def next_individual_id(self, run_id: str) -> int:
        next_id: int = self._read_run(run_id, _SELECT_NEXT_INDIVIDUAL_ID, (run_id,))[0][0]
        return next_id

    # -- training jobs -----------------------------------------------------------------------------------

    def create_job(self, *, job_id: str, run_id: str, kind: str, model: str, config_json: str) -> JobRecord:
        """A new QUEUED job learning from `run_id` (which must exist)."""
        params = {
            "job_id": job_id,
            "run_id": run_id,
            "kind": kind,
            "status": JobStatus.QUEUED.value,
            "model": model,
            "config_json": config_json,
            "now": self._clock(),
        }
        with self._write(f"creating job {job_id!r}") as conn:
            if conn.execute(_SELECT_RUN_EXISTS, (run_id,)).fetchone() is None:
                raise NotFoundError(f"run {run_id!r} not found in {self.path}")
            if conn.execute(_jobs.SELECT_JOB_EXISTS, (job_id,)).fetchone() is not None:
                raise StateError(f"job {job_id!r} already exists in {self.path}")
            conn.execute(_jobs.INSERT_JOB, params)
            return _jobs.job(conn.execute(_jobs.SELECT_JOB, (job_id,)).fetchone())

    def get_job(self, job_id: str) -> JobRecord:
        rows = self._read(_jobs.SELECT_JOB, (job_id,))
        if not rows:
            raise NotFoundError(f"job {job_id!r} not found in {self.path}")
        return _jobs.job(rows[0])

    def list_jobs(self, run_id: str | None = None, *, status: JobStatus | None = None) -> list[JobRecord]:
        """Jobs oldest first, optionally of one run and/or in one status."""
        params = {"run_id": run_id, "status": None if status is None else JobStatus(status).value}
        return [_jobs.job(row) for row in self._read(_jobs.SELECT_JOBS, params)]

    def update_job(
        self,
        job_id: str,
        *,
        status: JobStatus | None = None,
        message: str | None = None,
        progress: float | None = None,
        metrics_json: str | None = None,
        checkpoint: str | None = None,
    ) -> JobRecord:
        """Sets the given fields (and `updated_at`); returns the job as it now is."""
        changes = _jobs.job_changes(
            status=status,
            message=message,
            progress=progress,
            metrics_json=metrics_json,
            checkpoint=checkpoint,
        )
        params = {**changes, "updated_at": self._clock(), "job_id": job_id}
        with self._write(f"updating job {job_id!r}") as conn:
            if conn.execute(_jobs.update_statement(changes), params).rowcount == 0:
                raise NotFoundError(f"job {job_id!r} not found in {self.path}")
            return _jobs.job(conn.execute(_jobs.SELECT_JOB, (job_id,)).fetchone())

    # -- plumbing ----------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StateError(f"store {self.path} is closed")
        return self._conn

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front; any failure rolls all of it back."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise StateError(
                        f"store {self.path}: {what}: {type(e).__name__}: {e}; nothing was written"
                    ) from e
                raise

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._connection().execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise StateError(f"store {self.path}: {type(e).__name__}: {e}") from e

    def _read_run(self, run_id: str, sql: str, params: Sequence[Any] | dict[str, Any]) -> list[sqlite3.Row]:
        """`_read`, but an unknown run is a NotFoundError rather than an empty answer."""
        with self._lock:
            if not self._exists(run_id):
                raise NotFoundError(f"run {run_id!r} not found in {self.path}")
            return self._read(sql, params)

    def _exists(self, run_id: str) -> bool:
        return bool(self._read(_SELECT_RUN_EXISTS, (run_id,)))


def _connect(path: Path, busy_timeout_s: float, power_safe: bool) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as e:
        raise StateError(f"cannot open store {path}: {e}") from e
    conn.row_factory = sqlite3.Row
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        conn.execute(
            "PRAGMA journal_mode = WAL"
        )  # the first read of the file: fails here if it is not SQLite
        conn.execute(f"PRAGMA synchronous = {'FULL' if power_safe else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn, str(path))
    except sqlite3.Error as e:
        conn.close()
        raise StateError(f"{path} is not a usable elm store: {type(e).__name__}: {e}") from e
    except BaseException:
        conn.close()
        raise
    return conn


def _check_next_batch(conn: sqlite3.Connection, batch: BatchRecord, path: Path) -> None:
    row = conn.execute(_SELECT_BATCHES, (batch.run_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"run {batch.run_id!r} not found in {path}")
    expected: int = row[0]
    if batch.batch < expected:
        raise StateError(f"batch {batch.batch} of run {batch.run_id!r} is already committed")
    if batch.batch > expected:
        raise StateError(
            f"batch {batch.batch} of run {batch.run_id!r} is out of order: the next is {expected}"
        )


# -- records to rows and back ------------------------------------------------------------------------------


def _dump_floats(values: tuple[float, ...] | None) -> str | None:
    return None if values is None else json.dumps(list(values))


def _load_floats(text: str | None) -> tuple[float, ...] | None:
    return None if text is None else tuple(float(v) for v in json.loads(text))


def _individual_params(record: IndividualRecord) -> dict[str, Any]:
    return {**vars(record), "descriptors_json": _dump_floats(record.descriptors)}


def _mutation_params(records: Sequence[MutationRecord]) -> list[dict[str, Any]]:
    return [{**vars(record), "seq": seq} for seq, record in enumerate(records)]


def _elite_params(record: EliteRecord) -> dict[str, Any]:
    return {**vars(record), "descriptors_json": _dump_floats(record.descriptors)}


def _run(row: sqlite3.Row) -> RunRecord:
    return RunRecord(**{**dict(row), "status": RunStatus(row["status"])})


def _individual(row: sqlite3.Row) -> IndividualRecord:
    fields = dict(row)
    descriptors = _load_floats(fields.pop("descriptors_json"))
    return IndividualRecord(**fields, descriptors=descriptors)


def _mutation(row: sqlite3.Row) -> MutationRecord:
    fields = dict(row)
    del fields["seq"]
    for flag in ("applied", "ran", "inserted"):
        fields[flag] = bool(fields[flag])
    return MutationRecord(**fields)


def _elite(row: sqlite3.Row) -> EliteRecord:
    fields = dict(row)
    descriptors = _load_floats(fields.pop("descriptors_json")) or ()
    return EliteRecord(**fields, descriptors=descriptors)


def _metrics(row: sqlite3.Row) -> MetricsRecord:
    return MetricsRecord(**dict(row))


def _paged(read: Callable[[int], list[Record]]) -> Iterator[Record]:
    offset = 0
    while page := read(offset):
        yield from page
        offset += len(page)
