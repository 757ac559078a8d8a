"""The run spec: one typed, nested configuration of a run, and the one place a stored spec is decoded."""

from elm_core.spec._run_spec import (
    EmbeddedSpec,
    EvaluationSpec,
    FinetuneRoundsSpec,
    MutationSpec,
    RunSpec,
    run_spec,
)

__all__ = [
    "EmbeddedSpec",
    "EvaluationSpec",
    "FinetuneRoundsSpec",
    "MutationSpec",
    "RunSpec",
    "run_spec",
]
