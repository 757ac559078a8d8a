"""`CVTArchive`: cells are the Voronoi regions of k-means centroids spread evenly over the descriptor ranges.

The centroids are computed in the unit cube (each descriptor scaled by its range, so every descriptor weighs
the same whatever its units) by Lloyd's algorithm over uniform samples, seeded by the config: the same config
gives the same cells on every run and every resume (with the same numpy build; restoring trusts the stored
cells either way). They depend only on (cells, samples, iterations, seed, number of descriptors), so they are
computed once per process for each such combination: about 2 s of CPU for the defaults.
"""

from __future__ import annotations

import functools

import numpy as np

from elm_core.qd._archive import ArchiveBase
from elm_core.qd._config import ArchiveConfig, ArchiveKind

_CHUNK_ELEMENTS = 1 << 22  # points x centroids per distance block: 32 MiB of float64


class CVTArchive(ArchiveBase):
    """`cvt_cells` cells; descriptors (clipped to the ranges) belong to the cell of the nearest centroid."""

    kind = ArchiveKind.CVT

    def __init__(self, config: ArchiveConfig) -> None:
        super().__init__(config)
        self._unit_centroids = unit_centroids(
            config.cvt_cells, config.cvt_samples, config.cvt_iterations, config.seed, len(config.ranges)
        )

    @property
    def centroids(self) -> np.ndarray:
        """The centroids in descriptor units, shape (cells, descriptors)."""
        return self._lower + self._unit_centroids * (self._upper - self._lower)

    def _cell_of_point(self, point: np.ndarray) -> int:
        unit = (point - self._lower) / (self._upper - self._lower)
        return int(nearest(unit[None, :], self._unit_centroids)[0])

    def cell_index(self, cell: int) -> tuple[int, ...]:
        return (self._checked_cell(cell),)

    def fitness_grid(self) -> np.ndarray:
        """CVT cells have no grid layout: one entry per cell, NaN for empty cells."""
        return np.where(self._occupied, self._fitness, np.nan)


def nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid for each point (up to rounding), computed in bounded-memory chunks."""
    chunk = max(1, _CHUNK_ELEMENTS // len(centroids))
    squared = np.einsum("ij,ij->i", centroids, centroids)
    out = np.empty(len(points), dtype=np.int64)
    for start in range(0, len(points), chunk):
        # |p - c|^2 = |p|^2 - 2 p.c + |c|^2, and |p|^2 is the same for every centroid of a point
        distances = points[start : start + chunk] @ centroids.T
        distances *= -2.0
        distances += squared
        out[start : start + chunk] = np.argmin(distances, axis=1)
    return out


@functools.lru_cache(maxsize=4)
def unit_centroids(cells: int, samples: int, iterations: int, seed: int, descriptors: int) -> np.ndarray:
    """k-means centroids of `samples` uniform points in the unit cube, read-only: (cells, descriptors)."""
    rng = np.random.default_rng(seed)
    points = rng.random((samples, descriptors))
    centroids = points[rng.choice(samples, size=cells, replace=False)].copy()
    for _ in range(iterations):
        centroids = _lloyd_step(points, centroids)
    centroids.setflags(write=False)
    return centroids


def _lloyd_step(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Move each centroid to the mean of the points nearest to it; one with no points stays where it is."""
    labels = nearest(points, centroids)
    counts = np.bincount(labels, minlength=len(centroids))
    sums = np.stack(
        [np.bincount(labels, weights=column, minlength=len(centroids)) for column in points.T], axis=1
    )
    moved = centroids.copy()
    has_points = counts > 0
    moved[has_points] = sums[has_points] / counts[has_points, None]
    return moved
