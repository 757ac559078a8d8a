"""The records every mutation operator produces, and the `Mutator` port the MAP-Elites loop consumes."""

from __future__ import annotations

import enum
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# CPython 3.11 keeps the recursion depth of its AST conversion in process-wide state: two threads parsing at
# once (pipelined batches mutating side by side) corrupt it and raise SystemError. Every ast call holds this.
AST_LOCK = threading.Lock()


class MutationOutcome(enum.StrEnum):
    """Whether an operator produced a child program, and if not, why."""

    OK = "OK"
    NO_DIFF = "NO_DIFF"  # the output holds no hunk / no program to take
    DIFF_DID_NOT_APPLY = "DIFF_DID_NOT_APPLY"  # hunks whose context is not in the parent
    EMPTY_OUTPUT = "EMPTY_OUTPUT"
    UNCHANGED = "UNCHANGED"  # the child is the parent
    TRUNCATED = "TRUNCATED"  # generation hit the token limit before the change was complete
    DUPLICATE = "DUPLICATE"  # the child's program was already evaluated in this run: not evaluated again
    # the child is a new program, but it built a walker already evaluated in this run: never inserted
    DUPLICATE_WALKER = "DUPLICATE_WALKER"


@dataclass(frozen=True, kw_only=True)
class Child:
    """One mutation of one parent. `source` is None unless `outcome` is OK."""

    parent: str
    source: str | None
    outcome: MutationOutcome
    operator: str  # "paper", "directed" or "crossover" for the LLM (see ChildRequest); "gp"
    style: str  # prompt style for the LLM ("diff", "instruct", "rewrite"); the GP operator's edit kind
    message: str = ""  # the commit message / instruction the child was asked for
    raw_output: str = ""  # what the model wrote (or a description of the GP edit)
    detail: str = ""  # why it failed, for people
    generated_tokens: int = 0  # what the model wrote for it, in tokens (0 for GP)

    @property
    def ok(self) -> bool:
        return self.outcome is MutationOutcome.OK


PAPER = "paper"  # the LLM asked with a commit message from the paper's table


@dataclass(frozen=True, kw_only=True)
class ChildRequest:
    """What one child is asked to be: a change of `parent` as `instruction` says (empty: a message from the
    mutator's own table), drawing on the programs in `others` when there are any (crossover). `operator`
    names whoever chose the request and is what the mutation log records."""

    parent: str
    instruction: str = ""
    others: tuple[str, ...] = ()
    operator: str = PAPER


Request = str | ChildRequest  # a plain program is a request for a change from the mutator's own table


def as_request(request: Request) -> ChildRequest:
    return ChildRequest(parent=request) if isinstance(request, str) else request


class Mutator(Protocol):
    """Turns requests (or parent programs) into children: one `Child` per request, in order, never raising
    for bad output. Operators that take no instructions (GP) change the parent alone."""

    name: str

    def mutate(self, requests: Sequence[Request], rng: np.random.Generator) -> list[Child]: ...
