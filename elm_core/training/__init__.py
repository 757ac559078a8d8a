"""Learning from a run: the fine-tuning dataset built from its mutation log, and the fine-tuning itself.

`build_dataset` turns the mutations MAP-Elites accepted into prompt/completion examples, each laid out in a
prompt style's format and checked to reproduce its child, deduplicated, split into train and validation by
a hash of the prompt, and hashed as a whole; `write_dataset` writes them as JSON Lines plus a manifest.
`finetune(TrainConfig(...), dataset, out_dir)` trains the mutation model on them (full or LoRA, loss on
the completions only, resumable from its checkpoints) and writes a checkpoint `load_generator` loads;
`measure_finetune_effect` compares its mutations with the base model's on the same parents.
Stage 2 of the paper: `elite_programs` gathers the programs runs admitted to their maps (near their cells'
best), `pretrain` trains a language model on them, and `evaluate_pretrained` samples it into a fresh map.
Stage 3: `invent` conditions the stage-2 model on the terrain (a learned soft prompt per terrain) and
fine-tunes it with reinforcement learning on the walkers' fitness; `evaluate_invention` compares it per
terrain with the stage-2 model and dataset, and `TerrainSampler` samples walkers for a terrain.
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
from elm_core.training._effect import ChildEffect, EffectReport, ModelEffect, measure_finetune_effect
from elm_core.training._elite_programs import EliteProgram, elite_programs, shared_archive_config
from elm_core.training._examples import DEFAULT_MESSAGE, Example, completion_for, example_for
from elm_core.training._export import MANIFEST_FILE, FinetuneResult
from elm_core.training._finetune import StepReport, finetune, total_steps
from elm_core.training._invent import (
    INVENT_MANIFEST,
    TERRAINS,
    InventConfig,
    InventResult,
    IterationReport,
    dataset_programs,
    group_advantages,
    invent,
    read_invent_manifest,
    rewards,
)
from elm_core.training._invent_eval import (
    InventionEvaluation,
    Scores,
    TerrainSampler,
    evaluate_invention,
    write_invention_report,
)
from elm_core.training._pretrain import PROGRAMS_FILE, PretrainConfig, ProgramText, pretrain, split_programs
from elm_core.training._pretrain_eval import (
    EVALUATION_SAMPLING,
    PROGRAM_START,
    PretrainEvaluation,
    evaluate_pretrained,
)
from elm_core.training._state import STATE_DIR
from elm_core.training._tokenize import (
    IGNORE_INDEX,
    PromptCompletion,
    TokenizedExample,
    TokenizedSet,
    tokenize_example,
    tokenize_examples,
)

__all__ = [
    "ChildEffect",
    "DATASET_DIR",
    "DATASET_MANIFEST_FILE",
    "DEFAULT_MESSAGE",
    "DEFAULT_STYLE",
    "Dataset",
    "DatasetConfig",
    "DatasetCounts",
    "EVALUATION_SAMPLING",
    "EffectReport",
    "EliteProgram",
    "Example",
    "FinetuneMethod",
    "FinetuneResult",
    "IGNORE_INDEX",
    "INVENT_MANIFEST",
    "InventConfig",
    "InventResult",
    "InventionEvaluation",
    "IterationReport",
    "MANIFEST_FILE",
    "ModelEffect",
    "PROGRAMS_FILE",
    "PROGRAM_START",
    "PretrainConfig",
    "PretrainEvaluation",
    "ProgramText",
    "PromptCompletion",
    "STATE_DIR",
    "Scores",
    "StepReport",
    "TERRAINS",
    "TRAIN_FILE",
    "TerrainSampler",
    "TokenizedExample",
    "TokenizedSet",
    "TrainConfig",
    "TrainingData",
    "VALIDATION_FILE",
    "build_dataset",
    "completion_for",
    "dataset_for_run",
    "dataset_programs",
    "elite_programs",
    "evaluate_invention",
    "evaluate_pretrained",
    "example_for",
    "finetune",
    "group_advantages",
    "invent",
    "measure_finetune_effect",
    "pretrain",
    "read_examples",
    "read_invent_manifest",
    "rewards",
    "shared_archive_config",
    "split_programs",
    "tokenize_example",
    "tokenize_examples",
    "total_steps",
    "training_data",
    "write_dataset",
    "write_invention_report",
]
