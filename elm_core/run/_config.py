"""`RunConfig`: everything that defines a run, stored with it as JSON so it can be resumed and reproduced."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from elm_core.errors import ConfigError
from elm_core.models import BACKENDS, SamplingConfig
from elm_core.mutation import OPERATORS, PAPER
from elm_core.qd import ArchiveConfig, LoopConfig, OperatorMix
from elm_core.sodarace import SimConfig


@dataclass(frozen=True, kw_only=True)
class FinetuneRounds:
    """Fine-tuning rounds during a run on a coordinator: after every `every_batches` committed batches (when
    no round of this run is under way) the trainer fine-tunes the model server's current model on the run's
    mutation log and the model server reloads the result. The embedded `elm run` ignores it."""

    every_batches: int = 0  # 0: never
    method: str = "lora"  # full or lora
    max_steps: int = 200
    include_ran: bool = False  # learn from every mutation whose child ran, not only the accepted ones

    def __post_init__(self) -> None:
        if self.every_batches < 0 or self.max_steps < 1:
            raise ConfigError(
                f"[finetune] needs every_batches >= 0 and max_steps >= 1, "
                f"got {self.every_batches} and {self.max_steps}"
            )
        if self.method not in ("full", "lora"):
            raise ConfigError(f"[finetune] method must be full or lora, got {self.method!r}")

    def job_settings(self) -> dict[str, object]:
        """The trainer's finetune job settings for one round."""
        return {"method": self.method, "max_steps": self.max_steps, "include_ran": self.include_ran}


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    name: str = "elm"
    seeds: tuple[str, ...] = ("square",)  # seed names or program files
    operator: str = "llm"  # "llm" or "gp"
    model: str | None = None  # any accepted model name; None = $ELM_MODEL or the default model
    style: str | None = None  # LLM prompt style; None = the model's own
    backend: str = "auto"  # hf, llamacpp, or auto: llama.cpp on CPU when the model has a GGUF
    rng_seed: int = 0
    evaluator_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    terrain: str = "flat"
    sim_seconds: float = SimConfig().seconds
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    operators: OperatorMix = field(default_factory=OperatorMix)  # the LLM's mix; GP ignores it
    finetune: FinetuneRounds = field(default_factory=FinetuneRounds)

    def __post_init__(self) -> None:
        if self.operator not in OPERATORS:
            raise ConfigError(f"operator must be one of {OPERATORS}, got {self.operator!r}")
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed name or program file")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.evaluator_workers < 1:
            raise ConfigError(f"evaluator_workers must be >= 1, got {self.evaluator_workers}")

    def operator_mix(self) -> OperatorMix:
        """The mix the loop plans with: the configured one for the LLM; GP takes no instructions."""
        return self.operators if self.operator == "llm" else OperatorMix.only(PAPER)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RunConfig:
        """From parsed TOML/JSON: top-level fields plus [sampling], [archive], [loop], [operators] and
        [finetune] tables."""
        sections = {"sampling": SamplingConfig, "archive": ArchiveConfig, "loop": LoopConfig,
                    "operators": OperatorMix, "finetune": FinetuneRounds}  # fmt: skip
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(
                f"unknown run settings: {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key in sections:
                kwargs[key] = _section(sections[key], key, value)
            else:
                kwargs[key] = tuple(value) if key == "seeds" else value
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ConfigError(f"bad run settings: {e}") from e

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


def _section(kind: type, name: str, values: Any) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"[{name}] must be a table of settings")
    fields = {f.name for f in dataclasses.fields(kind)}
    unknown = set(values) - fields
    if unknown:
        raise ConfigError(f"unknown [{name}] settings: {', '.join(sorted(unknown))}")
    tuples = {k: _tupled(v) for k, v in values.items()}
    try:
        return kind(**tuples)
    except TypeError as e:
        raise ConfigError(f"bad [{name}] settings: {e}") from e


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value
