"""The GP baseline operator: each edit kind, determinism, robustness on any text, and children that run."""

from __future__ import annotations

import ast

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elm_core.errors import ConfigError
from elm_core.mutation import Child, MutationOutcome, Mutator
from elm_core.mutation._gp import EDIT_KINDS, GPMutator
from elm_core.sandbox import Sandbox, SandboxConfig
from elm_core.sodarace import SEED_NAMES, seed_source

SQUARE = seed_source("square")
# Lines to build random programs from: the seeds' and a few more, so every edit kind has something to change.
EXTRA = ["x = a if b else c", "while x < 3:", "x += 1", "match x:", "case 1 + 2j:", "pass", "global y",
         "f = lambda q: q ** 2", "class C:", "try:", "except E as e:", "import math as m", "from a import *",
         "del x", "assert x is not None", "y = [i for i in range(3) if i in x]", "return not x or y",
         "def g(*a, k=1, **kw):", "nonlocal z", "y = x >> 2 & 3", "z = 10 ** 40 + 1e999"]  # fmt: skip
LINES = sorted({line.strip() for name in SEED_NAMES for line in seed_source(name).splitlines()}) + EXTRA


def program(lines: list[tuple[str, int]]) -> str:
    """Lines indented one level after each `:` line and `dedent` levels back before each line."""
    out, depth = [], 0
    for text, dedent in lines:
        depth = max(depth - dedent, 0)
        out.append("    " * depth + text)
        depth += text.endswith(":")
    return "\n".join(out) + "\n"


PROGRAMS = st.lists(st.tuples(st.sampled_from(LINES), st.integers(0, 2)), max_size=14).map(program)


def one_kind(kind: str, **kwargs: int) -> GPMutator:
    return GPMutator(edit_weights={kind: 1.0}, **kwargs)


def children(mutator: Mutator, parent: str, n: int, seed: int = 0) -> list[Child]:
    return mutator.mutate([parent] * n, np.random.default_rng(seed))


def assert_well_formed(parent: str, child: Child) -> None:
    assert child.parent == parent and child.operator == "gp"
    assert (child.source is not None) == child.ok
    if child.ok:
        assert child.source is not None
        ast.parse(child.source)


@pytest.mark.parametrize("seed", SEED_NAMES)
@pytest.mark.parametrize("kind", EDIT_KINDS)
def test_each_edit_kind_on_each_seed_makes_programs_that_parse(kind: str, seed: str) -> None:
    parent = seed_source(seed)
    made = children(one_kind(kind), parent, 20)
    for child in made:
        assert_well_formed(parent, child)
    if kind == "operator" and seed == "cppn_fixed":  # a single call: no operator to swap
        assert {c.outcome for c in made} == {MutationOutcome.UNCHANGED}
        assert "nothing" in made[0].detail
    else:
        assert all(c.ok and c.style == kind and c.raw_output.startswith(kind) for c in made)
        assert len({c.source for c in made}) > 1


def test_constants_move_and_ints_stay_ints() -> None:
    parent = "def make_walker():\n    return f(3, 2.5)\n"
    made = children(one_kind("constant"), parent, 50)
    assert sum(c.ok for c in made) > 40  # a float can round back to itself: UNCHANGED
    for child in made:
        if child.source is None:
            assert child.outcome is MutationOutcome.UNCHANGED
            continue
        call = ast.parse(child.source).body[0].body[0].value  # type: ignore[attr-defined]
        values = [ast.literal_eval(arg) for arg in call.args]
        assert (type(values[0]), type(values[1])) == (int, float)
        assert values != [3, 2.5]


def test_operators_are_swapped_within_their_family() -> None:
    parent = "def make_walker():\n    return (a + b, a < b, a and b)\n"
    families = [{"+", "-", "*", "/", "//", "%", "**"}, {"==", "!=", "<", "<=", ">", ">="}, {"and", "or"}]
    seen = set()
    for child in children(one_kind("operator"), parent, 60):
        assert child.ok and child.source is not None
        old, new = child.raw_output.split(" at ")[0].removeprefix("operator ").split(" -> ")
        assert old != new and any({old, new} <= family for family in families)
        seen.add(old)
    assert seen == {"+", "<", "and"}


def test_delete_keeps_the_entry_point_its_return_and_every_body_non_empty() -> None:
    parent = "def helper():\n    return 1\n\ndef make_walker():\n    x = helper()\n    y = 2\n    return x\n"
    made = {c.source for c in children(one_kind("delete"), parent, 40)}
    assert made == {
        "def make_walker():\n    x = helper()\n    y = 2\n    return x\n",
        "def helper():\n    return 1\n\ndef make_walker():\n    y = 2\n    return x\n",
        "def helper():\n    return 1\n\ndef make_walker():\n    x = helper()\n    return x\n",
    }


def test_duplicate_adds_one_statement() -> None:
    parent = "def make_walker():\n    x = 1\n    return x\n"
    for child in children(one_kind("duplicate"), parent, 10):
        assert child.ok and child.source is not None
        module = ast.parse(child.source)
        assert len(module.body) + len(module.body[0].body) == 4  # type: ignore[attr-defined]


def test_rename_picks_a_name_bound_in_scope() -> None:
    parent = "def f(a, b):\n    return a\n"
    made = {c.source for c in children(one_kind("rename"), parent, 30)}
    assert made == {"def f(a, b):\n    return b\n", "def f(a, b):\n    return f\n"}


def test_several_edits_per_child_are_all_reported() -> None:
    for child in children(GPMutator(edits_per_child=3), SQUARE, 10):
        assert child.ok and len(child.style.split("+")) == 3 and child.raw_output.count("; ") == 2


def test_same_generator_seed_same_children() -> None:
    first, again, other = (children(GPMutator(edits_per_child=2), SQUARE, 30, seed) for seed in (7, 7, 8))
    assert first == again
    assert first != other


@pytest.mark.parametrize("parent", ["def make_walker(:\n", "x = 'unterminated\n", "a\x00b", "(" * 300])
def test_a_parent_that_does_not_parse_is_a_typed_outcome(parent: str) -> None:
    (child,) = children(GPMutator(), parent, 1)
    assert child.outcome is MutationOutcome.NO_DIFF and child.source is None
    assert "syntax error" in child.detail


def test_a_parent_with_nothing_to_edit_is_unchanged() -> None:
    (child,) = children(GPMutator(), "", 1)
    assert child.outcome is MutationOutcome.UNCHANGED and child.source is None


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"edits_per_child": 0}, "edits_per_child"),
        ({"edits_per_child": True}, "edits_per_child"),
        ({"edits_per_child": 1.5}, "edits_per_child"),
        ({"edit_weights": {"swap": 1.0}}, "edit_weights"),
        ({"edit_weights": {"rename": -1.0}}, "edit_weights"),
        ({"edit_weights": {"rename": 0.0}}, "edit_weights"),
        ({"edit_weights": {"rename": float("nan")}}, "edit_weights"),
    ],
)
def test_bad_configuration_is_rejected_eagerly(kwargs: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        GPMutator(**kwargs)


def test_children_of_the_square_seed_mostly_run() -> None:
    made = children(GPMutator(), SQUARE, 80, seed=1)
    assert all(c.ok for c in made)
    with Sandbox(SandboxConfig(wall_time_s=1.0)) as sandbox:
        results = [sandbox.run(c.source) for c in made if c.source is not None]
    assert sum(r.ok for r in results) / len(results) > 0.3


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(st.text(max_size=200), PROGRAMS),
    st.integers(1, 4),
    st.integers(0, 2**32),
)
def test_any_text_gives_children_and_never_raises(parent: str, edits: int, seed: int) -> None:
    for child in children(GPMutator(edits_per_child=edits), parent, 2, seed):
        assert_well_formed(parent, child)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(SEED_NAMES), st.integers(1, 6), st.integers(0, 2**32))
def test_seeds_under_many_edits_always_parse(seed: str, edits: int, rng_seed: int) -> None:
    parent = seed_source(seed)
    for child in children(GPMutator(edits_per_child=edits), parent, 3, rng_seed):
        assert_well_formed(parent, child)
