"""Archive metrics on hand-built archives whose numbers are known."""

from __future__ import annotations

import math

import pytest

from elm_core.qd._archive import ArchiveBase, GridArchive
from elm_core.qd._config import ArchiveConfig
from elm_core.qd._cvt import CVTArchive
from elm_core.qd._metrics import ArchiveMetrics, archive_metrics

SQUARE = ((0.0, 2.0), (0.0, 2.0))


def two_by_two(fitness_offset: float = 10.0) -> GridArchive:
    """Cells 0..3 at (0.5, 0.5), (0.5, 1.5), (1.5, 0.5), (1.5, 1.5)."""
    return GridArchive(ArchiveConfig(dims=(2, 2), ranges=SQUARE, fitness_offset=fitness_offset))


def test_an_empty_archive_has_no_fitness() -> None:
    metrics = archive_metrics(two_by_two())
    assert metrics == ArchiveMetrics(
        filled=0, cells=4, coverage=0.0, qd_score=0.0, max_fitness=None, mean_fitness=None
    )


def test_metrics_of_a_hand_built_archive() -> None:
    archive = two_by_two()
    archive.try_insert(1, 5.0, (0.5, 0.5))
    archive.try_insert(2, -3.0, (0.5, 1.5))
    archive.try_insert(3, -12.0, (1.5, 0.5))  # below -offset: filled, but adds nothing to the QD score
    metrics = archive_metrics(archive, 10.0)
    assert metrics.filled == 3
    assert metrics.cells == 4
    assert metrics.coverage == 0.75
    assert metrics.qd_score == pytest.approx(15.0 + 7.0 + 0.0)
    assert metrics.max_fitness == 5.0
    assert metrics.mean_fitness == pytest.approx(-10.0 / 3)


def test_the_offset_defaults_to_the_configs_and_can_be_overridden() -> None:
    archive = two_by_two(fitness_offset=1.0)
    archive.try_insert(1, 2.0, (0.5, 0.5))
    archive.try_insert(2, -0.5, (1.5, 1.5))
    assert archive_metrics(archive).qd_score == pytest.approx(3.0 + 0.5)
    assert archive_metrics(archive, 0.0).qd_score == pytest.approx(2.0)
    assert archive_metrics(archive, 4.0).qd_score == pytest.approx(6.0 + 3.5)
    with pytest.raises(ValueError, match="fitness_offset"):
        archive_metrics(archive, math.nan)


def test_replacing_an_elite_moves_the_score_by_the_improvement() -> None:
    archive = two_by_two()
    archive.try_insert(1, 1.0, (0.5, 0.5))
    before = archive_metrics(archive)
    result = archive.try_insert(2, 4.0, (0.6, 0.6))
    after = archive_metrics(archive)
    assert result.improvement == 3.0
    assert after.qd_score - before.qd_score == pytest.approx(3.0)
    assert (after.filled, after.max_fitness) == (1, 4.0)


@pytest.mark.parametrize("kind", ["grid", "cvt"])
def test_metrics_count_cells_of_either_kind(kind: str) -> None:
    config = ArchiveConfig(kind=kind, dims=(5, 5), ranges=SQUARE, cvt_cells=25, cvt_samples=1_000)
    archive: ArchiveBase = GridArchive(config) if kind == "grid" else CVTArchive(config)
    archive.try_insert(1, 0.0, (0.1, 0.1))
    archive.try_insert(2, 0.0, (1.9, 1.9))
    metrics = archive_metrics(archive)
    assert (metrics.filled, metrics.cells, metrics.coverage) == (2, 25, 0.08)
    assert metrics.qd_score == pytest.approx(20.0)
