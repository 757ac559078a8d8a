"""The training state: saved atomically every few steps into `<out>/state/step-N/`, and resumed from.

One record holds what resuming exactly needs: the trained weights (every weight, or the LoRA adapter's),
the optimiser's moments, the step and the running figures, torch's RNG states, and the config and dataset
hash it belongs to. A save is written into a scratch directory and renamed into place, so a process
killed at any moment leaves either the previous state or the new one, never half of one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from elm_core.errors import StateError

STATE_DIR = "state"
_TENSORS, _META, _PREFIX = "tensors.pt", "state.json", "step-"


@dataclass(kw_only=True)
class TrainProgress:
    """How far training got, and the figures the manifest reports."""

    step: int = 0  # optimiser steps taken
    first_train_loss: float | None = None
    last_train_loss: float | None = None
    best_validation_loss: float | None = None
    evaluations_without_improvement: int = 0
    stopped_early: bool = False
    train_tokens: int = 0  # tokens of the examples trained on, padding excluded
    completion_tokens: int = 0  # of which under the loss
    train_s: float = 0.0  # seconds spent in training steps


def save_state(out_dir: Path, model: Any, optimizer: Any, progress: Any, belongs_to: Any) -> None:
    """Saves the state at `progress.step` (once per step) and removes older ones."""
    import torch

    root = out_dir / STATE_DIR
    target = root / f"{_PREFIX}{progress.step:08d}"
    if target.is_dir():
        return
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=root, prefix=".saving-"))
    tensors = {"trainable": trainable_weights(model), "optimizer": optimizer.state_dict(), "rng": _rng()}
    torch.save(tensors, scratch / _TENSORS)
    meta = {"progress": asdict(progress), "belongs_to": belongs_to}
    (scratch / _META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    scratch.rename(target)
    for stale in root.iterdir():
        if stale != target:
            shutil.rmtree(stale, ignore_errors=True)


def load_state(
    out_dir: Path, model: Any, optimizer: Any, belongs_to: Any, *, progress_type: type[Any] = TrainProgress
) -> Any:
    """Restores the latest saved state into `model` and `optimizer` and returns its progress (a
    `progress_type`); None when there is none. A state of another config or dataset is a StateError:
    resuming it would mix two trainings."""
    import torch

    saved = sorted((out_dir / STATE_DIR).glob(f"{_PREFIX}*"))
    if not saved:
        return None
    meta = json.loads((saved[-1] / _META).read_text(encoding="utf-8"))
    if meta["belongs_to"] != json.loads(json.dumps(belongs_to)):
        raise StateError(
            f"{saved[-1]} holds the state of a training with another config or dataset; "
            f"use another output directory, or delete {out_dir / STATE_DIR} to start afresh"
        )
    tensors = torch.load(saved[-1] / _TENSORS, map_location="cpu", weights_only=True)
    _load_trainable(model, tensors["trainable"])
    optimizer.load_state_dict(tensors["optimizer"])
    _set_rng(tensors["rng"])
    return progress_type(**meta["progress"])


def remove_state(out_dir: Path) -> None:
    shutil.rmtree(out_dir / STATE_DIR, ignore_errors=True)


def trainable_weights(model: Any) -> dict[str, Any]:
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters() if p.requires_grad}


def _load_trainable(model: Any, weights: dict[str, Any]) -> None:
    import torch

    parameters = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if parameters.keys() != weights.keys():
        raise StateError("the saved state's weights do not match the model's trainable weights")
    with torch.no_grad():
        for name, parameter in parameters.items():
            parameter.copy_(weights[name])


def _rng() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def _set_rng(states: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(states["cpu"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
