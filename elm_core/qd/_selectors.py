"""Parent selection: which elites the next batch mutates. Selectors are stateless; the caller owns the rng."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from elm_core.errors import ConfigError, StateError
from elm_core.qd._archive import ArchiveBase, Elite


class ParentSelector(Protocol):
    """Picks `n` parents (with replacement) from a non-empty archive; StateError when it is empty."""

    def select(self, archive: ArchiveBase, n: int, rng: np.random.Generator) -> list[Elite]: ...


@dataclass(frozen=True)
class UniformSelector:
    """Every filled cell is equally likely, whatever its fitness: the paper's MAP-Elites default."""

    def select(self, archive: ArchiveBase, n: int, rng: np.random.Generator) -> list[Elite]:
        cells = _filled_cells(archive, n)
        return _elites(archive, cells[rng.integers(len(cells), size=n)])


@dataclass(frozen=True, kw_only=True)
class TournamentSelector:
    """Each parent is the fittest of `size` filled cells drawn uniformly (ties go to the first drawn).

    Size 1 is uniform selection; larger sizes push harder towards the archive's best walkers.
    """

    size: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 1:
            raise ConfigError(f"TournamentSelector.size must be an int >= 1, got {self.size!r}")

    def select(self, archive: ArchiveBase, n: int, rng: np.random.Generator) -> list[Elite]:
        cells = _filled_cells(archive, n)
        entrants = rng.integers(len(cells), size=(n, self.size))
        winners = np.argmax(archive.fitnesses()[entrants], axis=1)
        return _elites(archive, cells[entrants[np.arange(n), winners]])


def _filled_cells(archive: ArchiveBase, n: int) -> np.ndarray:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if len(archive) == 0:
        raise StateError("cannot select parents from an empty archive")
    return archive.filled_cells()


def _elites(archive: ArchiveBase, cells: np.ndarray) -> list[Elite]:
    chosen = [archive.get(int(cell)) for cell in cells]
    if any(elite is None for elite in chosen):
        raise StateError("a filled cell was emptied during selection")
    return [elite for elite in chosen if elite is not None]
