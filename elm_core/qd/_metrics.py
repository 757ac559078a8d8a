"""Archive metrics: coverage, QD score and fitness, as logged after every batch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from elm_core.qd._archive import ArchiveBase


@dataclass(frozen=True, kw_only=True)
class ArchiveMetrics:
    """A snapshot of an archive. `max_fitness` and `mean_fitness` are None while it is empty."""

    filled: int
    cells: int
    coverage: float  # filled / cells
    qd_score: float  # sum over filled cells of max(fitness + fitness_offset, 0)
    max_fitness: float | None
    mean_fitness: float | None


def archive_metrics(archive: ArchiveBase, fitness_offset: float | None = None) -> ArchiveMetrics:
    """Metrics of `archive`; `fitness_offset` defaults to the archive config's.

    The offset shifts fitness before summing so that walkers with negative fitness (those that walked
    backwards) still add to the QD score; a cell whose fitness is below -fitness_offset adds 0.
    """
    offset = archive.config.fitness_offset if fitness_offset is None else float(fitness_offset)
    if not math.isfinite(offset):
        raise ValueError(f"fitness_offset must be finite, got {fitness_offset!r}")
    fitness = archive.fitnesses()
    filled = len(fitness)
    return ArchiveMetrics(
        filled=filled,
        cells=archive.cells,
        coverage=filled / archive.cells,
        qd_score=float(np.maximum(fitness + offset, 0.0).sum()),
        max_fitness=float(fitness.max()) if filled else None,
        mean_fitness=float(fitness.mean()) if filled else None,
    )
