"""Learning from a run: the fine-tuning dataset built from its mutation log.

`build_dataset` turns the mutations MAP-Elites accepted into prompt/completion examples, each laid out in a
prompt style's format and checked to reproduce its child, deduplicated, split into train and validation by
a hash of the prompt, and hashed as a whole; `write_dataset` writes them as JSON Lines plus a manifest.
Nothing here imports torch.
"""

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

__all__ = [
    "DEFAULT_MESSAGE",
    "DEFAULT_STYLE",
    "DATASET_MANIFEST_FILE",
    "TRAIN_FILE",
    "VALIDATION_FILE",
    "Dataset",
    "DatasetConfig",
    "DatasetCounts",
    "Example",
    "build_dataset",
    "completion_for",
    "read_examples",
    "write_dataset",
]
