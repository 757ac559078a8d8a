"""What every model backend takes and gives: prompts in, generations out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from elm_core.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Prompt:
    """Either plain text to continue (`text`) or a chat (`messages`: (role, content) pairs)."""

    text: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.messages is None):
            raise ConfigError("Prompt: give exactly one of text= or messages=")


@dataclass(frozen=True, kw_only=True)
class SamplingConfig:
    max_new_tokens: int = 384
    temperature: float = 0.8  # 0 means greedy
    top_p: float = 0.95
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ConfigError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass(frozen=True, kw_only=True)
class Generation:
    text: str
    finish_reason: str  # "stop" (end of text or a stop sequence) or "length" (hit max_new_tokens)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class CodeGenerator(Protocol):
    """A language model behind some runtime. `generate` returns one Generation per prompt, in order."""

    name: str

    def generate(
        self, prompts: Sequence[Prompt], sampling: SamplingConfig, *, seed: int | None = None
    ) -> list[Generation]: ...
