"""Turning one batch's children and evaluations into archive insertions and the records the store commits."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from elm_core.evaluation import EvalResult
from elm_core.mutation import AST_LOCK, Child, MutationOutcome
from elm_core.qd._archive import ArchiveBase, Elite
from elm_core.qd._metrics import archive_metrics
from elm_core.qd._ports import Store
from elm_core.sandbox import Outcome
from elm_core.sodarace import walker_digest
from elm_core.store import BatchRecord, EliteRecord, IndividualRecord, MetricsRecord, MutationRecord


def program_key(source: str) -> bytes:
    """Equal for two programs that differ only in comments, docstring-free layout and whitespace: the digest
    of the program's syntax tree as Python prints it back, or of its non-blank, comment-free lines when it
    does not parse."""
    try:
        with AST_LOCK:
            text = ast.unparse(ast.parse(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        lines = (line.split("#", 1)[0].strip() for line in source.splitlines())
        text = "\n".join(line for line in lines if line)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


# the answer gave a program (the duplicates too: they are known to be duplicates only once they are programs)
_APPLIED = (MutationOutcome.OK, MutationOutcome.DUPLICATE, MutationOutcome.DUPLICATE_WALKER)


@dataclass(frozen=True)
class Parent:
    individual_id: int
    source: str
    fitness: float


class BatchBuilder:
    """Owns the in-memory side of a run: the archive, the elites' sources, the next individual id."""

    def __init__(self, run_id: str, archive: ArchiveBase, fitness_offset: float, store: Store) -> None:
        self.run_id, self.archive, self.fitness_offset, self.store = run_id, archive, fitness_offset, store
        self._sources: dict[int, str] = {}  # elites only, so memory is bounded by the number of cells
        self._next_id = 0
        self._elapsed_before = 0.0  # wall time of earlier sessions of this run
        self._started = time.perf_counter()
        self._seen: set[bytes] = set()  # program_key of every program evaluated in this run
        self._seen_lock = threading.Lock()  # pipelined batches check their children at the same time
        self._walkers: dict[bytes, int] = {}  # Walker.digest() -> the first individual that built it

    def restore(self) -> None:
        """Rebuilds the archive and counters from what the store has committed."""
        elites = self.store.elites(self.run_id)
        self.archive.restore(Elite(e.cell, e.fitness, e.descriptors, e.individual_id) for e in elites)
        self._sources = {
            e.individual_id: self.store.individual(self.run_id, e.individual_id).source for e in elites
        }
        self._next_id = self.store.next_individual_id(self.run_id)
        history = self.store.metrics(self.run_id)
        self._elapsed_before = history[-1].elapsed_s if history else 0.0
        self._started = time.perf_counter()
        self._seen, self._walkers = set(), {}
        for record in self.store.iter_individuals(self.run_id):
            self._seen.add(program_key(record.source))
            if record.walker_json is not None:
                digest = walker_digest(json.loads(record.walker_json))
                self._walkers.setdefault(digest, record.individual_id)

    def source(self, individual_id: int) -> str:
        """An elite's program text."""
        return self._sources[individual_id]

    def unless_seen(self, child: Child) -> Child:
        """The child, or a DUPLICATE without a program when the same program (up to comments and layout)
        was already evaluated in this run, or by an earlier child of the batches in flight."""
        if child.source is None:
            return child
        key = program_key(child.source)
        with self._seen_lock:
            if key not in self._seen:
                self._seen.add(key)
                return child
        detail = "the same program (up to comments and layout) was already evaluated in this run"
        return dataclasses.replace(child, source=None, outcome=MutationOutcome.DUPLICATE, detail=detail)

    def parents(self, elites: Sequence[Elite]) -> list[Parent]:
        return [Parent(e.individual_id, self._sources[e.individual_id], e.fitness) for e in elites]

    def seed_batch(
        self, sources: Sequence[str], results: Sequence[EvalResult], batch: int = 0
    ) -> BatchRecord:
        individuals, elites = [], {}
        for source, result in zip(sources, results, strict=True):
            with self._seen_lock:
                self._seen.add(program_key(source))
            record, elite, _ = self._individual(batch, None, source, result)
            individuals.append(record)
            if elite is not None:
                elites[elite.cell] = elite
        return self._batch(batch, individuals, [], elites)

    def child_batch(self, batch: int, parents: Sequence[Parent], children: Sequence[Child],
                    results: Sequence[EvalResult]) -> BatchRecord:  # fmt: skip
        individuals, mutations, elites = [], [], {}
        outcomes = iter(results)
        for parent, child in zip(parents, children, strict=True):
            record = elite = result = None
            if child.source is not None:
                result = next(outcomes)
                record, elite, same_walker = self._individual(
                    batch, parent.individual_id, child.source, result
                )
                individuals.append(record)
                if elite is not None:
                    elites[elite.cell] = elite
                if same_walker:
                    outcome = MutationOutcome.DUPLICATE_WALKER
                    child = dataclasses.replace(child, outcome=outcome, detail=record.message)
            mutations.append(self._mutation(batch, parent, child, record, result, elite is not None))
        return self._batch(batch, individuals, mutations, elites)

    def committed(self, batch: BatchRecord) -> None:
        """After the store has the batch: keep the new elites' sources, forget the displaced ones."""
        sources = {record.individual_id: record.source for record in batch.individuals}
        for elite in batch.elites:
            self._sources[elite.individual_id] = sources[elite.individual_id]
        alive = {e.individual_id for e in self.archive.elites()}
        for individual_id in [i for i in self._sources if i not in alive]:
            del self._sources[individual_id]

    def _individual(self, batch: int, parent_id: int | None, source: str,
                    result: EvalResult) -> tuple[IndividualRecord, EliteRecord | None, bool]:  # fmt: skip
        """The individual's record, its elite record when it entered the archive, and whether its walker is
        one an earlier individual of the run built (such an individual never enters the archive)."""
        individual_id, self._next_id = self._next_id, self._next_id + 1
        descriptors = cell = elite = None
        if result.descriptors is not None:
            d = result.descriptors
            descriptors = (d.height, d.width, d.mass)
            cell = self.archive.cell_of(descriptors)
        message, first, walker = result.message, individual_id, None
        if result.walker is not None:
            walker_dict = result.walker.to_dict()
            walker = json.dumps(walker_dict)
            first = self._walkers.setdefault(walker_digest(walker_dict), individual_id)
            if first != individual_id:
                message = f"builds the same walker as individual {first}"
        if result.ok and result.fitness is not None and descriptors is not None and first == individual_id:
            inserted = self.archive.try_insert(individual_id, result.fitness, descriptors)
            if inserted.inserted:
                elite = EliteRecord(run_id=self.run_id, cell=inserted.cell, individual_id=individual_id,
                                    fitness=result.fitness, descriptors=descriptors)  # fmt: skip
        record = IndividualRecord(
            run_id=self.run_id, individual_id=individual_id, batch=batch, parent_id=parent_id, source=source,
            status=result.status, message=message, fitness=result.fitness, descriptors=descriptors,
            cell=cell, walker_json=walker, timings_json=json.dumps(result.timings), created_at=time.time(),
        )  # fmt: skip
        return record, elite, first != individual_id

    def _mutation(self, batch: int, parent: Parent, child: Child, record: IndividualRecord | None,
                  result: EvalResult | None, inserted: bool) -> MutationRecord:  # fmt: skip
        fitness = record.fitness if record is not None else None
        return MutationRecord(
            run_id=self.run_id, batch=batch, parent_id=parent.individual_id,
            child_id=record.individual_id if record is not None else None, operator=child.operator,
            style=child.style, message=child.message, raw_output=child.raw_output,
            mutation_outcome=child.outcome.value,
            applied=child.outcome in _APPLIED,
            ran=result is not None and result.execution is Outcome.OK, inserted=inserted,
            fitness_delta=None if fitness is None else fitness - parent.fitness,
            generated_tokens=child.generated_tokens,
        )  # fmt: skip

    def _batch(self, batch: int, individuals: list[IndividualRecord], mutations: list[MutationRecord],
               elites: dict[int, EliteRecord]) -> BatchRecord:  # fmt: skip
        stats = archive_metrics(self.archive, self.fitness_offset)
        n = max(len(mutations), 1)
        elapsed = self._elapsed_before + time.perf_counter() - self._started
        metrics = MetricsRecord(
            run_id=self.run_id, batch=batch, evaluations=self._next_id, filled=stats.filled,
            coverage=stats.coverage, qd_score=stats.qd_score, max_fitness=stats.max_fitness,
            applied_fraction=sum(m.applied for m in mutations) / n,
            ran_fraction=sum(m.ran for m in mutations) / n,
            inserted_fraction=sum(m.inserted for m in mutations) / n, elapsed_s=elapsed,
            evaluations_per_s=self._next_id / max(elapsed, 1e-9), created_at=time.time(),
        )  # fmt: skip
        return BatchRecord(run_id=self.run_id, batch=batch, individuals=tuple(individuals),
                           mutations=tuple(mutations), elites=tuple(elites.values()), metrics=metrics,
                           rng_state_json=json.dumps({"next_batch": batch + 1}))  # fmt: skip
