"""The parity bug-fix benchmark: the buggy programs, the sandboxed unit-test harness, and the counting."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from elm_core.errors import ConfigError, StateError
from elm_core.mutation import Child, MutationOutcome
from elm_core.mutation._bugfix import (
    PAPER_SUCCESS_RATES,
    PARITY_PROGRAM,
    BugfixRow,
    buggy_parity,
    run_bugfix,
    with_harness,
)
from elm_core.mutation._gp import GPMutator
from elm_core.sandbox import Outcome, SandboxConfig, SandboxPool


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(SandboxConfig(wall_time_s=2.0), workers=2) as pool:
        yield pool


class Returns:
    """A `Mutator` whose children are given programs (cycled); None gives a NO_DIFF child."""

    name = "fixed"

    def __init__(self, *programs: str | None) -> None:
        self.programs = programs
        self.batches: list[int] = []

    def mutate(self, parents: Sequence[str], rng: np.random.Generator) -> list[Child]:
        self.batches.append(len(parents))
        return [
            self._child(parent, self.programs[i % len(self.programs)]) for i, parent in enumerate(parents)
        ]

    def _child(self, parent: str, program: str | None) -> Child:
        outcome = MutationOutcome.NO_DIFF if program is None else MutationOutcome.OK
        return Child(parent=parent, source=program, outcome=outcome, operator=self.name, style="")


class Drops(Returns):
    def mutate(self, parents: Sequence[str], rng: np.random.Generator) -> list[Child]:
        return super().mutate(parents, rng)[1:]


def run(pool: SandboxPool, program: str) -> Outcome:
    (result,) = pool.map([with_harness(program)])
    return result.status


def test_the_correct_program_passes_the_harness(pool: SandboxPool) -> None:
    assert run(pool, PARITY_PROGRAM) is Outcome.OK


@pytest.mark.parametrize("bugs", [1, 2, 3, 4, 5])
def test_every_buggy_program_fails_it(pool: SandboxPool, bugs: int) -> None:
    assert run(pool, buggy_parity(bugs)) is Outcome.PROGRAM_ERROR


@pytest.mark.parametrize(
    "program",
    [
        PARITY_PROGRAM.replace("% 2", "% 2 if b1 + b2 + b3 < 3 else 0"),  # wrong on (1, 1, 1, 0) only
        buggy_parity(1) + "\ndef make_walker():\n    return {'joints': [[0, 0], [1, 0]], 'muscles': []}\n",
        PARITY_PROGRAM.replace("bit_sum % 2", "'odd' if bit_sum % 2 else 'even'"),
        PARITY_PROGRAM.replace("def parity", "def parity_of"),
        PARITY_PROGRAM + 'notes = """',  # an open string cannot swallow the harness: no triple quotes in it
    ],
)
def test_the_harness_catches_honest_mistakes(pool: SandboxPool, program: str) -> None:
    assert run(pool, program) is not Outcome.OK


def test_the_bugs_are_the_papers() -> None:
    sums = [line.strip() for k in range(1, 6) for line in buggy_parity(k).splitlines() if "sum(" in line]
    assert sums == [
        "bit_sum = sum([c1, b2, b3, b4])",
        "bit_sum = sum([c1, c2, b3, b4])",
        "bit_sum = sum([c1, c2, c3, b4])",
        "bit_sum = sum([c1, c2, c3, c4])",
        "bit_sum = sum([c1, c2, c3, c4])",
    ]
    assert [buggy_parity(k).endswith(f"return bit_sum % {2 if k < 5 else 3}\n") for k in range(1, 6)] == [
        True
    ] * 5
    assert buggy_parity(1).replace("c1", "b1") == PARITY_PROGRAM
    assert '"""Return binary parity of a sequence of input bits.' in PARITY_PROGRAM


@pytest.mark.parametrize("bugs", [0, 6, True, 1.0])
def test_bug_counts_outside_one_to_five_are_rejected(bugs: int) -> None:
    with pytest.raises(ConfigError, match="bugs"):
        buggy_parity(bugs)


def test_gp_rows_are_sane(pool: SandboxPool) -> None:
    rows = run_bugfix(
        GPMutator(), bugs=[1, 5], trials=40, pool=pool, rng=np.random.default_rng(0), batch_size=16
    )
    assert [(row.bugs, row.trials) for row in rows] == [(1, 40), (5, 40)]
    for row in rows:
        assert 0 <= row.solved <= row.ran <= row.applied <= row.trials
        assert row.success_rate == row.solved / 40


def test_a_mutator_that_returns_the_fix_always_solves(pool: SandboxPool) -> None:
    mutator = Returns(PARITY_PROGRAM)
    rows = run_bugfix(
        mutator, bugs=[1, 2, 3, 4, 5], trials=10, pool=pool, rng=np.random.default_rng(0), batch_size=4
    )
    assert rows == [BugfixRow(bugs=k, trials=10, applied=10, ran=10, solved=10) for k in range(1, 6)]
    assert mutator.batches == [4, 4, 2] * 5
    assert rows[0].success_rate == 1.0


def test_applied_ran_and_solved_count_different_things(pool: SandboxPool) -> None:
    mutator = Returns(PARITY_PROGRAM, None, "def parity(:\n", buggy_parity(2))
    (row,) = run_bugfix(mutator, bugs=[3], trials=8, pool=pool, rng=np.random.default_rng(0))
    assert row == BugfixRow(bugs=3, trials=8, applied=6, ran=4, solved=2)


@pytest.mark.parametrize(
    ("bugs", "trials", "batch_size", "named"),
    [([1, 9], 4, 4, "bugs"), ([1], 0, 4, "trials"), ([1], 4, 0, "batch_size"), ([1], 4, 2.0, "batch_size")],
)
def test_bad_arguments_are_rejected_before_any_work(
    pool: SandboxPool, bugs: list[int], trials: int, batch_size: int, named: str
) -> None:
    mutator = Returns(PARITY_PROGRAM)
    with pytest.raises(ConfigError, match=named):
        run_bugfix(
            mutator, bugs=bugs, trials=trials, pool=pool, rng=np.random.default_rng(0), batch_size=batch_size
        )
    assert mutator.batches == []


def test_a_mutator_that_breaks_the_protocol_is_a_state_error(pool: SandboxPool) -> None:
    with pytest.raises(StateError, match="children for"):
        run_bugfix(Drops(PARITY_PROGRAM), bugs=[1], trials=4, pool=pool, rng=np.random.default_rng(0))


def test_paper_rates_cover_both_operators_and_all_bug_counts() -> None:
    assert set(PAPER_SUCCESS_RATES) == {"diff", "gp"}
    for rates in PAPER_SUCCESS_RATES.values():
        assert sorted(rates) == [1, 2, 3, 4, 5] and all(0 <= rate < 1 for rate in rates.values())
    assert PAPER_SUCCESS_RATES["gp"][5] == 0.0
