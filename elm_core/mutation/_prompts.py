"""Prompt styles: how a parent program becomes a model prompt, and how the model's output becomes a child.

- `diff`: the diff-model layout (`<NME>`, `<BEF>`, `<MSG>`, `<DFF>`) prompted up to `<DFF>`; the model
  writes a unified diff.
- `instruct`: a chat prompt asking an instruction model for a unified diff in a ```diff block (a whole
  program in a ```python block is accepted too: small instruction models often answer that way).
- `rewrite`: a chat prompt asking for the whole new program.

A request with other programs (crossover) shows them before the parent: as further files in the diff layout,
as numbered programs in the chat layouts, asking for a walker that combines them.
"""

from __future__ import annotations

import ast
import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from elm_core.models import Generation, Prompt
from elm_core.mutation._diff import apply_diff, parse_hunks
from elm_core.mutation._types import AST_LOCK, MutationOutcome

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)

SYSTEM = (
    "You are an expert Python programmer. You change programs exactly as asked and answer with code only."
)

_INSTRUCT = "Reply with a unified diff of your change (with @@ hunk headers) in one ```diff block."
_REWRITE = "Reply with the whole new program in one ```python block."


@dataclass(frozen=True, kw_only=True)
class Task:
    """What the programs are for: the file name the diff layout shows, and a description for chat styles."""

    file_name: str
    description: str


SODARACE_TASK = Task(
    file_name="walker.py",
    description="This Python program builds a Sodarace walker: point masses (joints) joined by springs "
    "(muscles), some of which oscillate (active, with an amplitude and a phase). `walker_creator` is "
    "provided: add_joint(x, y) returns a joint; add_muscle(j0, j1, active, amplitude, phase) connects two "
    "joints. `make_walker()` must return wc.get_walker(). Do not write import statements: `math` is "
    "already available and nothing else is. A change can move, add or remove joints, add or remove muscles, "
    "or change amplitudes and phases.",
)


class PromptStyle(enum.StrEnum):
    DIFF = "diff"
    INSTRUCT = "instruct"
    REWRITE = "rewrite"


@dataclass(frozen=True)
class Parsed:
    source: str | None
    outcome: MutationOutcome
    detail: str = ""


def build_prompt(
    style: PromptStyle, parent: str, message: str, task: Task = SODARACE_TASK, others: Sequence[str] = ()
) -> Prompt:
    """The prompt asking for `message` (a commit message / instruction) applied to `parent`, with `others`
    shown as programs to draw from. The task text comes first so that prompts share their longest prefix."""
    if style is PromptStyle.DIFF:
        context = "".join(f"<NME> other_{k}.py\n<BEF> {other}\n" for k, other in enumerate(others, 1))
        return Prompt(text=f"{context}<NME> {task.file_name}\n<BEF> {parent}\n<MSG> {message}\n<DFF>")
    ask = _INSTRUCT if style is PromptStyle.INSTRUCT else _REWRITE
    programs = [*others, parent]
    if others:
        shown = "\n\n".join(f"Program {k}:\n```python\n{p.rstrip()}\n```" for k, p in enumerate(programs, 1))
        change = f"Change program {len(programs)}. {message}"
    else:
        shown, change = f"```python\n{parent.rstrip()}\n```", message
    user = f"{task.description}\n\n{shown}\n\n{change} Make a real change. {ask}"
    return Prompt(messages=(("system", SYSTEM), ("user", user)))


def stop_sequences(style: PromptStyle) -> tuple[str, ...]:
    """Where generation may stop early: after the diff, or after the closing fence of the answer."""
    return ("<NME>", "\n<BEF>", "\n<MSG>") if style is PromptStyle.DIFF else ()


def parse_output(style: PromptStyle, parent: str, generation: Generation) -> Parsed:
    """The child program the model's output describes, or a typed reason why there is none."""
    text = generation.text
    if not text.strip():
        return Parsed(None, MutationOutcome.EMPTY_OUTPUT, "the model wrote nothing")
    if style is PromptStyle.DIFF:
        return _from_diff(parent, text, generation.truncated)
    blocks = _fenced_blocks(text)
    program = next((code for lang, code in blocks if lang in ("python", "py", "") and "def " in code), None)
    diff = next((code for lang, code in blocks if lang in ("diff", "patch", "udiff") or "@@" in code), None)
    if style is PromptStyle.INSTRUCT and diff is not None:
        return _from_diff(parent, diff, generation.truncated)
    if program is not None:
        return _from_program(parent, program, generation.truncated)
    if generation.truncated:
        return Parsed(
            None, MutationOutcome.TRUNCATED, "the output ended at the token limit without an answer"
        )
    return Parsed(None, MutationOutcome.NO_DIFF, "the output holds neither a diff nor a program")


def _from_diff(parent: str, diff: str, truncated: bool) -> Parsed:
    if truncated:  # the last hunk was cut off mid-way: keep only the complete ones before it
        diff = diff[: max(diff.rfind("\n@@"), 0)]
        if not parse_hunks(diff):
            return Parsed(None, MutationOutcome.TRUNCATED, "the diff ended at the token limit")
    patch = apply_diff(parent, diff)
    return Parsed(patch.text, patch.outcome, patch.detail)


def _from_program(parent: str, program: str, truncated: bool) -> Parsed:
    program = program.strip("\n") + "\n"
    try:
        with AST_LOCK:
            ast.parse(program)
    except SyntaxError:
        if truncated:
            return Parsed(None, MutationOutcome.TRUNCATED, "the program ended at the token limit")
        # a program that does not parse is still a child: the sandbox reports SYNTAX_ERROR, and that is data
    if program.strip() == parent.strip():
        return Parsed(None, MutationOutcome.UNCHANGED, "the model returned the parent unchanged")
    return Parsed(program, MutationOutcome.OK)


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]
