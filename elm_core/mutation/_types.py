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


@dataclass(frozen=True, kw_only=True)
class Child:
    """One mutation of one parent. `source` is None unless `outcome` is OK."""

    parent: str
    source: str | None
    outcome: MutationOutcome
    operator: str  # "llm" or "gp"
    style: str  # prompt style for the LLM ("diff", "instruct", "rewrite"); the GP operator's edit kind
    message: str = ""  # the commit message / instruction the child was asked for
    raw_output: str = ""  # what the model wrote (or a description of the GP edit)
    detail: str = ""  # why it failed, for people

    @property
    def ok(self) -> bool:
        return self.outcome is MutationOutcome.OK


class Mutator(Protocol):
    """Turns parent programs into children: one `Child` per parent, in order, never raising for bad output."""

    name: str

    def mutate(self, parents: Sequence[str], rng: np.random.Generator) -> list[Child]: ...
