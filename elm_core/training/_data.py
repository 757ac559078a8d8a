"""What a fine-tuning trains on: a `Dataset` in memory, the directory `write_dataset` wrote, or any
`TrainingData` (pretraining builds its own from programs)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from elm_core.errors import NotFoundError
from elm_core.store import SQLiteStore
from elm_core.training._dataset import (
    DATASET_MANIFEST_FILE,
    TRAIN_FILE,
    VALIDATION_FILE,
    Dataset,
    DatasetConfig,
    build_dataset,
    read_examples,
    write_dataset,
)
from elm_core.training._tokenize import PromptCompletion

DATASET_DIR = "dataset"  # where `dataset_for_run` keeps a training's dataset, inside its output directory


@dataclass(frozen=True, kw_only=True)
class TrainingData:
    run_id: str
    sha256: str
    counts: dict[str, int]  # the dataset's DatasetCounts
    train: tuple[PromptCompletion, ...]
    validation: tuple[PromptCompletion, ...]


def training_data(dataset: TrainingData | Dataset | str | Path) -> TrainingData:
    """The examples of a Dataset, or of a directory written by `write_dataset`; TrainingData as it is."""
    if isinstance(dataset, TrainingData):
        return dataset
    if isinstance(dataset, Dataset):
        return TrainingData(run_id=dataset.run_id, sha256=dataset.sha256, counts=asdict(dataset.counts),
                            train=dataset.train, validation=dataset.validation)  # fmt: skip
    directory = Path(dataset)
    manifest_path = directory / DATASET_MANIFEST_FILE
    if not manifest_path.is_file():
        raise NotFoundError(f"{directory} holds no dataset ({DATASET_MANIFEST_FILE} is missing)")
    manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
    return TrainingData(
        run_id=str(manifest["run_id"]),
        sha256=str(manifest["sha256"]),
        counts={str(k): int(v) for k, v in manifest["counts"].items()},
        train=tuple(read_examples(directory / TRAIN_FILE)),
        validation=tuple(read_examples(directory / VALIDATION_FILE)),
    )


def dataset_for_run(store: SQLiteStore, run_id: str, out_dir: Path, config: DatasetConfig) -> Path:
    """The run's dataset, written into `out_dir/dataset` the first time and read back after (unless asked
    for with other settings): a resumed fine-tuning trains on the examples it started with, even if the run
    went on meanwhile."""
    directory = out_dir / DATASET_DIR
    if _written_settings(directory) != json.loads(json.dumps(asdict(config))):
        dataset = build_dataset(
            store,
            run_id,
            include_ran=config.include_ran,
            validation_fraction=config.validation_fraction,
            style=config.style,
        )
        write_dataset(dataset, directory)
    return directory


def _written_settings(directory: Path) -> Any:
    path = directory / DATASET_MANIFEST_FILE
    return json.loads(path.read_text(encoding="utf-8")).get("config") if path.is_file() else None
