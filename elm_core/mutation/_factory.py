"""Building a mutation operator from names, as the CLI, the run config and the services give them."""

from __future__ import annotations

import dataclasses

from elm_core.errors import ConfigError
from elm_core.models import HFConfig, SamplingConfig, default_style, load_generator, model_name
from elm_core.mutation._gp import GPMutator
from elm_core.mutation._llm import LLMMutator, MutationConfig
from elm_core.mutation._prompts import PromptStyle, Task
from elm_core.mutation._types import Mutator

OPERATORS = ("llm", "gp")


def build_mutator(
    operator: str,
    *,
    model: str | None = None,
    style: str | None = None,
    sampling: SamplingConfig | None = None,
    messages: tuple[tuple[str, float], ...] | None = None,
    task: Task | None = None,
    hf: HFConfig | None = None,
    backend: str = "auto",
    parallel: int = 8,
) -> Mutator:
    """`gp`, or `llm` with a model name (see `elm_core.models.load_generator`; default from $ELM_MODEL)."""
    if operator == "gp":
        return GPMutator()
    if operator != "llm":
        raise ConfigError(f"operator must be one of {OPERATORS}, got {operator!r}")
    if style is not None and style not in set(PromptStyle):
        raise ConfigError(f"style must be one of {[s.value for s in PromptStyle]}, got {style!r}")
    name = model_name(model)
    config = MutationConfig(
        style=PromptStyle(style or default_style(name)), sampling=sampling or SamplingConfig()
    )
    if messages is not None:
        config = dataclasses.replace(config, messages=messages)
    if task is not None:
        config = dataclasses.replace(config, task=task)
    return LLMMutator(load_generator(name, hf, backend=backend, parallel=parallel), config)
