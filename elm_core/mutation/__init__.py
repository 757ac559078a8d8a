"""Mutation operators: programs in, child programs out.

The LLM operator asks a code model for a diff (or a whole new program) and applies it leniently; the GP
operator edits the program's syntax tree. Both implement `Mutator` and report failures as typed outcomes.
"""

from elm_core.mutation._types import Child, MutationOutcome, Mutator

__all__ = ["Child", "MutationOutcome", "Mutator"]
