"""MAP-Elites: archives (grid, CVT), parent selectors, metrics, and the loop that drives a run.

The loop (`MapElites`) consumes three ports — a `Mutator`, an `Evaluator` and a `Store` — so the embedded run
and the coordinator service drive the very same loop with different adapters.
"""

from elm_core.qd._archive import ArchiveBase, Elite, GridArchive, InsertResult
from elm_core.qd._config import DEFAULT_RANGES, DESCRIPTOR_NAMES, ArchiveConfig, ArchiveKind
from elm_core.qd._cvt import CVTArchive
from elm_core.qd._loop import LoopConfig, LoopStats, MapElites, make_archive
from elm_core.qd._metrics import ArchiveMetrics, archive_metrics
from elm_core.qd._operators import (
    CROSSOVER,
    DIRECTED,
    MIX_OPERATORS,
    ONLY_THE_API,
    OperatorMix,
    OperatorPlanner,
    directed_instruction,
    neighbour_gap,
)
from elm_core.qd._ports import Evaluator, Store
from elm_core.qd._selectors import ParentSelector, TournamentSelector, UniformSelector

__all__ = [
    "CROSSOVER",
    "DIRECTED",
    "MIX_OPERATORS",
    "ONLY_THE_API",
    "OperatorMix",
    "OperatorPlanner",
    "directed_instruction",
    "neighbour_gap",
    "DEFAULT_RANGES",
    "DESCRIPTOR_NAMES",
    "ArchiveBase",
    "ArchiveConfig",
    "ArchiveKind",
    "ArchiveMetrics",
    "CVTArchive",
    "Elite",
    "Evaluator",
    "GridArchive",
    "InsertResult",
    "LoopConfig",
    "LoopStats",
    "MapElites",
    "ParentSelector",
    "Store",
    "TournamentSelector",
    "UniformSelector",
    "archive_metrics",
    "make_archive",
]
