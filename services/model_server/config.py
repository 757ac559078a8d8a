"""The model server's configuration, and the request limits every client can rely on."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from elm_core.errors import ConfigError
from elm_core.models import BACKENDS, SamplingConfig

MAX_PARENTS = 64  # parents in one Mutate request
MAX_CHILDREN_PER_PARENT = 16  # a request's n
MAX_TEMPERATURE = 2.0
MAX_NEW_TOKENS = 4096


@dataclass(frozen=True, kw_only=True)
class ModelServerConfig:
    model: str | None = None  # a model name or checkpoint directory; None = $ELM_MODEL, else the default
    backend: str = "auto"  # auto, hf or llamacpp
    max_batch_size: int = 8  # prompts (parents x n) per model call
    max_wait_ms: float = 5.0  # how long the first call of a batch waits for others to join it
    max_queued_parents: int = 256  # prompts waiting for the model; past this, calls get RESOURCE_EXHAUSTED
    sampling: SamplingConfig = field(default_factory=SamplingConfig)  # what a request does not set
    threads: int | None = None  # torch intra-op threads for the hf backend on CPU; None = torch's default

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        for name in ("max_batch_size", "max_queued_parents"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or self.threads < 1):
            raise ConfigError(f"threads must be an int >= 1 or None, got {self.threads!r}")
        if not (math.isfinite(self.max_wait_ms) and self.max_wait_ms >= 0):
            raise ConfigError(f"max_wait_ms must be a finite number >= 0, got {self.max_wait_ms!r}")
