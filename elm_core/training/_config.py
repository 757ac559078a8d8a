"""`TrainConfig`: how the mutation model is fine-tuned on its own successful mutations."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

from elm_core.errors import ConfigError
from elm_core.models import DEFAULT_MODEL

DTYPES = ("auto", "float32", "bfloat16")  # auto: bfloat16 on a GPU, float32 on the CPU
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # Qwen2, Llama


class FinetuneMethod(enum.StrEnum):
    FULL = "full"  # every weight is trained
    LORA = "lora"  # low-rank adapters, merged into the base weights at the end


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One fine-tuning: the base model, the method, the optimiser and the schedule of evaluations."""

    base_model: str = DEFAULT_MODEL  # any name `load_generator` takes that the hf backend loads
    method: FinetuneMethod = FinetuneMethod.LORA
    from_scratch: bool = False  # random weights in the base model's architecture, its tokenizer; full only
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: tuple[str, ...] = LORA_TARGETS
    learning_rate: float = 2e-4
    warmup_steps: int = 0  # linear warm-up, then constant
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0  # gradient clipping; 0 turns it off
    epochs: int = 1  # passes over the training examples, unless max_steps is set
    max_steps: int | None = None  # optimiser steps in all; overrides epochs
    # Examples per micro-batch. One: with a 150k-token vocabulary the logits dominate memory, and
    # qwen2.5-coder-0.5b's LoRA on the CPU peaked at 13.9 GB with 1 and was killed at 23.6 GB with 4.
    batch_size: int = 1
    grad_accumulation_steps: int = 16  # micro-batches per optimiser step (16 examples a step, as 4 x 4 was)
    max_seq_tokens: int = 2048  # longer examples (prompt + completion) are skipped, and counted
    eval_every_steps: int = 50
    checkpoint_every_steps: int = 50
    early_stopping_patience: int | None = 3  # evaluations without a better validation loss; None: never
    seed: int = 0
    device: str = "auto"  # auto: CUDA when present, else the CPU
    dtype: str = "auto"
    threads: int | None = None  # torch threads on the CPU; None: torch's default

    def __post_init__(self) -> None:
        self._check_choices()
        for name in ("lora_r", "lora_alpha", "epochs", "batch_size", "grad_accumulation_steps",
                     "max_seq_tokens", "eval_every_steps", "checkpoint_every_steps"):  # fmt: skip
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("warmup_steps", self.warmup_steps, minimum=0)
        _check_int("seed", self.seed, minimum=0)
        for name in ("max_steps", "early_stopping_patience", "threads"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), minimum=1)
        for name in ("learning_rate", "weight_decay", "max_grad_norm", "lora_dropout"):
            _check_number(name, getattr(self, name))
        if self.lora_dropout >= 1:
            raise ConfigError(f"lora_dropout must be below 1, got {self.lora_dropout!r}")

    def _check_choices(self) -> None:
        if not isinstance(self.base_model, str) or not self.base_model:
            raise ConfigError(f"base_model must be a model name, got {self.base_model!r}")
        try:
            object.__setattr__(self, "method", FinetuneMethod(self.method))
        except ValueError as e:
            raise ConfigError(f"method must be full or lora, got {self.method!r}") from e
        targets = self.lora_target_modules
        if isinstance(targets, str) or not targets or not all(isinstance(t, str) and t for t in targets):
            raise ConfigError(f"lora_target_modules must be a list of module names, got {targets!r}")
        object.__setattr__(self, "lora_target_modules", tuple(targets))
        if not isinstance(self.from_scratch, bool):
            raise ConfigError(f"from_scratch must be true or false, got {self.from_scratch!r}")
        if self.from_scratch and self.method is not FinetuneMethod.FULL:
            raise ConfigError("from_scratch trains every weight: method must be full, got lora")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")

    def to_json(self) -> dict[str, Any]:
        """The config as a JSON object (the method as its name, target modules as a list)."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return values | {"method": self.method.value, "lora_target_modules": list(self.lora_target_modules)}


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_number(name: str, value: Any) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
