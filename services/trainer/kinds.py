"""Job kinds: what a trainer job does, by name. Adding a kind is one entry in `KINDS`.

A kind parses the job's settings (a JSON object) into its config, refusing bad ones with a ConfigError
before the job is queued, and runs the job: it writes into `context.directory`, reports progress through
`context.report` (which raises `JobInterrupted` once the trainer is closing) and returns its metrics.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from elm_core.errors import ConfigError, ElmError
from elm_core.store import JobRecord, SQLiteStore
from elm_core.training import (
    DatasetConfig,
    InventConfig,
    IterationReport,
    StepReport,
    TrainConfig,
    build_dataset,
    dataset_for_run,
    finetune,
    invent,
    write_dataset,
)
from services.trainer.checkpoints import MANIFEST_FILE

Config = TypeVar("Config")


class JobInterrupted(ElmError):
    """The trainer is closing: the job stops here and goes back to the queue."""


@dataclass(frozen=True)
class JobContext:
    job: JobRecord
    store: SQLiteStore
    directory: Path  # where the job writes: <checkpoints>/<job_id>
    report: Callable[[float, str], None]  # (progress 0..1, message)


@dataclass(frozen=True)
class JobKind(Generic[Config]):
    parse: Callable[[Mapping[str, Any]], Config]  # raises ConfigError
    run: Callable[[JobContext, Config], dict[str, float]]  # returns the job's metrics

    def settings(self, config_json: str) -> Config:
        """The job's config from its settings JSON (empty means defaults)."""
        try:
            values = json.loads(config_json or "{}")
        except (json.JSONDecodeError, RecursionError) as e:  # RecursionError: nested too deep
            raise ConfigError(f"config_json is not JSON: {e}") from e
        if not isinstance(values, dict):
            raise ConfigError(f"config_json must be a JSON object, got {type(values).__name__}")
        return self.parse(values)


def config_parser(kind: Callable[..., Config]) -> Callable[[Mapping[str, Any]], Config]:
    """Parses settings into the config dataclass `kind`; an unknown setting names the known ones."""
    known = {f.name for f in dataclasses.fields(kind)}  # type: ignore[arg-type]

    def parse(values: Mapping[str, Any]) -> Config:
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown settings {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        try:
            return kind(**values)
        except TypeError as e:
            raise ConfigError(f"bad settings: {e}") from e

    return parse


def _dataset(context: JobContext, config: DatasetConfig) -> dict[str, float]:
    """Builds the run's fine-tuning dataset and writes it into the job's directory."""
    context.report(0.0, "reading the mutation log")
    dataset = build_dataset(
        context.store,
        context.job.run_id,
        include_ran=config.include_ran,
        validation_fraction=config.validation_fraction,
        style=config.style,
    )
    context.report(0.5, f"writing {len(dataset.train)} + {len(dataset.validation)} examples")
    write_dataset(dataset, context.directory)
    return {name: float(count) for name, count in dataclasses.asdict(dataset.counts).items()}


@dataclass(frozen=True)
class FinetuneSettings:
    """A finetune job's settings: which examples (DatasetConfig's) and how to train (TrainConfig's, but the
    base model, which is the job's model)."""

    dataset: DatasetConfig
    train: TrainConfig


_DATASET_SETTINGS = frozenset(f.name for f in dataclasses.fields(DatasetConfig))
_TRAIN_SETTINGS = frozenset(f.name for f in dataclasses.fields(TrainConfig)) - {"base_model"}


def _finetune_settings(values: Mapping[str, Any]) -> FinetuneSettings:
    unknown = sorted(set(values) - _DATASET_SETTINGS - _TRAIN_SETTINGS)
    if unknown:
        known = ", ".join(sorted(_DATASET_SETTINGS | _TRAIN_SETTINGS))
        raise ConfigError(f"unknown settings {', '.join(unknown)}; known: {known} (the job's model is the "
                          "base model)")  # fmt: skip
    return FinetuneSettings(
        dataset=config_parser(DatasetConfig)({k: v for k, v in values.items() if k in _DATASET_SETTINGS}),
        train=config_parser(TrainConfig)({k: v for k, v in values.items() if k in _TRAIN_SETTINGS}),
    )


def _finetune(context: JobContext, settings: FinetuneSettings) -> dict[str, float]:
    """Fine-tunes the job's model on the run's dataset (kept in the job's directory, so a re-queued job
    resumes on the same examples from its last saved step); the directory becomes the checkpoint."""
    context.report(0.0, "building the dataset")
    dataset = dataset_for_run(context.store, context.job.run_id, context.directory, settings.dataset)
    context.report(0.02, f"loading {context.job.model}")
    config = dataclasses.replace(settings.train, base_model=context.job.model)

    def on_step(step: StepReport) -> None:  # raises JobInterrupted once the trainer closes
        validation = "" if step.validation_loss is None else f", validation loss {step.validation_loss:.4f}"
        message = f"step {step.step}/{step.total_steps}: loss {step.train_loss:.4f}{validation}"
        context.report(0.02 + 0.96 * step.step / step.total_steps, message)

    result = finetune(config, dataset, context.directory, on_step=on_step, job_id=context.job.job_id)
    return result.metrics


def _invent(context: JobContext, config: InventConfig) -> dict[str, float]:
    """Stage 3 on the job's model (a stage-2 checkpoint): terrain conditioning and RL. The job's directory
    keeps the state of every finished iteration, so a re-queued job resumes from the last one; it ends as a
    checkpoint with invent.json and a manifest.json for ListCheckpoints."""
    (context.directory / MANIFEST_FILE).unlink(missing_ok=True)  # a run again rewrites the checkpoint
    context.report(0.0, f"loading {context.job.model}")

    def on_iteration(report: IterationReport) -> None:  # raises JobInterrupted once the trainer closes
        rewards = ", ".join(f"{terrain} {reward:+.2f}" for terrain, reward in report.mean_reward.items())
        message = f"iteration {report.iteration}/{report.iterations}: mean reward {rewards}"
        context.report(0.02 + 0.96 * report.iteration / report.iterations, message)

    result = invent(config, context.job.model, context.directory, on_iteration=on_iteration)
    last = result.history[-1]["mean_reward"] if result.history else {}
    metrics = {"iterations": float(result.iterations), "resumed_from": float(result.resumed_from)}
    metrics |= {f"mean_reward_{terrain}": float(reward) for terrain, reward in last.items()}
    _write_manifest(context, metrics)
    return metrics


def _write_manifest(context: JobContext, metrics: dict[str, float]) -> None:
    """The manifest that lists the checkpoint in ListCheckpoints, written last and atomically."""
    manifest = {"job_id": context.job.job_id, "run_id": context.job.run_id, "base_model": context.job.model,
                "kind": "invent", "metrics": metrics, "created_at": time.time()}  # fmt: skip
    partial = context.directory / f"{MANIFEST_FILE}.partial"
    partial.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, context.directory / MANIFEST_FILE)


KINDS: dict[str, JobKind[Any]] = {
    "dataset": JobKind(config_parser(DatasetConfig), _dataset),
    "finetune": JobKind(_finetune_settings, _finetune),
    "invent": JobKind(config_parser(InventConfig), _invent),
}
