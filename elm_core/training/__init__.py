"""Learning from a run: the fine-tuning dataset built from its mutation log, and the fine-tuning itself.

`build_dataset` turns the mutations MAP-Elites accepted into prompt/completion examples, each laid out in a
prompt style's format and checked to reproduce its child, deduplicated, split into train and validation by
a hash of the prompt, and hashed as a whole; `write_dataset` writes them as JSON Lines plus a manifest.
`finetune(TrainConfig(...), dataset, out_dir)` trains the mutation model on them (full or LoRA, loss on
the completions only, resumable from its checkpoints) and writes a checkpoint `load_generator` loads.
Importing this package does not import torch: the fine-tuning imports it when it starts.
"""

from elm_core.training._config import FinetuneMethod, TrainConfig
from elm_core.training._data import DATASET_DIR, TrainingData, dataset_for_run, training_data
from elm_core.training._dataset import (
    DATASET_MANIFEST_FILE,
    DEFAULT_STYLE,
    TRAIN_FILE,
    VALIDATION_FILE,
    Dataset,
    DatasetConfig,
    DatasetCounts,
    build_dataset,
    read_examples,
    write_dataset,
)
from elm_core.training._examples import DEFAULT_MESSAGE, Example, completion_for
from elm_core.training._export import MANIFEST_FILE, FinetuneResult
from elm_core.training._finetune import StepReport, finetune, total_steps
from elm_core.training._state import STATE_DIR
from elm_core.training._tokenize import (
    IGNORE_INDEX,
    TokenizedExample,
    TokenizedSet,
    tokenize_example,
    tokenize_examples,
)

__all__ = [
    "DEFAULT_MESSAGE",
    "DEFAULT_STYLE",
    "DATASET_DIR",
    "DATASET_MANIFEST_FILE",
    "IGNORE_INDEX",
    "MANIFEST_FILE",
    "STATE_DIR",
    "TRAIN_FILE",
    "VALIDATION_FILE",
    "Dataset",
    "DatasetConfig",
    "DatasetCounts",
    "Example",
    "FinetuneMethod",
    "FinetuneResult",
    "StepReport",
    "TokenizedExample",
    "TokenizedSet",
    "TrainConfig",
    "TrainingData",
    "build_dataset",
    "completion_for",
    "dataset_for_run",
    "finetune",
    "read_examples",
    "tokenize_example",
    "tokenize_examples",
    "total_steps",
    "training_data",
    "write_dataset",
]
