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
from elm_core.mutation._types import Child

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

    def mutate(
        self, parents: Sequence[str], rng: np.random.Generator, *, messages: Sequence[str] | None = None
    ) -> list[Child]:
        """One child per parent. `messages`, when given, holds one commit message per parent; an empty one
        (and every one when `messages` is None) is drawn from the config's table."""
        if not parents:
            return []
        if messages is not None and len(messages) != len(parents):
            raise ConfigError(
                f"messages must hold one message per parent ({len(parents)}), got {len(messages)}"
            )
        texts = [text for text, _ in self.config.messages]
        weights = [weight for _, weight in self.config.messages]
        drawn = [texts[i] for i in rng.choice(len(texts), size=len(parents), p=weights)]
        messages = drawn if messages is None else [m or d for m, d in zip(messages, drawn, strict=True)]
        style, task = self.config.style, self.config.task
        prompts = [build_prompt(style, p, m, task) for p, m in zip(parents, messages, strict=True)]
        generations = self.generator.generate(prompts, self._sampling, seed=int(rng.integers(2**31)))
        children = []
        for parent, message, generation in zip(parents, messages, generations, strict=True):
            parsed = parse_output(self.config.style, parent, generation)
            children.append(
                Child(
                    parent=parent,
                    source=parsed.source,
                    outcome=parsed.outcome,
                    operator=self.name,
                    style=self.config.style.value,
                    message=message,
                    raw_output=generation.text,
                    detail=parsed.detail,
                )  # fmt: skip
            )
        return children
