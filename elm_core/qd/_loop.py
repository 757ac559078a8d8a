"""The MAP-Elites loop: select parents, mutate, evaluate, insert, commit — batched and pipelined.

Batch k draws its randomness from `default_rng([seed, k])`, so a run is a function of its seed. With
`pipeline_depth` 1 the loop is sequential and exactly reproducible, across resumes too. With depth D, up
to D batches are in flight (one mutating while others evaluate, so neither the model nor the evaluators wait);
batch k then selects parents from the archive as it stood when it was started. Each batch is committed to the
store in one transaction, after its children are inserted, so a kill loses only uncommitted work.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from elm_core.errors import ConfigError, StateError
from elm_core.evaluation import EvalResult
from elm_core.mutation import Child, ChildRequest, Mutator
from elm_core.qd._archive import ArchiveBase, GridArchive
from elm_core.qd._batch import BatchBuilder, Parent
from elm_core.qd._config import ArchiveConfig
from elm_core.qd._cvt import CVTArchive
from elm_core.qd._operators import OperatorMix, OperatorPlanner
from elm_core.qd._ports import Evaluator, Store
from elm_core.qd._selectors import ParentSelector, UniformSelector
from elm_core.store import BatchRecord, MetricsRecord, RunStatus

Archive = ArchiveBase


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    batch_size: int = 8  # children per batch; one mutate() call and one evaluate() call each
    pipeline_depth: int = 2  # batches in flight; 1 = sequential and exactly reproducible
    max_evaluations: int | None = 200  # budget in evaluated programs, seeds included
    max_mutations: int | None = None  # budget in children asked for (LLM calls), over every session
    max_seconds: float | None = None  # budget in wall-clock seconds (this session)
    max_barren_batches: int = 25  # a run fails after this many batches in a row without one child program

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.pipeline_depth < 1:
            raise ConfigError(f"pipeline_depth must be >= 1, got {self.pipeline_depth}")
        if self.max_evaluations is not None and self.max_evaluations < 1:
            raise ConfigError(f"max_evaluations must be >= 1 or None, got {self.max_evaluations}")
        if self.max_mutations is not None and self.max_mutations < 1:
            raise ConfigError(f"max_mutations must be >= 1 or None, got {self.max_mutations}")
        if self.max_barren_batches < 1:
            raise ConfigError(f"max_barren_batches must be >= 1, got {self.max_barren_batches}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ConfigError(f"max_seconds must be > 0 or None, got {self.max_seconds}")


def make_archive(config: ArchiveConfig) -> Archive:
    return CVTArchive(config) if config.kind == "cvt" else GridArchive(config)


@dataclass
class LoopStats:
    """Where the time went in this session: the loop's own work vs waiting for mutation and evaluation."""

    batches: int = 0
    evaluations: int = 0
    loop_s: float = 0.0  # selection, insertion, records, commit
    wait_s: float = 0.0  # waiting for a batch's mutate + evaluate to finish
    started: float = 0.0

    @property
    def overhead_ms_per_evaluation(self) -> float:
        return 1e3 * self.loop_s / max(self.evaluations, 1)


@dataclass
class _InFlight:
    batch: int
    parents: list[Parent]
    future: Future[tuple[list[Child], list[EvalResult]]]


class MapElites:
    """Runs one stored run: `run()` continues from what the store has committed until a budget or a stop."""

    def __init__(self, *, run_id: str, store: Store, mutator: Mutator, evaluator: Evaluator,
                 archive_config: ArchiveConfig, loop_config: LoopConfig, seed_sources: Sequence[str] = (),
                 selector: ParentSelector | None = None, operators: OperatorMix | None = None,
                 on_batch: Callable[[MetricsRecord], None] | None = None) -> None:  # fmt: skip
        self.run_id, self.store, self.mutator, self.evaluator = run_id, store, mutator, evaluator
        self.config, self.archive_config = loop_config, archive_config
        self.seed_sources = list(seed_sources)
        self.selector = selector or UniformSelector()
        self.planner = OperatorPlanner(operators or OperatorMix(), self.selector)
        self.on_batch = on_batch or (lambda metrics: None)
        self.archive = make_archive(archive_config)
        self.stats = LoopStats()
        self._stop_as: RunStatus | None = None
        self._stop = threading.Event()
        self._barren = 0  # batches in a row without a single child program
        self._seeds_lock = threading.Lock()
        self._pending_seeds: list[tuple[str, Future[None]]] = []  # added while running, not yet committed
        self._accepting_seeds = False
        run = store.get_run(run_id)
        self._seed, self._next_batch, self._evaluations = run.rng_seed, run.batches, run.evaluations
        self._mutations = sum(store.mutation_outcome_counts(run_id).values())
        self._builder = BatchBuilder(run_id, self.archive, archive_config.fitness_offset, store)

    def request_stop(self, status: RunStatus = RunStatus.STOPPED) -> None:
        """Stops after the batches in flight are committed; PAUSED runs are meant to be resumed."""
        self._stop_as = status
        self._stop.set()

    def add_seed(self, source: str) -> Future[None]:
        """Queues a seed program into a running loop: it is evaluated, inserted and committed as a batch of
        its own before the next batch starts. The future completes when that batch is committed."""
        done: Future[None] = Future()
        with self._seeds_lock:
            if not self._accepting_seeds:
                raise StateError("the run is not running: seeds can be added to a running run only")
            self._pending_seeds.append((source, done))
        return done

    def run(self) -> RunStatus:
        self.stats.started = time.perf_counter()
        self.store.set_status(self.run_id, RunStatus.RUNNING)
        try:
            self._builder.restore()
            if self._next_batch == 0:
                results = self.evaluator.evaluate(self.seed_sources)
                self._commit(self._builder.seed_batch(self.seed_sources, results))
                self._next_batch = 1
            if len(self.archive) == 0:
                raise StateError("no seed produced a walker that could enter the archive; nothing to mutate")
            with self._seeds_lock:
                self._accepting_seeds = True
            self._evolve()
        except BaseException:
            self.store.set_status(self.run_id, RunStatus.FAILED)
            raise
        finally:
            self._refuse_pending_seeds()
        status = self._stop_as or RunStatus.FINISHED
        self.store.set_status(self.run_id, status)
        return status

    def _evolve(self) -> None:
        in_flight: deque[_InFlight] = deque()
        with ThreadPoolExecutor(self.config.pipeline_depth, thread_name_prefix="elm-batch") as pool:
            while True:
                if self._pending_seeds:
                    while in_flight:  # batches commit in order: the seed batch takes the next number
                        self._finish(in_flight.popleft())
                    self._commit_added_seeds()
                while len(in_flight) < self.config.pipeline_depth and (size := self._next_size(in_flight)):
                    in_flight.append(self._start(pool, size))
                if not in_flight:
                    return
                self._finish(in_flight.popleft())

    def _commit_added_seeds(self) -> None:
        with self._seeds_lock:
            pending, self._pending_seeds = self._pending_seeds, []
        sources = [source for source, _ in pending]
        batch, self._next_batch = self._next_batch, self._next_batch + 1
        self._commit(self._builder.seed_batch(sources, self.evaluator.evaluate(sources), batch))
        for _, done in pending:
            done.set_result(None)

    def _refuse_pending_seeds(self) -> None:
        with self._seeds_lock:
            self._accepting_seeds = False
            pending, self._pending_seeds = self._pending_seeds, []
        for _, done in pending:
            done.set_exception(StateError("the run stopped before this seed was evaluated"))

    def _next_size(self, in_flight: deque[_InFlight]) -> int:
        if self._stop.is_set() or self._out_of_time():
            return 0
        size, ahead = self.config.batch_size, self.config.batch_size * len(in_flight)
        if self.config.max_evaluations is not None:
            size = min(size, self.config.max_evaluations - self._evaluations - ahead)
        if self.config.max_mutations is not None:
            size = min(size, self.config.max_mutations - self._mutations - ahead)
        return max(0, size)

    def _out_of_time(self) -> bool:
        limit = self.config.max_seconds
        return limit is not None and time.perf_counter() - self.stats.started >= limit

    def _start(self, pool: ThreadPoolExecutor, size: int) -> _InFlight:
        started = time.perf_counter()
        batch, self._next_batch = self._next_batch, self._next_batch + 1
        rng = np.random.default_rng([self._seed, batch])
        planned = self.planner.plan(self.archive, size, rng)
        parents = self._builder.parents([p.parent for p in planned])
        requests = [
            ChildRequest(parent=parent.source, instruction=p.instruction, operator=p.operator,
                         others=tuple(self._builder.source(e.individual_id) for e in p.others))
            for parent, p in zip(parents, planned, strict=True)
        ]  # fmt: skip
        future = pool.submit(self._mutate_and_evaluate, requests, rng)
        self.stats.loop_s += time.perf_counter() - started
        return _InFlight(batch, parents, future)

    def _mutate_and_evaluate(
        self, requests: list[ChildRequest], rng: np.random.Generator
    ) -> tuple[list[Child], list[EvalResult]]:
        children = [self._builder.unless_seen(child) for child in self.mutator.mutate(requests, rng)]
        programs = [c.source for c in children if c.source is not None]
        return children, self.evaluator.evaluate(programs)

    def _finish(self, job: _InFlight) -> None:
        waited = time.perf_counter()
        children, results = job.future.result()
        started = time.perf_counter()
        self.stats.wait_s += started - waited
        self._commit(self._builder.child_batch(job.batch, job.parents, children, results))
        self.stats.loop_s += time.perf_counter() - started

    def _commit(self, batch: BatchRecord) -> None:
        self.store.commit_batch(batch)
        self._barren = 0 if batch.individuals else self._barren + 1
        if self._barren >= self.config.max_barren_batches:
            raise StateError(
                f"the {self.mutator.name} operator produced no new program in {self._barren} batches in a "
                "row (see the mutation log for its outcomes): is the model or prompt style right for this "
                "task?"
            )
        self._builder.committed(batch)
        self._evaluations += len(batch.individuals)
        self._mutations += len(batch.mutations)
        self.stats.batches += 1
        self.stats.evaluations += len(batch.individuals)
        self.on_batch(batch.metrics)
