"""Mutation operators: programs in, child programs out.

The LLM operator asks a code model for a diff (or a whole new program) and applies it leniently; the GP
operator edits the program's syntax tree. Both implement `Mutator` and report failures as typed outcomes.
`run_bugfix` is the paper's 4-bit-parity repair benchmark for any operator.
"""

from elm_core.mutation._bugfix import (
    BUGFIX_MESSAGE,
    BUGFIX_TASK,
    PAPER_SUCCESS_RATES,
    PARITY_PROGRAM,
    BugfixRow,
    buggy_parity,
    run_bugfix,
)
from elm_core.mutation._diff import PatchResult, apply_diff
from elm_core.mutation._factory import OPERATORS, build_mutator
from elm_core.mutation._gp import EDIT_KINDS, GPMutator
from elm_core.mutation._llm import SODARACE_MESSAGES, LLMMutator, MutationConfig
from elm_core.mutation._prompts import SODARACE_TASK, PromptStyle, build_prompt, parse_output
from elm_core.mutation._types import (
    AST_LOCK,
    PAPER,
    Child,
    ChildRequest,
    MutationOutcome,
    Mutator,
    Request,
    as_request,
)

__all__ = [
    "AST_LOCK",
    "BUGFIX_MESSAGE",
    "BUGFIX_TASK",
    "EDIT_KINDS",
    "OPERATORS",
    "PAPER",
    "PAPER_SUCCESS_RATES",
    "PARITY_PROGRAM",
    "SODARACE_MESSAGES",
    "SODARACE_TASK",
    "BugfixRow",
    "Child",
    "ChildRequest",
    "GPMutator",
    "LLMMutator",
    "MutationConfig",
    "MutationOutcome",
    "Mutator",
    "PatchResult",
    "PromptStyle",
    "Request",
    "apply_diff",
    "as_request",
    "buggy_parity",
    "build_mutator",
    "build_prompt",
    "parse_output",
    "run_bugfix",
]
