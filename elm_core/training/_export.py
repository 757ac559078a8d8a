"""The end of a fine-tuning: a plain transformers checkpoint (LoRA merged in), its tokenizer, and a manifest.

`manifest.json` is written last, and atomically, so a directory holding one holds a whole checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elm_core.training._config import FinetuneMethod, TrainConfig
from elm_core.training._data import TrainingData
from elm_core.training._state import TrainProgress, remove_state
from elm_core.training._tokenize import TokenizedSet

MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True, kw_only=True)
class FinetuneResult:
    path: Path  # the checkpoint directory: `load_generator(str(path))` loads it
    steps: int  # optimiser steps taken in all
    resumed_from_step: int  # 0 when this call started afresh
    stopped_early: bool
    metrics: dict[str, float]  # as in the manifest


def export_checkpoint(
    model: Any,
    tokenizer: Any,
    out: Path,
    *,
    config: TrainConfig,
    dtype: Any,
    data: TrainingData,
    progress: TrainProgress,
    tokenized: tuple[TokenizedSet, TokenizedSet],
    resumed_from_step: int,
    wall_s: float,
    job_id: str,
) -> FinetuneResult:
    """Saves the model in `dtype` (merging a LoRA adapter first) and the tokenizer into `out`, then the
    manifest; the training state is no longer needed and is removed."""
    plain = (model.merge_and_unload() if config.method is FinetuneMethod.LORA else model).to(dtype)
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    metrics = _metrics(progress, tokenized, resumed_from_step, wall_s, plain)
    manifest = {
        "job_id": job_id,
        "run_id": data.run_id,
        "base_model": config.base_model,
        "method": config.method.value,
        "dataset": {"sha256": data.sha256, "counts": data.counts},
        "hyperparameters": config.to_json(),
        "metrics": metrics,
        "device": str(plain.device),
        "dtype": str(plain.dtype).removeprefix("torch."),
        "created_at": time.time(),
    }
    _write_atomically(out / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    remove_state(out)
    return FinetuneResult(path=out, steps=progress.step, resumed_from_step=resumed_from_step,
                          stopped_early=progress.stopped_early, metrics=metrics)  # fmt: skip


def _metrics(
    progress: TrainProgress,
    tokenized: tuple[TokenizedSet, TokenizedSet],
    resumed_from_step: int,
    wall_s: float,
    model: Any,
) -> dict[str, float]:
    train, validation = tokenized
    figures: dict[str, float | None] = {
        "steps": progress.step,
        "resumed_from_step": resumed_from_step,
        "stopped_early": float(progress.stopped_early),
        "train_loss_first": progress.first_train_loss,
        "train_loss_last": progress.last_train_loss,
        "best_validation_loss": progress.best_validation_loss,
        "train_examples": len(train.examples),
        "validation_examples": len(validation.examples),
        "skipped_overlong": train.skipped_overlong + validation.skipped_overlong,
        "train_tokens": progress.train_tokens,
        "completion_tokens": progress.completion_tokens,
        "tokens_per_s": _per_s(progress.train_tokens, progress.train_s),
        "completion_tokens_per_s": _per_s(progress.completion_tokens, progress.train_s),
        "train_s": progress.train_s,
        "wall_s": wall_s,
        "peak_gpu_memory_mb": _peak_gpu_memory_mb(model),
    }
    return {name: float(value) for name, value in figures.items() if value is not None}


def _per_s(count: int, seconds: float) -> float | None:
    return count / seconds if seconds > 0 else None


def _peak_gpu_memory_mb(model: Any) -> float | None:
    import torch

    if model.device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(model.device) / 2**20


def _write_atomically(path: Path, text: str) -> None:
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(text, encoding="utf-8")
    os.replace(scratch, path)
