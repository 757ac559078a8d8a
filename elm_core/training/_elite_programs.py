"""Stage 2's data: every program ELM ever admitted to a map, kept if it is nearly the best of its cell.

A program was admitted when it entered its run's archive: a child whose mutation the log marks inserted, or a
seed that took its cell when it was evaluated (found by replaying the run's insertions in order, as the loop
made them). Cells are compared across runs by descriptors, through the first run's archive config; runs
with another config are refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from elm_core.errors import ConfigError
from elm_core.qd import ArchiveConfig, make_archive
from elm_core.sandbox import Outcome
from elm_core.spec import run_spec
from elm_core.store import IndividualRecord, SQLiteStore

StoreRun = tuple[SQLiteStore, str]  # a store and the id of a run in it


@dataclass(frozen=True, kw_only=True)
class EliteProgram:
    """A program that entered a map and is within the threshold of its cell's best across the runs."""

    source: str
    run_id: str
    individual_id: int
    fitness: float
    cell: int  # in the first run's archive
    cell_best: float  # the best fitness any admitted program reached in this cell, across the runs


def elite_programs(stores_and_runs: Sequence[StoreRun], threshold: float) -> list[EliteProgram]:
    """The admitted programs of the given runs whose fitness is at least `threshold` of their cell's best
    (0.5 and 0.8 in the paper), each source once (its fittest copy), in run then id order.

    For a cell whose best is negative (walkers that went backwards) "threshold of the best" is read as
    "within (1 - threshold) of its size": the bar is best - (1 - threshold) * |best|, which is
    threshold * best whenever the best is positive."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise ConfigError(f"threshold must be a number in [0, 1], got {threshold!r}")
    if not stores_and_runs:
        raise ConfigError("give at least one run to take programs from")
    config = shared_archive_config(stores_and_runs)
    admitted = [entry for store, run_id in stores_and_runs for entry in _admitted(store, run_id, config)]
    best: dict[int, float] = {}
    for _, fitness, cell in admitted:
        best[cell] = max(best.get(cell, -math.inf), fitness)
    kept: dict[str, EliteProgram] = {}
    for record, fitness, cell in admitted:
        below = fitness < best[cell] - (1 - threshold) * abs(best[cell])
        if below or (record.source in kept and kept[record.source].fitness >= fitness):
            continue
        kept[record.source] = EliteProgram(source=record.source, run_id=record.run_id,
                                           individual_id=record.individual_id, fitness=fitness, cell=cell,
                                           cell_best=best[cell])  # fmt: skip
    order = {run_id: k for k, (_, run_id) in enumerate(stores_and_runs)}
    return sorted(kept.values(), key=lambda p: (order[p.run_id], p.individual_id))


def shared_archive_config(stores_and_runs: Sequence[StoreRun]) -> ArchiveConfig:
    """The runs' one archive config; a ConfigError names a run whose config differs from the first's."""
    configs = [(run_id, run_spec(store, run_id).archive) for store, run_id in stores_and_runs]
    first_run, first = configs[0]
    for run_id, config in configs[1:]:
        if config != first:
            raise ConfigError(f"run {run_id!r} has another archive config than run {first_run!r}: "
                              f"{config} != {first}; their cells cannot be compared")  # fmt: skip
    return first


def _admitted(
    store: SQLiteStore, run_id: str, config: ArchiveConfig
) -> Iterator[tuple[IndividualRecord, float, int]]:
    """The run's individuals that entered its archive, with their fitness and cell, in id order (the order
    the loop inserted them in)."""
    inserted_children = {m.child_id for m in store.iter_mutations(run_id) if m.inserted}
    replay = make_archive(config)
    for record in store.iter_individuals(run_id):
        if record.fitness is None or record.descriptors is None or record.status != Outcome.OK.value:
            continue
        insertion = replay.try_insert(record.individual_id, record.fitness, record.descriptors)
        if record.individual_id in inserted_children or (record.parent_id is None and insertion.inserted):
            yield record, record.fitness, insertion.cell
