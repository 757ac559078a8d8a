"""Dynamic batching: concurrent Mutate calls share model calls.

Each call becomes one `Work` in a bounded queue. One worker thread takes the oldest work, waits up to
`max_wait_s` after it arrived for more work that can share its model call (same `BatchKey`: style,
temperature, token limit), up to `max_batch_size` prompts, runs the batch, and hands each call its result.
A call cancelled while queued (its caller gave up, its deadline passed) is skipped; the others go on.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import structlog

from elm_core.errors import BackendUnavailableError, BackpressureError
from elm_core.mutation import Child, ChildRequest, PromptStyle

log = structlog.get_logger()


@dataclass(frozen=True)
class BatchKey:
    """What requests must agree on to share one model call."""

    style: PromptStyle
    temperature: float
    max_new_tokens: int


@dataclass(frozen=True)
class Served:
    """One call's answer: n children per parent, in parent order, and the model version that wrote them."""

    children: list[Child]
    model: str
    version: int


@dataclass(eq=False)
class Work:
    """One Mutate call waiting for the model."""

    key: BatchKey
    requests: tuple[ChildRequest, ...]  # an empty instruction is drawn from the server's table
    n: int  # children per parent
    seed: int
    future: Future[Served] = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)

    @property
    def size(self) -> int:
        """Prompts this call adds to a model call."""
        return len(self.requests) * self.n


RunBatch = Callable[[BatchKey, list[Work]], list[Served]]


class Batcher:
    """A bounded queue of work and the one worker thread that runs it in batches through `run`."""

    def __init__(self, run: RunBatch, *, max_batch_size: int, max_wait_s: float, max_queued: int) -> None:
        self._run = run
        self._max_batch_size, self._max_wait_s, self._max_queued = max_batch_size, max_wait_s, max_queued
        self._pending: deque[Work] = deque()
        self._queued = 0  # prompts in `_pending`
        self._changed = threading.Condition()
        self._accepting, self._closing = True, False
        self._worker = threading.Thread(target=self._serve, name="model-batcher", daemon=True)
        self._worker.start()

    def submit(self, work: Work) -> Future[Served]:
        """Queues `work`; BackpressureError when the queue has no room for it."""
        with self._changed:
            if not self._accepting:
                raise BackendUnavailableError("the model server is shutting down")
            if self._queued + work.size > self._max_queued:
                raise BackpressureError(
                    f"the model server's queue is full ({self._queued} of {self._max_queued} prompts "
                    f"waiting, this call adds {work.size}); retry later"
                )
            self._pending.append(work)
            self._queued += work.size
            self._changed.notify_all()
        return work.future

    def drain(self) -> None:
        """Stops taking work; what is queued runs at once, without waiting for batches to fill."""
        with self._changed:
            self._accepting = False
            self._changed.notify_all()

    def close(self) -> None:
        """Drains, runs what is left in the queue, and stops the worker."""
        self.drain()
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._worker.join()

    def _serve(self) -> None:
        while (batch := self._next_batch()) is not None:
            live = [work for work in batch if work.future.set_running_or_notify_cancel()]
            if live:
                self._run_batch(live)

    def _run_batch(self, works: list[Work]) -> None:
        try:
            results = self._run(works[0].key, works)
        except Exception as error:  # handed to every caller of the batch; the worker keeps serving
            log.exception("model batch failed", calls=len(works))
            for work in works:
                work.future.set_exception(error)
            return
        for work, result in zip(works, results, strict=True):
            work.future.set_result(result)

    def _next_batch(self) -> list[Work] | None:
        """The next batch, once it is full or its oldest work has waited long enough; None when closed."""
        with self._changed:
            while True:
                if not self._pending:
                    if self._closing:
                        return None
                    self._changed.wait()
                    continue
                batch = self._compatible(self._pending[0].key)
                wait_s = self._pending[0].arrived + self._max_wait_s - time.monotonic()
                if sum(w.size for w in batch) >= self._max_batch_size or wait_s <= 0 or not self._accepting:
                    return self._take(batch)
                self._changed.wait(wait_s)

    def _compatible(self, key: BatchKey) -> list[Work]:
        """The queued work that can join the oldest one's model call, in arrival order, up to the limit."""
        batch: list[Work] = []
        size = 0
        for work in self._pending:
            if work.key != key:
                continue
            if batch and size + work.size > self._max_batch_size:
                break
            batch.append(work)
            size += work.size
        return batch

    def _take(self, batch: list[Work]) -> list[Work]:
        taken = set(batch)  # Work compares by identity
        self._pending = deque(work for work in self._pending if work not in taken)
        self._queued -= sum(work.size for work in batch)
        return batch
