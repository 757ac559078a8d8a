"""`JobRunner`: the trainer's queue. Jobs live in the store; one worker thread runs them one at a time.

A job left RUNNING by a trainer that was killed goes back to the queue when the next one starts (every
kind must therefore be safe to run again). Draining stops taking jobs and ends watches; closing gives the
current job `finish_grace_s` to end, then puts it back in the queue.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import structlog

from elm_core.errors import ElmError, InvalidRequestError
from elm_core.store import JobRecord, JobStatus, SQLiteStore
from services.trainer.kinds import KINDS, JobContext, JobInterrupted

log = structlog.get_logger()


class JobRunner:
    """Queues, runs and watches jobs; every change it makes wakes the watchers."""

    def __init__(
        self, store: SQLiteStore, checkpoints_dir: Path, *, poll_s: float = 1.0, finish_grace_s: float = 30.0
    ) -> None:
        self.store, self.checkpoints_dir = store, checkpoints_dir
        self.poll_s, self.finish_grace_s = poll_s, finish_grace_s
        self._changed = threading.Condition()
        self._version = 0  # bumped on every change, so watchers know to look
        self._draining = False
        self._closing = False  # from now on, a job's report() raises JobInterrupted
        self._current: str | None = None  # the job the worker runs; None once it ended or was put back
        self._wake = threading.Event()
        self._worker = threading.Thread(target=self._work, name="trainer-jobs", daemon=True)

    def start(self) -> None:
        """Re-queues the jobs a killed trainer left RUNNING, then starts the worker."""
        for job in self.store.list_jobs(status=JobStatus.RUNNING):
            log.info("re-queueing a job the previous trainer left running", job=job.job_id)
            self.store.update_job(
                job.job_id,
                status=JobStatus.QUEUED,
                progress=0.0,
                message="re-queued: the trainer running it stopped",
            )
        self._worker.start()

    def submit(self, *, run_id: str, kind: str, model: str, config_json: str) -> JobRecord:
        """A new QUEUED job, once its run, kind and settings are known to be good."""
        if kind not in KINDS:
            raise InvalidRequestError(f"unknown job kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}")
        KINDS[kind].settings(config_json)
        self.store.get_run(run_id)
        job = self.store.create_job(
            job_id=uuid.uuid4().hex[:12],
            run_id=run_id,
            kind=kind,
            model=model,
            config_json=config_json or "{}",
        )
        log.info("job queued", job=job.job_id, run=run_id, kind=kind)
        self._notify()
        self._wake.set()
        return job

    def watch(self, job_id: str, is_active: Callable[[], bool] = lambda: True) -> Iterator[JobRecord]:
        """The job now, then on every change, until it ends, the caller leaves or the trainer drains."""
        with self._changed:
            seen = self._version
        job = self.store.get_job(job_id)
        yield job
        while not job.status.final and is_active() and not self._draining:
            seen = self._wait_for_change(seen)
            latest = self.store.get_job(job_id)
            if latest != job:
                yield latest
                job = latest

    def drain(self) -> None:
        """Stops taking new jobs and ends every watch."""
        with self._changed:
            self._draining = True
            self._changed.notify_all()
        self._wake.set()

    def close(self) -> None:
        """Lets the current job finish (up to `finish_grace_s`), else puts it back in the queue."""
        self.drain()
        if self._worker.is_alive():
            self._worker.join(self.finish_grace_s)
        with self._changed:
            self._closing = True
            unfinished, self._current = self._current, None
        if unfinished is not None:
            log.warning("the trainer closed during a job: putting it back in the queue", job=unfinished)
            self.store.update_job(
                unfinished,
                status=JobStatus.QUEUED,
                progress=0.0,
                message="re-queued: the trainer stopped during the job",
            )

    # -- internals ------------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._draining:
            try:
                queued = self.store.list_jobs(status=JobStatus.QUEUED)
                if queued:
                    self._run(queued[0])
                    continue
            except ElmError:  # the store is busy or gone: log it, and try again after a pause
                log.exception("the job queue failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _run(self, job: JobRecord) -> None:
        kind = KINDS.get(job.kind)
        if kind is None:
            self._update(
                job.job_id, status=JobStatus.FAILED, message=f"this trainer has no job kind {job.kind!r}"
            )
            return
        with self._changed:
            self._current = job.job_id
        self._update(job.job_id, status=JobStatus.RUNNING, progress=0.0, message="started")
        log.info("job started", job=job.job_id, kind=job.kind, run=job.run_id)
        directory = self.checkpoints_dir / job.job_id
        context = JobContext(
            job=job,
            store=self.store,
            directory=directory,
            report=lambda progress, message: self._report(job.job_id, progress, message),
        )
        try:
            metrics = kind.run(context, kind.settings(job.config_json))
        except JobInterrupted:
            return  # close() put it back in the queue
        except ElmError as e:
            self._finish(job.job_id, JobStatus.FAILED, str(e))
        except Exception as e:  # a bug in a job must fail that job, not the trainer
            log.exception("job crashed", job=job.job_id)
            self._finish(job.job_id, JobStatus.FAILED, f"{type(e).__name__}: {e}")
        else:
            self._finish(
                job.job_id,
                JobStatus.SUCCEEDED,
                "done",
                progress=1.0,
                metrics_json=json.dumps(metrics, sort_keys=True),
                checkpoint=str(directory) if directory.is_dir() else "",
            )

    def _report(self, job_id: str, progress: float, message: str) -> None:
        if self._closing:
            raise JobInterrupted(f"the trainer is closing; job {job_id} goes back to the queue")
        self._update(job_id, progress=progress, message=message)

    def _finish(self, job_id: str, status: JobStatus, message: str, **results: Any) -> None:
        """The job's final state, unless close() already put it back in the queue."""
        with self._changed:
            if self._current != job_id:
                return
            self._current = None
        self._update(job_id, status=status, message=message, **results)
        log.info("job ended", job=job_id, status=status.value, message=message)

    def _update(self, job_id: str, **changes: Any) -> None:
        self.store.update_job(job_id, **changes)
        self._notify()

    def _wait_for_change(self, seen: int) -> int:
        """Waits until a change after version `seen`, a drain or `poll_s` (which catches other processes'
        changes); returns the version now."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != seen or self._draining, self.poll_s)
            return self._version

    def _notify(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()
