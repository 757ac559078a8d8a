"""Lenient diff application: exact on well-formed diffs, tolerant of what models get wrong, never raising."""

from __future__ import annotations

import difflib

from hypothesis import given, settings
from hypothesis import strategies as st

from elm_core.mutation import MutationOutcome
from elm_core.mutation._diff import apply_diff, parse_hunks
from elm_core.sodarace import seed_source

SQUARE = seed_source("square")
LINES = st.lists(st.sampled_from(["a = 1", "b = 2", "", "    return a", "x", "def f():", "# c"]), max_size=14)


def unified(a: str, b: str, context: int = 3) -> str:
    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), "a.py", "b.py", n=context))


def text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


@settings(max_examples=300, deadline=None)
@given(LINES, LINES, st.integers(0, 3))
def test_a_difflib_diff_from_a_to_b_turns_a_into_b(a: list[str], b: list[str], context: int) -> None:
    result = apply_diff(text(a), unified(text(a), text(b), context))
    if a == b:
        assert result.outcome is MutationOutcome.NO_DIFF
    else:
        assert result.outcome is MutationOutcome.OK, result.detail
        assert result.text == text(b)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_junk_gives_a_typed_outcome_never_an_exception(original: str, junk: str) -> None:
    result = apply_diff(original, junk)
    assert isinstance(result.outcome, MutationOutcome)
    assert (result.text is not None) == (result.outcome is MutationOutcome.OK)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["@@ -1 +1 @@", "+x", "-a = 1", " b = 2", "", "junk", "--- a", "\\ No"]),
                max_size=12))  # fmt: skip
def test_diff_shaped_junk_never_raises(lines: list[str]) -> None:
    assert isinstance(apply_diff("a = 1\nb = 2\n", "\n".join(lines)).outcome, MutationOutcome)


def changed_square() -> str:
    return SQUARE.replace("(5.0, 10.0, 2.0)", "(6.0, 9.0, 2.5)").replace("add_joint(5, 5)", "add_joint(5, 6)")


def test_line_numbers_are_ignored() -> None:
    diff = unified(SQUARE, changed_square()).replace("@@ -", "@@ -9").replace("@@ -99", "@@ -3")
    assert apply_diff(SQUARE, diff).text == changed_square()


def test_headerless_hunks_prose_and_fences_are_tolerated() -> None:
    body = unified(SQUARE, changed_square()).split("\n", 2)[2]
    hunks = "\n".join("@@" if line.startswith("@@") else line for line in body.splitlines())
    messy = f"Sure! Here is the change:\n```diff\n{hunks}\n```\nThis makes it walk faster."
    assert apply_diff(SQUARE, messy).text == changed_square()


def test_whitespace_in_context_is_tolerated_and_indentation_follows_the_program() -> None:
    diff = (
        "@@ -1,3 +1,3 @@\n"
        "   # the edges of the square are passive  \n"  # one space too few, trailing blanks
        "-  for k in range(4):\n"
        "+  for k in range(3):\n"
    )
    result = apply_diff(SQUARE, diff)
    assert result.outcome is MutationOutcome.OK
    assert "    for k in range(3):\n" in result.text


def test_the_first_malformed_line_ends_the_hunk() -> None:
    diff = (
        "@@ -1 +1 @@\n-    centre = wc.add_joint(5, 5)\n+    centre = wc.add_joint(4, 4)\nNow we\n+garbage\n"
    )
    assert parse_hunks(diff)[0].after == ["    centre = wc.add_joint(4, 4)"]
    assert "garbage" not in apply_diff(SQUARE, diff).text


def test_several_hunks_must_all_apply() -> None:
    good = "@@\n-    centre = wc.add_joint(5, 5)\n+    centre = wc.add_joint(4, 4)\n"
    bad = "@@\n-    this_line_is_not_there()\n+    x = 1\n"
    result = apply_diff(SQUARE, good + bad)
    assert result.outcome is MutationOutcome.DIFF_DID_NOT_APPLY and "hunk 2 of 2" in result.detail


def test_no_hunks_unchanged_and_empty() -> None:
    assert apply_diff(SQUARE, "I would change the amplitudes.").outcome is MutationOutcome.NO_DIFF
    same = "@@\n-    centre = wc.add_joint(5, 5)\n+    centre = wc.add_joint(5, 5)\n"
    assert apply_diff(SQUARE, same).outcome is MutationOutcome.UNCHANGED
    assert apply_diff(SQUARE, "").outcome is MutationOutcome.NO_DIFF
