"""A pool of warm sandboxes: N workers, a bounded queue, back-pressure, clean shutdown."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from elm_core.errors import BackpressureError, ConfigError, StateError
from elm_core.sandbox._config import ExecutionResult, SandboxConfig
from elm_core.sandbox._sandbox import Sandbox, check_source


class SandboxPool:
    """`workers` sandboxes run programs in parallel; at most `queue_size` more may wait."""

    def __init__(
        self, config: SandboxConfig | None = None, *, workers: int = 2, queue_size: int = 16
    ) -> None:
        if workers < 1 or queue_size < 0:
            raise ConfigError(f"need workers >= 1 and queue_size >= 0, got {workers}, {queue_size}")
        self.config = config or SandboxConfig()
        self._sandboxes: list[Sandbox] = []
        try:
            for _ in range(workers):
                self._sandboxes.append(Sandbox(self.config))
        except BaseException:
            self.close()
            raise
        self._idle: queue.SimpleQueue[Sandbox] = queue.SimpleQueue()
        for sandbox in self._sandboxes:
            self._idle.put(sandbox)
        self._slots = threading.BoundedSemaphore(workers + queue_size)
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="sandbox")
        self._closed = False

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def zygote_pids(self) -> list[int]:
        return [sandbox.zygote_pid for sandbox in self._sandboxes]

    def submit(self, source: str | bytes, *, block: bool = False) -> Future[ExecutionResult]:
        """Queues a program; raises BackpressureError when the queue is full (unless block=True)."""
        text = check_source(source, self.config)
        if self._closed:
            raise StateError("the sandbox pool is closed")
        if not self._slots.acquire(blocking=block):
            raise BackpressureError("the sandbox queue is full; retry later")
        future = self._executor.submit(self._run, text)
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def map(self, sources: Iterable[str | bytes]) -> list[ExecutionResult]:
        """Runs every program (waiting for room in the queue) and returns the results in order."""
        futures = [self.submit(source, block=True) for source in sources]
        return [future.result() for future in futures]

    def _run(self, source: str) -> ExecutionResult:
        sandbox = self._idle.get()
        try:
            return sandbox.run(source)
        finally:
            self._idle.put(sandbox)

    def close(self) -> None:
        """Cancels queued programs, waits for running ones, then stops every zygote."""
        self._closed = True
        if hasattr(self, "_executor"):
            self._executor.shutdown(wait=True, cancel_futures=True)
        for sandbox in self._sandboxes:
            sandbox.close()
