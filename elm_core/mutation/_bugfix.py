"""The paper's bug-fix benchmark (Figures 1-2): repair a 4-bit parity function that has 1 to 5 bugs.

Bugs 1-4 rename the inputs b1..b4 inside the sum to c1..c4, one more each time; bug 5 also turns `% 2` into
`% 3`. Each trial is one independent mutation of the buggy parent; a child solves the task when it passes the
unit tests on all 16 inputs. The tests run in the sandbox, like every program here: a harness appended after
the child defines `make_walker()`, which checks `parity` against values it computes itself, raises
AssertionError on a mismatch, and returns a minimal walker when every case passes, so solved means the
sandbox reports OK. The harness guards against honest mistakes (a child that defines its own `make_walker`
is overridden by it), not against a program written to fool it; hostile programs are the sandbox's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from elm_core.errors import ConfigError, InvalidRequestError, StateError
from elm_core.mutation._prompts import Task
from elm_core.mutation._types import Child, Mutator
from elm_core.sandbox import ExecutionResult, Outcome, SandboxPool, check_source

MAX_BUGS = 5
BUGFIX_MESSAGE = "Fixed bugs."  # the commit message the diff model is prompted with
BUGFIX_TASK = Task(
    file_name="parity.py",
    description="This Python function should return the parity of four bits (0 for even, 1 for odd) "
    "but has bugs.",
)

_PARITY = '''def parity(b1, b2, b3, b4):
    """Return binary parity of a sequence of input bits. Return 0 for even parity, 1 for odd parity."""
    bit_sum = sum([{inputs}])
    return bit_sum % {modulus}
'''
PARITY_PROGRAM = _PARITY.format(inputs="b1, b2, b3, b4", modulus=2)

# Approximate success rates per trial read from the paper's Figure 2, by bug count: the 300M-parameter diff
# model ("diff") and the tree-based GP baseline ("gp").
PAPER_SUCCESS_RATES: Mapping[str, Mapping[int, float]] = MappingProxyType(
    {
        "diff": MappingProxyType({1: 0.09, 2: 0.15, 3: 0.12, 4: 0.28, 5: 0.007}),
        "gp": MappingProxyType({1: 0.0045, 2: 0.00065, 3: 0.00015, 4: 0.00004, 5: 0.0}),
    }
)

# No imports and no triple quotes: an unterminated string in the child must stay a syntax error.
_HARNESS = """

def make_walker():
    for b1 in (0, 1):
        for b2 in (0, 1):
            for b3 in (0, 1):
                for b4 in (0, 1):
                    expected = (b1 + b2 + b3 + b4) % 2
                    got = parity(b1, b2, b3, b4)
                    if got != expected:
                        raise AssertionError(f"parity{(b1, b2, b3, b4)} is {got!r}, expected {expected}")
    wc = walker_creator()
    wc.add_muscle(wc.add_joint(0.0, 0.0), wc.add_joint(1.0, 0.0), False, 0.0, 0.0)
    return wc.get_walker()
"""
_NOT_RUN = frozenset({Outcome.SYNTAX_ERROR, Outcome.SANDBOX_ERROR})


@dataclass(frozen=True)
class BugfixRow:
    """One bug count's results. `applied`: children the operator produced (outcome OK); `ran`: of those, the
    programs that executed (no SYNTAX_ERROR, no sandbox failure); `solved`: those that passed every test."""

    bugs: int
    trials: int
    applied: int
    ran: int
    solved: int

    @property
    def success_rate(self) -> float:
        return self.solved / self.trials if self.trials else 0.0


def buggy_parity(bugs: int) -> str:
    """The parity program with `bugs` (1-5) bugs, as the paper describes them."""
    if isinstance(bugs, bool) or not isinstance(bugs, int) or not 1 <= bugs <= MAX_BUGS:
        raise ConfigError(f"bugs must be an int in [1, {MAX_BUGS}], got {bugs!r}")
    inputs = ", ".join(f"c{i}" if i <= bugs else f"b{i}" for i in range(1, 5))
    return _PARITY.format(inputs=inputs, modulus=3 if bugs == MAX_BUGS else 2)


def with_harness(program: str) -> str:
    """The program followed by the unit-test harness, ready for the sandbox."""
    return program.rstrip("\n") + "\n" + _HARNESS


def run_bugfix(
    mutator: Mutator,
    *,
    bugs: Sequence[int],
    trials: int,
    pool: SandboxPool,
    rng: np.random.Generator,
    batch_size: int = 32,
) -> list[BugfixRow]:
    """`trials` single mutations of the buggy parent for each bug count, tested in `pool`'s sandboxes."""
    parents = [buggy_parity(count) for count in bugs]  # validates every count before any work
    for name, value in (("trials", trials), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
    return [
        _run_bug(mutator, count, parent, trials, pool, rng, batch_size)
        for count, parent in zip(bugs, parents, strict=True)
    ]


def _run_bug(
    mutator: Mutator, bugs: int, parent: str, trials: int, pool: SandboxPool, rng: np.random.Generator,
    batch_size: int,
) -> BugfixRow:  # fmt: skip
    applied = ran = solved = 0
    for start in range(0, trials, batch_size):
        children = _mutate(mutator, parent, min(batch_size, trials - start), rng)
        programs = [program for program in map(_program, children) if program is not None]
        results: list[ExecutionResult] = pool.map(_fits(programs, pool))
        applied += sum(child.ok for child in children)
        ran += sum(result.status not in _NOT_RUN for result in results)
        solved += sum(result.status is Outcome.OK for result in results)
    return BugfixRow(bugs=bugs, trials=trials, applied=applied, ran=ran, solved=solved)


def _mutate(mutator: Mutator, parent: str, n: int, rng: np.random.Generator) -> list[Child]:
    children = mutator.mutate([parent] * n, rng)
    if len(children) != n:
        raise StateError(f"mutator {mutator.name!r} returned {len(children)} children for {n} parents")
    return children


def _program(child: Child) -> str | None:
    return with_harness(child.source) if child.ok and child.source is not None else None


def _fits(programs: list[str], pool: SandboxPool) -> list[str]:
    """The programs the sandbox accepts as requests; one too large or not valid text did not run."""
    accepted = []
    for program in programs:
        try:
            accepted.append(check_source(program, pool.config))
        except InvalidRequestError:
            continue
    return accepted
