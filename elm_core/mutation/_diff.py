"""Lenient unified-diff application, the way model-written diffs need it.

Models get hunk line numbers wrong, drop the space that marks an empty context line, re-indent, wrap the
diff in prose or code fences, and stop mid-hunk. So: text outside hunks is dropped; inside a hunk, lines are
context (' '), removals ('-') or additions ('+'), and the first line that is none of these ends the hunk;
each hunk is located by its content (context and removed lines), exactly if possible, else ignoring
trailing, then all surrounding whitespace; the header's line number only breaks ties between several
matches. Every hunk must apply, or the diff does not apply: a half-applied diff is not what the model meant.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from elm_core.mutation._types import MutationOutcome

_HEADER = re.compile(r"^@@+ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
_FILE_HEADER = ("--- ", "+++ ", "diff ", "index ")
_NORMALISERS: tuple[Callable[[str], str], ...] = (lambda s: s, str.rstrip, str.strip)


@dataclass(frozen=True)
class Hunk:
    lines: tuple[tuple[str, str], ...]  # (op, text) with op in " ", "-", "+"
    hint: int | None  # 0-based line the header says the hunk starts at

    @property
    def before(self) -> list[str]:
        return [text for op, text in self.lines if op != "+"]

    @property
    def after(self) -> list[str]:
        return [text for op, text in self.lines if op != "-"]

    @property
    def changes(self) -> bool:
        return any(op != " " for op, _ in self.lines)


@dataclass(frozen=True)
class PatchResult:
    text: str | None
    outcome: MutationOutcome
    hunks: int  # hunks found in the diff
    detail: str = ""


def parse_hunks(diff: str) -> list[Hunk]:
    """The hunks of a (possibly messy) unified diff, in order; hunks without a change are left out."""
    hunks: list[Hunk] = []
    current: list[tuple[str, str]] | None = None
    hint: int | None = None
    for line in diff.splitlines():
        header = _HEADER.match(line)
        if header or line.startswith("@@"):
            _close(hunks, current, hint)
            current, hint = [], (_start(header) if header else None)
        elif current is None:
            continue  # prose, fences and file headers before the first hunk
        elif line.startswith(_FILE_HEADER) or line.startswith("\\"):
            if not line.startswith(
                "\\"
            ):  # "\ No newline at end of file" is noise; a file header ends the hunk
                _close(hunks, current, hint)
                current = None
        elif line[:1] in (" ", "-", "+"):
            current.append((line[0], line[1:]))
        elif line == "":
            current.append((" ", ""))  # an empty context line whose leading space was stripped
        else:
            _close(hunks, current, hint)  # the first malformed line ends the hunk
            current = None
    _close(hunks, current, hint)
    return hunks


def _start(header: re.Match[str]) -> int:
    """0-based line of a hunk; an empty old range (`-3,0`) names the line *after* which it goes."""
    start = int(header.group(1))
    return start if header.group(2) == "0" else max(start - 1, 0)


def _close(hunks: list[Hunk], lines: list[tuple[str, str]] | None, hint: int | None) -> None:
    if lines:
        while lines and lines[-1] == (" ", ""):  # trailing blank lines are usually the gap after the diff
            lines.pop()
        hunk = Hunk(tuple(lines), hint)
        if hunk.changes:
            hunks.append(hunk)


def apply_diff(original: str, diff: str) -> PatchResult:
    """Applies `diff` to `original`; failures are outcomes, never exceptions."""
    hunks = parse_hunks(diff)
    if not hunks:
        return PatchResult(None, MutationOutcome.NO_DIFF, 0, "the output holds no diff hunk")
    lines = original.splitlines()
    offset = 0  # how far earlier hunks moved the lines below them
    for number, hunk in enumerate(hunks, 1):
        found = _locate(lines, hunk, offset)
        if found is None:
            detail = f"hunk {number} of {len(hunks)}: its context is not in the program"
            return PatchResult(None, MutationOutcome.DIFF_DID_NOT_APPLY, len(hunks), detail)
        start, shift = found
        after = _replacement(lines[start : start + len(hunk.before)], hunk, shift)
        lines[start : start + len(hunk.before)] = after
        offset += len(after) - len(hunk.before)
    newline = "\n" if lines and (original.endswith("\n") or not original) else ""
    text = "\n".join(lines) + newline
    if text == original:
        return PatchResult(None, MutationOutcome.UNCHANGED, len(hunks), "the diff changes nothing")
    return PatchResult(text, MutationOutcome.OK, len(hunks))


def _locate(lines: list[str], hunk: Hunk, offset: int) -> tuple[int, int] | None:
    """(start line, indentation shift) of the hunk's `before` block in `lines`, or None."""
    before = hunk.before
    expected = (hunk.hint or 0) + offset
    if not before:  # a pure addition: only the header can say where
        return (min(max(expected, 0), len(lines)), 0) if hunk.hint is not None else None
    for normalise in _NORMALISERS:
        wanted = [normalise(s) for s in before]
        have = [normalise(s) for s in lines]
        starts = [i for i in range(len(lines) - len(before) + 1) if have[i : i + len(before)] == wanted]
        if starts:
            start = min(starts, key=lambda i: abs(i - expected))
            return start, _indent_shift(lines[start : start + len(before)], before)
    return None


def _replacement(found: list[str], hunk: Hunk, shift: int) -> list[str]:
    """The new block: context lines as the program has them, additions shifted like the match was."""
    originals = iter(found)
    block = []
    for op, text in hunk.lines:
        if op == "+":
            block.append(_reindent(text, shift))
        elif op == " ":
            block.append(next(originals))
        else:
            next(originals)
    return block


def _indent_shift(found: list[str], before: list[str]) -> int:
    for have, want in zip(found, before, strict=True):
        if have.strip():
            return _indent(have) - _indent(want)
    return 0


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _reindent(line: str, shift: int) -> str:
    if shift > 0 and line.strip():
        return " " * shift + line
    if shift < 0:
        return line[min(-shift, _indent(line)) :]
    return line
