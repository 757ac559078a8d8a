"""Stage 2 of the paper: a language model trained on the programs ELM admitted to its maps.

Each program is a plain language-modelling example (an empty prompt, the loss on the whole text and its end
token), trained by the fine-tuning loop itself: from a base model, or from random weights in the base
model's architecture with its tokenizer (`TrainConfig(from_scratch=True)`). A fraction of the programs,
chosen by a hash of their text, is held out: the validation loss is on them, and they are the unseen
walkers whose first halves the evaluation asks the model to complete.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from elm_core.errors import ConfigError, StateError
from elm_core.models import Prompt
from elm_core.training._config import FinetuneMethod, TrainConfig
from elm_core.training._data import TrainingData
from elm_core.training._elite_programs import EliteProgram
from elm_core.training._export import FinetuneResult
from elm_core.training._finetune import OnStep, finetune

PROGRAMS_FILE = "programs.jsonl"  # what a pretraining trained on, written next to its checkpoint


@dataclass(frozen=True, kw_only=True)
class PretrainConfig:
    """How the model is trained (every weight, by default) and which share of the programs is held out."""

    train: TrainConfig = field(default_factory=lambda: TrainConfig(method=FinetuneMethod.FULL))
    held_out_fraction: float = 0.1

    def __post_init__(self) -> None:
        fraction = self.held_out_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
            raise ConfigError(f"held_out_fraction must be a number in [0, 1), got {fraction!r}")


@dataclass(frozen=True)
class ProgramText:
    """A program as a training example: nothing to condition on, the whole text to learn."""

    completion: str
    prompt: Prompt = Prompt(text="")


def split_programs(
    programs: Sequence[EliteProgram], held_out_fraction: float
) -> tuple[list[EliteProgram], list[EliteProgram]]:
    """(train, held out), by a hash of each source: a program is always on the same side."""
    held_out = [p for p in programs if _held_out(p.source, held_out_fraction)]
    return [p for p in programs if not _held_out(p.source, held_out_fraction)], held_out


def pretrain(
    config: PretrainConfig,
    programs: Sequence[EliteProgram],
    out_dir: str | Path,
    *,
    on_step: OnStep | None = None,
) -> FinetuneResult:
    """Trains `config.train.base_model` (or its architecture, from scratch) on the programs' text and writes
    a checkpoint `load_generator(out_dir)` loads, its manifest.json, and programs.jsonl (each program with
    its split). Running it again on the same output directory resumes an interrupted training."""
    train, held_out = split_programs(programs, config.held_out_fraction)
    if not train:
        raise StateError(f"no program to train on ({len(programs)} given, {len(held_out)} held out)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_programs(out / PROGRAMS_FILE, train, held_out)
    data = TrainingData(
        run_id=",".join(dict.fromkeys(p.run_id for p in programs)),
        sha256=_hash(train, held_out),
        counts={"programs": len(programs), "train": len(train), "validation": len(held_out)},
        train=tuple(ProgramText(p.source) for p in train),
        validation=tuple(ProgramText(p.source) for p in held_out),
    )
    return finetune(config.train, data, out, on_step=on_step)


def _held_out(source: str, fraction: float) -> bool:
    digest = hashlib.sha256(source.encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


def _hash(train: Sequence[EliteProgram], held_out: Sequence[EliteProgram]) -> str:
    sides = [sorted(p.source for p in side) for side in (train, held_out)]
    return hashlib.sha256(json.dumps(sides).encode()).hexdigest()


def _write_programs(path: Path, train: Sequence[EliteProgram], held_out: Sequence[EliteProgram]) -> None:
    sides = (("train", train), ("held_out", held_out))
    rows = [asdict(p) | {"split": split} for split, side in sides for p in side]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
