"""`ArchiveConfig`: the shape of the MAP-Elites archive, checked once when it is built."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

from elm_core.errors import ConfigError


class ArchiveKind(enum.StrEnum):
    GRID = "grid"  # a regular grid of `dims` bins over `ranges`
    CVT = "cvt"  # `cvt_cells` centroidal Voronoi cells over `ranges`


# Descriptor ranges for Sodarace walkers: (height, width, mass), as `describe` computes them from the walker's
# initial pose — height and width are the spreads of the joints' y and x in simulator length units (metres),
# mass is joints * joint_mass + spring_density * total spring length with the default SimConfig.
# WalkerLimits allow joints anywhere in ±100, i.e. up to 200 units tall or wide and masses in the thousands,
# but the seeds and their mutants live far lower. With the defaults (12 bins each) the four seeds measure
#     square        height 10.0, width 10.0, mass 11.8   -> bins (6, 6, 2)
#     radial        height 10.0, width 10.0, mass 16.1   -> bins (6, 6, 3)
#     cppn_fixed    height  3.0, width 10.5, mass 35.5   -> bins (1, 6, 7)
#     cppn_mutable  the same walker as cppn_fixed        -> bins (1, 6, 7)
# so every distinct seed starts in its own cell and each has room to grow and shrink in every descriptor.
# A 0-20 unit box fits walkers of up to a few dozen joints at the seeds' spacing; mass 0-60 (5 per bin) fits
# about 40 joints. Anything larger or smaller still enters the archive, in the edge cells.
DEFAULT_RANGES: tuple[tuple[float, float], ...] = ((0.0, 20.0), (0.0, 20.0), (0.0, 60.0))
DESCRIPTOR_NAMES = ("height", "width", "mass")  # the order of DEFAULT_RANGES and of stored descriptors
MAX_CELLS = 10_000_000  # beyond this the archive's arrays (and any plot of them) stop being practical


@dataclass(frozen=True, kw_only=True)
class ArchiveConfig:
    """The archive's kind, descriptor space and cells; `fitness_offset` is for the QD score.

    `ranges` gives one (low, high) per descriptor; values outside are clipped into the edge cells. `dims`
    (bins per descriptor) is used by the grid and must have one entry per range; the CVT archive uses
    `cvt_cells` centroids found by `cvt_iterations` Lloyd iterations over `cvt_samples` uniform samples
    drawn with `seed`, so the same config always yields the same cells.

    QD score = sum over filled cells of max(fitness + fitness_offset, 0). Sodarace fitness is the distance
    walked along x in metres and is negative for walkers that go backwards; the offset shifts it so that
    such walkers still add to the score (a cell that is filled is worth more than one that is not), while
    fitness below -fitness_offset counts 0. With 10.0, a walker that drifts back up to 10 m still counts;
    the seeds walk between about -1 and 25 m in the default 10 s.
    """

    kind: str = ArchiveKind.GRID
    dims: tuple[int, ...] = (12, 12, 12)
    ranges: tuple[tuple[float, float], ...] = DEFAULT_RANGES
    cvt_cells: int = 1728
    cvt_samples: int = 50_000
    cvt_iterations: int = 10
    seed: int = 0
    fitness_offset: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _kind(self.kind))
        object.__setattr__(self, "ranges", _ranges(self.ranges))
        object.__setattr__(self, "dims", _dims(self.dims, len(self.ranges), ArchiveKind(self.kind)))
        _check_int("cvt_cells", self.cvt_cells, 1)
        _check_int("cvt_samples", self.cvt_samples, self.cvt_cells, "cvt_cells")
        _check_int("cvt_iterations", self.cvt_iterations, 0)
        _check_int("seed", self.seed, 0)
        if self.cells > MAX_CELLS:
            raise ConfigError(f"ArchiveConfig: at most {MAX_CELLS} cells, got {self.cells} ({self.kind})")
        offset = self.fitness_offset
        if not _is_number(offset) or not math.isfinite(offset) or offset < 0:
            raise ConfigError(f"ArchiveConfig.fitness_offset must be a finite number >= 0, got {offset!r}")

    @property
    def cells(self) -> int:
        """Total number of cells: the product of `dims` for a grid, `cvt_cells` for CVT."""
        return math.prod(self.dims) if self.kind == ArchiveKind.GRID else self.cvt_cells


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value: Any, minimum: int, minimum_name: str = "") -> None:
    if not _is_int(value) or value < minimum:
        bound = f"{minimum_name} ({minimum})" if minimum_name else str(minimum)
        raise ConfigError(f"ArchiveConfig.{name} must be an int >= {bound}, got {value!r}")


def _kind(value: Any) -> ArchiveKind:
    try:
        return ArchiveKind(value)
    except ValueError as e:
        choices = ", ".join(repr(k.value) for k in ArchiveKind)
        raise ConfigError(f"ArchiveConfig.kind must be one of {choices}, got {value!r}") from e


def _ranges(value: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, tuple | list) or not value:
        raise ConfigError(f"ArchiveConfig.ranges must be a non-empty sequence of (low, high), got {value!r}")
    return tuple(_range(k, r) for k, r in enumerate(value))


def _range(k: int, value: Any) -> tuple[float, float]:
    ok = isinstance(value, tuple | list) and len(value) == 2 and all(_is_number(v) for v in value)
    if not ok or not all(math.isfinite(v) for v in value) or not value[0] < value[1]:
        raise ConfigError(
            f"ArchiveConfig.ranges[{k}] must be finite (low, high) with low < high, got {value!r}"
        )
    return float(value[0]), float(value[1])


def _dims(value: Any, descriptors: int, kind: ArchiveKind) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or not value or not all(_is_int(v) and v >= 1 for v in value):
        raise ConfigError(f"ArchiveConfig.dims must be a non-empty sequence of ints >= 1, got {value!r}")
    if kind == ArchiveKind.GRID and len(value) != descriptors:
        raise ConfigError(
            f"ArchiveConfig.dims must have one entry per range ({descriptors}), got {len(value)}: {value!r}"
        )
    return tuple(value)
