"""Which request each child of a batch gets: the archive-aware operators of the LLM and their mix.

- `paper`: a parent and a commit message from the paper's table ("Changed make_walker function.").
- `directed`: a parent and a concrete instruction towards a neighbouring cell that is empty or holds a weaker
  walker ("Make the walker about 3 m taller and 2 m narrower."): the archive says where the gaps are.
- `crossover`: two or three elites of different cells in one prompt, asking for a walker that combines them
  (LMX-style); the first is the parent the child is logged against.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from elm_core.errors import ConfigError
from elm_core.mutation import PAPER
from elm_core.qd._archive import ArchiveBase, Elite
from elm_core.qd._config import DESCRIPTOR_NAMES
from elm_core.qd._selectors import ParentSelector

DIRECTED = "directed"
CROSSOVER = "crossover"
MIX_OPERATORS = (DIRECTED, CROSSOVER, PAPER)
MOVES = ("axis", "any")  # directed targets: along one descriptor at a time, or any neighbouring cell

CROSSOVER_INSTRUCTION = (
    "Write a new walker that combines the best ideas of these programs, for example the body of one with "
    "the muscles of another."
)


@dataclass(frozen=True, kw_only=True)
class OperatorMix:
    """The share of each operator in a batch (weights, normalised), and how far directed targets reach."""

    # Directed requests alone filled the most cells per LLM call from Square (docs/benchmarks.md, "Quality-
    # diversity per LLM call"): 6.0 cells in 32 calls against 4.7 for a 0.5/0.25/0.25 mix and 1.7 for paper.
    directed: float = 1.0
    crossover: float = 0.0
    paper: float = 0.0
    reach: int = 2  # directed targets lie up to this many cells away in each descriptor
    # "axis": a target differs from the parent's cell in one descriptor, so the instruction asks for one
    # change (a 0.5B model follows that far better: docs/benchmarks.md); "any": in any of them at once.
    moves: str = "axis"
    crossover_programs: tuple[int, ...] = (2, 3)  # how many elites a crossover prompt shows, drawn uniformly

    def __post_init__(self) -> None:
        weights = self.weights
        if any(not isinstance(w, int | float) or not math.isfinite(w) or w < 0 for w in weights) or not sum(
            weights
        ):
            raise ConfigError(f"[operators] weights must be numbers >= 0, not all 0; got {weights}")
        if not isinstance(self.reach, int) or self.reach < 1:
            raise ConfigError(f"[operators] reach must be an int >= 1, got {self.reach!r}")
        if self.moves not in MOVES:
            raise ConfigError(f"[operators] moves must be one of {MOVES}, got {self.moves!r}")
        programs = tuple(self.crossover_programs)
        if not programs or any(not isinstance(k, int) or k < 2 for k in programs):
            raise ConfigError(f"[operators] crossover_programs must be ints >= 2, got {programs!r}")
        object.__setattr__(self, "crossover_programs", programs)

    @property
    def weights(self) -> tuple[float, float, float]:
        """In the order of MIX_OPERATORS."""
        return (self.directed, self.crossover, self.paper)

    @classmethod
    def only(cls, operator: str) -> OperatorMix:
        if operator not in MIX_OPERATORS:
            raise ConfigError(f"operator must be one of {MIX_OPERATORS}, got {operator!r}")
        directed, crossover, paper = (float(name == operator) for name in MIX_OPERATORS)
        return cls(directed=directed, crossover=crossover, paper=paper)


@dataclass(frozen=True)
class Planned:
    """One child to ask for: its parent elite (the one the child is logged against) and the request."""

    parent: Elite
    others: tuple[Elite, ...]
    operator: str
    instruction: str


class OperatorPlanner:
    """Draws an operator per child from the mix, then the elites and instruction that operator needs."""

    def __init__(self, mix: OperatorMix, selector: ParentSelector) -> None:
        self.mix, self.selector = mix, selector
        weights = np.array(mix.weights, dtype=np.float64)
        self._p = weights / weights.sum()

    def plan(self, archive: ArchiveBase, n: int, rng: np.random.Generator) -> list[Planned]:
        operators = [MIX_OPERATORS[i] for i in rng.choice(len(MIX_OPERATORS), size=n, p=self._p)]
        parents = self.selector.select(archive, n, rng)
        return [self._one(archive, op, parent, rng) for op, parent in zip(operators, parents, strict=True)]

    def _one(self, archive: ArchiveBase, operator: str, parent: Elite, rng: np.random.Generator) -> Planned:
        if operator == CROSSOVER and len(archive) >= 2:
            k = min(int(rng.choice(self.mix.crossover_programs)), len(archive))
            cells = archive.filled_cells()
            others = [c for c in cells[rng.permutation(len(cells))] if c != parent.cell][: k - 1]
            chosen = tuple(archive.get(int(c)) for c in others)
            return Planned(
                parent, tuple(e for e in chosen if e is not None), CROSSOVER, CROSSOVER_INSTRUCTION
            )
        if operator == PAPER:
            return Planned(parent, (), PAPER, "")
        # a crossover on a one-cell map comes here too: it is directed
        gap = neighbour_gap(archive, parent, rng, self.mix.reach, axis=self.mix.moves == "axis")
        return Planned(parent, (), DIRECTED, directed_instruction(gap.tolist(), parent.descriptors))


def neighbour_gap(
    archive: ArchiveBase, parent: Elite, rng: np.random.Generator, reach: int, *, axis: bool = False
) -> np.ndarray:
    """The descriptor change from `parent` to a neighbouring cell, chosen at random among the neighbours
    (up to `reach` cells away per descriptor; with `axis`, along one descriptor only) that are empty or hold
    a weaker elite; among all of them when none is. Moves are whole cell widths, so the target is a cell the
    walker would really land in."""
    widths = cell_widths(archive)
    point = np.asarray(parent.descriptors, dtype=np.float64)
    lower, upper = np.array(archive.config.ranges).T
    steps = range(-reach, reach + 1)
    targets: dict[int, np.ndarray] = {}
    for offset in itertools.product(steps, repeat=len(widths)):
        if axis and np.count_nonzero(offset) != 1:
            continue
        target = np.clip(point + np.array(offset) * widths, lower, upper)
        cell = archive.cell_of(target)
        if cell != parent.cell:
            targets.setdefault(cell, target - point)
    if not targets:  # a one-cell archive: there is nowhere else to go
        return np.zeros(len(widths))
    open_cells = [c for c in targets if (e := archive.get(c)) is None or e.fitness < parent.fitness]
    cells = open_cells or list(targets)
    return targets[cells[int(rng.integers(len(cells)))]]


def cell_widths(archive: ArchiveBase) -> np.ndarray:
    """The extent of one cell along each descriptor: a grid's bin widths, or for CVT cells the side of a
    cube of a cell's share of the descriptor box."""
    lower, upper = np.array(archive.config.ranges).T
    dims = getattr(archive, "dims", None)
    if dims is not None:
        return (upper - lower) / np.array(dims)
    return (upper - lower) / archive.cells ** (1 / len(lower))


def directed_instruction(
    gap: Sequence[float], start: Sequence[float], names: Sequence[str] = DESCRIPTOR_NAMES
) -> str:
    """Words for moving a Sodarace walker whose descriptors are `start` by `gap`, in terms of the code that
    builds it: the span of the joints' y (height) and x (width) values from and to, in metres, and joints
    added or fewer for mass. Small models follow "from 10 to 13" far better than "3 m taller"."""
    change = dict(zip(names, (float(g) for g in gap), strict=True))
    now = dict(zip(names, (float(v) for v in start), strict=True))
    sentences = []
    for name, axis, more, less in (("height", "y", "taller", "shorter"), ("width", "x", "wider", "narrower")):
        metres = change.get(name, 0.0)
        if abs(metres) >= 0.25:
            before, after = now.get(name, 0.0), max(now.get(name, 0.0) + metres, 0.0)
            way = more if metres > 0 else less
            span = f"they span about {_metres(after)} instead of {_metres(before)}"
            sentences.append(
                f"Make the walker {way}: change the {axis} values given to add_joint so that {span}."
            )
    mass = change.get("mass", 0.0)
    # A joint weighs 1 and brings a few metres of spring (0.1 per metre): about 2 mass units in all.
    joints = max(1, round(abs(mass) / 2))
    if mass >= 1:
        joints = min(joints, 3)
        sentences.append(f"Make it heavier: add {_count(joints)} more joint{'s' if joints > 1 else ''} with "
                         "wc.add_joint, each connected to the others with wc.add_muscle.")  # fmt: skip
    elif mass <= -1:
        sentences.append("Make it lighter: use fewer joints (fewer wc.add_joint calls) and fewer muscles.")
    text = " ".join(sentences) or "Change the walker's shape."
    return f"{text} {ONLY_THE_API}"


ONLY_THE_API = "Use only wc.add_joint, wc.add_muscle and wc.get_walker: walker_creator has no other methods."


def _metres(value: float) -> str:
    return f"{value:.0f} m" if value >= 1.5 else f"{value:.1f} m"


def _count(n: int) -> str:
    return ("one", "two", "three", "four", "five")[n - 1] if n <= 5 else str(n)
