"""The MAP-Elites archive: one elite per cell of the descriptor space, replaced only by a strictly fitter one.

`ArchiveBase` holds the cells in numpy arrays (occupancy, fitness, individual id, descriptors) and decides
insertion; subclasses only say which cell a descriptor vector falls in. `GridArchive` is the paper's regular
grid; `CVTArchive` (in _cvt.py) uses centroidal Voronoi cells. Nothing here does I/O or evaluation.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from elm_core.errors import ConfigError, StateError
from elm_core.qd._config import ArchiveConfig, ArchiveKind


@dataclass(frozen=True)
class Elite:
    """The occupant of one cell: the flat cell index, its fitness, its raw descriptors and who it is."""

    cell: int
    fitness: float
    descriptors: tuple[float, ...]
    individual_id: int


@dataclass(frozen=True)
class InsertResult:
    """What `try_insert` did. `previous` is the cell's occupant before the call (None if it was empty);
    `improvement` is the new fitness minus the previous one, only when an occupant was replaced."""

    inserted: bool
    cell: int
    previous: Elite | None
    improvement: float | None


class ArchiveBase(abc.ABC):
    """Storage and insertion shared by every archive; a subclass maps clipped descriptors to a cell."""

    kind: ArchiveKind

    def __init__(self, config: ArchiveConfig) -> None:
        if config.kind != self.kind:
            name, actual = type(self).__name__, str(config.kind)
            raise ConfigError(f"{name} needs ArchiveConfig.kind {self.kind.value!r}, got {actual!r}")
        self.config = config
        bounds = np.array(config.ranges, dtype=np.float64)
        self._lower, self._upper = bounds[:, 0], bounds[:, 1]
        cells = config.cells
        self._occupied = np.zeros(cells, dtype=bool)
        self._fitness = np.full(cells, np.nan)
        self._ids = np.full(cells, -1, dtype=np.int64)
        self._descriptors = np.full((cells, len(bounds)), np.nan)
        self._filled = 0

    @abc.abstractmethod
    def _cell_of_point(self, point: np.ndarray) -> int:
        """The cell of a finite descriptor vector already clipped into the ranges."""

    @abc.abstractmethod
    def cell_index(self, cell: int) -> tuple[int, ...]:
        """The cell's coordinates in the archive's own layout."""

    @abc.abstractmethod
    def fitness_grid(self) -> np.ndarray:
        """Fitness per cell in the archive's own layout, NaN where empty (for plots)."""

    @property
    def cells(self) -> int:
        """Total number of cells."""
        return len(self._occupied)

    def __len__(self) -> int:
        """Number of filled cells."""
        return self._filled

    def cell_of(self, descriptors: Sequence[float] | np.ndarray) -> int:
        """The flat cell of a descriptor vector; values outside the ranges land in the edge cells.

        Raises ValueError for the wrong number of descriptors or a NaN/infinite one.
        """
        return self._cell_of_point(self._clipped(self._point(descriptors)))

    def try_insert(
        self, individual_id: int, fitness: float, descriptors: Sequence[float] | np.ndarray
    ) -> InsertResult:
        """Insert if the cell is empty or `fitness` is strictly greater; non-finite fitness never inserts."""
        point = self._point(descriptors)
        cell = self._cell_of_point(self._clipped(point))
        previous = self.get(cell)
        fitness = float(fitness)
        if not math.isfinite(fitness) or (previous is not None and not fitness > previous.fitness):
            return InsertResult(inserted=False, cell=cell, previous=previous, improvement=None)
        self._put(cell, fitness, point, individual_id)
        improvement = None if previous is None else fitness - previous.fitness
        return InsertResult(inserted=True, cell=cell, previous=previous, improvement=improvement)

    def get(self, cell: int) -> Elite | None:
        """The elite in `cell`, or None if the cell is empty; IndexError for a cell outside the archive."""
        cell = self._checked_cell(cell)
        if not self._occupied[cell]:
            return None
        descriptors = tuple(float(v) for v in self._descriptors[cell])
        return Elite(cell, float(self._fitness[cell]), descriptors, int(self._ids[cell]))

    def elites(self) -> list[Elite]:
        """Every elite, ordered by cell."""
        return [self._elite(int(cell)) for cell in self.filled_cells()]

    def filled_cells(self) -> np.ndarray:
        """Flat indices of the filled cells, ascending."""
        return np.flatnonzero(self._occupied)

    def fitnesses(self) -> np.ndarray:
        """Fitness of each filled cell, in the order of `filled_cells()`."""
        return self._fitness[self._occupied]

    def clear(self) -> None:
        self._occupied[:] = False
        self._fitness[:] = np.nan
        self._ids[:] = -1
        self._descriptors[:] = np.nan
        self._filled = 0

    def restore(self, elites: Iterable[Elite]) -> None:
        """Rebuild from stored elites, trusting their cells; StateError, and no change, if they don't fit."""
        checked = self._restorable(list(elites))
        self.clear()
        for elite in checked:
            self._put(
                elite.cell,
                elite.fitness,
                np.asarray(elite.descriptors, dtype=np.float64),
                elite.individual_id,
            )

    def _elite(self, cell: int) -> Elite:
        elite = self.get(cell)
        if elite is None:
            raise StateError(f"cell {cell} is empty")
        return elite

    def _put(self, cell: int, fitness: float, point: np.ndarray, individual_id: int) -> None:
        self._filled += not self._occupied[cell]
        self._occupied[cell] = True
        self._fitness[cell] = fitness
        self._ids[cell] = individual_id
        self._descriptors[cell] = point

    def _point(self, descriptors: Sequence[float] | np.ndarray) -> np.ndarray:
        point = np.asarray(descriptors, dtype=np.float64)
        if point.shape != self._lower.shape:
            raise ValueError(f"expected {len(self._lower)} descriptors, got shape {point.shape}")
        if not np.all(np.isfinite(point)):
            raise ValueError(f"descriptors must be finite, got {point.tolist()}")
        return point

    def _clipped(self, point: np.ndarray) -> np.ndarray:
        return np.clip(point, self._lower, self._upper)

    def _checked_cell(self, cell: int) -> int:
        if not 0 <= cell < self.cells:
            raise IndexError(f"cell must be in [0, {self.cells}), got {cell}")
        return int(cell)

    def _restorable(self, elites: list[Elite]) -> list[Elite]:
        seen: set[int] = set()
        for elite in elites:
            problem = self._restore_problem(elite, seen)
            if problem:
                raise StateError(f"cannot restore {elite}: {problem}")
            seen.add(elite.cell)
        return elites

    def _restore_problem(self, elite: Elite, seen: set[int]) -> str:
        if not 0 <= elite.cell < self.cells:
            return f"cell outside [0, {self.cells}); was the run stored with another archive config?"
        if elite.cell in seen:
            return "a second elite for the same cell"
        if not math.isfinite(elite.fitness):
            return "non-finite fitness"
        if len(elite.descriptors) != len(self._lower) or not all(math.isfinite(v) for v in elite.descriptors):
            return f"expected {len(self._lower)} finite descriptors"
        return ""


class GridArchive(ArchiveBase):
    """A regular grid: `dims[i]` equal bins over `ranges[i]`; cells are numbered in C (row-major) order."""

    kind = ArchiveKind.GRID

    def __init__(self, config: ArchiveConfig) -> None:
        super().__init__(config)
        self.dims = config.dims
        self._bins = np.array(config.dims, dtype=np.int64)

    def _cell_of_point(self, point: np.ndarray) -> int:
        # The upper bound (and a point a rounding error below it) lands in the last bin, not one past it.
        scaled = (point - self._lower) * self._bins / (self._upper - self._lower)
        index = np.minimum(np.floor(scaled).astype(np.int64), self._bins - 1)
        return int(np.ravel_multi_index(tuple(index), self.dims))

    def cell_index(self, cell: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(self._checked_cell(cell), self.dims))

    def fitness_grid(self) -> np.ndarray:
        """Shape `dims`, NaN for empty cells."""
        return np.where(self._occupied, self._fitness, np.nan).reshape(self.dims)
