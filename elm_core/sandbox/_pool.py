"""Pools of warm workers: N workers, a bounded queue, back-pressure, clean shutdown."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from elm_core.errors import BackpressureError, ConfigError, StateError
from elm_core.sandbox._config import ExecutionResult, SandboxConfig
from elm_core.sandbox._sandbox import Sandbox, check_source

Worker = TypeVar("Worker")
Result = TypeVar("Result")


class WorkerPool(Generic[Worker]):
    """`workers` workers (made by `factory`, each with a `close()`) serve jobs; at most `queue_size` wait."""

    def __init__(self, factory: Callable[[], Worker], *, workers: int, queue_size: int) -> None:
        if workers < 1 or queue_size < 0:
            raise ConfigError(f"need workers >= 1 and queue_size >= 0, got {workers}, {queue_size}")
        self._workers: list[Worker] = []
        self._closed = False
        try:
            for _ in range(workers):
                self._workers.append(factory())
        except BaseException:
            self.close()
            raise
        self._idle: queue.SimpleQueue[Worker] = queue.SimpleQueue()
        for worker in self._workers:
            self._idle.put(worker)
        self._slots = threading.BoundedSemaphore(workers + queue_size)
        self._busy_lock = threading.Lock()
        self.busy_seconds = 0.0  # summed over workers: utilisation = busy_seconds / (workers x wall time)
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=type(self).__name__)

    def __enter__(self):  # noqa: ANN204 - returns the subclass
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit_job(self, job: Callable[[Worker], Result], *, block: bool = False) -> Future[Result]:
        """Queues `job(worker)`; raises BackpressureError when the queue is full (unless block=True)."""
        if self._closed:
            raise StateError(f"the {type(self).__name__} is closed")
        if not self._slots.acquire(blocking=block):
            raise BackpressureError("the queue is full; retry later")
        future = self._executor.submit(self._run, job)
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def submit(self, source: str | bytes, *, block: bool = False) -> Future:
        raise NotImplementedError

    def map(self, sources: Iterable[str | bytes]) -> list:
        """Runs every program (waiting for room in the queue) and returns the results in order."""
        futures = [self.submit(source, block=True) for source in sources]
        return [future.result() for future in futures]

    @property
    def workers(self) -> int:
        return len(self._workers)

    def _run(self, job: Callable[[Worker], Result]) -> Result:
        worker = self._idle.get()
        started = time.perf_counter()
        try:
            return job(worker)
        finally:
            with self._busy_lock:
                self.busy_seconds += time.perf_counter() - started
            self._idle.put(worker)

    def close(self) -> None:
        """Cancels queued jobs, waits for running ones, then closes every worker."""
        self._closed = True
        if hasattr(self, "_executor"):
            self._executor.shutdown(wait=True, cancel_futures=True)
        for worker in self._workers:
            worker.close()  # type: ignore[attr-defined]


class SandboxPool(WorkerPool[Sandbox]):
    """`workers` warm sandboxes run programs in parallel."""

    def __init__(
        self, config: SandboxConfig | None = None, *, workers: int = 2, queue_size: int = 16
    ) -> None:
        self.config = config or SandboxConfig()
        super().__init__(lambda: Sandbox(self.config), workers=workers, queue_size=queue_size)

    @property
    def zygote_pids(self) -> list[int]:
        return [sandbox.zygote_pid for sandbox in self._workers]

    def submit(self, source: str | bytes, *, block: bool = False) -> Future[ExecutionResult]:
        text = check_source(source, self.config)
        return self.submit_job(lambda sandbox: sandbox.run(text), block=block)
