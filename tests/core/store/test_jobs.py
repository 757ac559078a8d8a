"""Training jobs in the store: create, get, list, update, and the migration that added them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from elm_core.errors import InvalidRequestError, NotFoundError, StateError
from elm_core.store import SCHEMA_VERSION, JobRecord, JobStatus, RunStatus, SQLiteStore
from elm_core.store._schema import MIGRATIONS

CONFIG = json.dumps({"validation_fraction": 0.2})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "elm.sqlite", clock=clock) as s:
        for run_id in ("run-a", "run-b"):
            s.create_run(run_id=run_id, name=run_id, config_json="{}", rng_seed=1, rng_state_json="{}")
        yield s


def create(store: SQLiteStore, job_id: str, run_id: str = "run-a") -> JobRecord:
    return store.create_job(job_id=job_id, run_id=run_id, kind="dataset", model="m", config_json=CONFIG)


def test_a_new_job_is_queued_and_reads_back(store: SQLiteStore) -> None:
    job = create(store, "j1")
    assert job == JobRecord(
        job_id="j1",
        run_id="run-a",
        kind="dataset",
        status=JobStatus.QUEUED,
        model="m",
        config_json=CONFIG,
        message="",
        progress=0.0,
        metrics_json="{}",
        checkpoint="",
        created_at=1000.0,
        updated_at=1000.0,
    )
    assert store.get_job("j1") == job


def test_jobs_list_oldest_first_and_filter_by_run_and_status(store: SQLiteStore) -> None:
    for job_id, run_id in [("c", "run-a"), ("b", "run-b"), ("a", "run-a")]:  # same clock tick: FIFO by insert
        create(store, job_id, run_id)
    store.update_job("b", status=JobStatus.RUNNING)
    assert [j.job_id for j in store.list_jobs()] == ["c", "b", "a"]
    assert [j.job_id for j in store.list_jobs("run-a")] == ["c", "a"]
    assert [j.job_id for j in store.list_jobs(status=JobStatus.QUEUED)] == ["c", "a"]
    assert [j.job_id for j in store.list_jobs("run-b", status=JobStatus.QUEUED)] == []


def test_update_sets_only_what_it_is_given(store: SQLiteStore, clock: Clock) -> None:
    create(store, "j1")
    clock.now = 1005.0
    running = store.update_job("j1", status=JobStatus.RUNNING, message="building", progress=0.5)
    assert (running.status, running.message, running.progress) == (JobStatus.RUNNING, "building", 0.5)
    assert running.updated_at == 1005.0 and running.created_at == 1000.0
    done = store.update_job("j1", status=JobStatus.SUCCEEDED, metrics_json='{"train": 3.0}', checkpoint="/c")
    assert done.status.final and done.message == "building" and done.progress == 0.5
    assert (done.metrics_json, done.checkpoint) == ('{"train": 3.0}', "/c")


def test_unknown_jobs_and_runs(store: SQLiteStore) -> None:
    with pytest.raises(NotFoundError, match="job 'nope'"):
        store.get_job("nope")
    with pytest.raises(NotFoundError, match="job 'nope'"):
        store.update_job("nope", message="x")
    with pytest.raises(NotFoundError, match="run 'ghost'"):
        create(store, "j1", run_id="ghost")
    assert store.list_jobs() == []


def test_duplicate_job_and_bad_progress_are_refused(store: SQLiteStore) -> None:
    create(store, "j1")
    with pytest.raises(StateError, match="already exists"):
        create(store, "j1")
    for progress in (-0.1, 1.5, float("nan")):
        with pytest.raises(InvalidRequestError, match="progress"):
            store.update_job("j1", progress=progress)
    assert store.get_job("j1").progress == 0.0


def test_a_version_1_file_is_migrated_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # a file as the first release of the store wrote it
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO runs (run_id, name, config_json, status, rng_seed, rng_state_json, created_at, "
            "updated_at) VALUES ('old', 'old', '{}', 'FINISHED', 3, '{}', 1.0, 2.0)"
        )
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    with SQLiteStore(path) as s:
        assert s.get_run("old").status is RunStatus.FINISHED
        assert s.list_jobs() == []
        assert create(s, "j1", run_id="old").status is JobStatus.QUEUED
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    conn.close()
