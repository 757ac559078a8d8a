"""The LLM mutation operator: a code model asked to change each parent, its answer applied leniently."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from elm_core.errors import ConfigError
from elm_core.models import CodeGenerator, SamplingConfig
from elm_core.mutation._prompts import (
    SODARACE_TASK,
    PromptStyle,
    Task,
    build_prompt,
    parse_output,
    stop_sequences,
)
from elm_core.mutation._types import Child, Request, as_request

# The commit messages of the paper's Sodarace runs, with their sampling probabilities.
SODARACE_MESSAGES = (
    ("Changed make_walker function.", 0.4),
    ("Changed parameters in make_walker function.", 0.3),
    ("Small change to make_walker function.", 0.3),
)


@dataclass(frozen=True, kw_only=True)
class MutationConfig:
    style: PromptStyle = PromptStyle.REWRITE
    messages: tuple[tuple[str, float], ...] = SODARACE_MESSAGES
    task: Task = SODARACE_TASK
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "style", PromptStyle(self.style))
        weights = [w for _, w in self.messages]
        if not self.messages or min(weights) < 0 or not np.isclose(sum(weights), 1.0):
            raise ConfigError(f"messages must be (text, probability) pairs summing to 1, got {self.messages}")


class LLMMutator:
    """Implements `Mutator` with any `CodeGenerator`; one batched generate() call per mutate()."""

    name = "llm"

    def __init__(self, generator: CodeGenerator, config: MutationConfig | None = None) -> None:
        self.generator = generator
        self.config = config or MutationConfig()
        stops = tuple(dict.fromkeys(self.config.sampling.stop + stop_sequences(self.config.style)))
        self._sampling = dataclasses.replace(self.config.sampling, stop=stops)

    def mutate(self, requests: Sequence[Request], rng: np.random.Generator) -> list[Child]:
        """One child per request; a request without an instruction gets a message drawn from the table."""
        if not requests:
            return []
        asked = [as_request(r) for r in requests]
        texts = [text for text, _ in self.config.messages]
        weights = [weight for _, weight in self.config.messages]
        drawn = [texts[i] for i in rng.choice(len(texts), size=len(asked), p=weights)]
        messages = [r.instruction or d for r, d in zip(asked, drawn, strict=True)]
        style, task = self.config.style, self.config.task
        prompts = [
            build_prompt(style, r.parent, m, task, r.others) for r, m in zip(asked, messages, strict=True)
        ]
        generations = self.generator.generate(prompts, self._sampling, seed=int(rng.integers(2**31)))
        children = []
        for request, message, generation in zip(asked, messages, generations, strict=True):
            parsed = parse_output(self.config.style, request.parent, generation)
            children.append(
                Child(
                    parent=request.parent,
                    source=parsed.source,
                    outcome=parsed.outcome,
                    operator=request.operator,
                    style=self.config.style.value,
                    message=message,
                    raw_output=generation.text,
                    detail=parsed.detail,
                    generated_tokens=generation.completion_tokens,
                )  # fmt: skip
            )
        return children
