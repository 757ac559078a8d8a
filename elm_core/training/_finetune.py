"""`finetune`: the mutation model trained on its own successful mutations, in one readable loop.

Each step (nanoGPT's order): set the learning rate, run `grad_accumulation_steps` micro-batches forward
and backward (the loss is the mean over the step's completion tokens), clip, step the optimiser; then, every
few steps, the validation loss (early stopping) and a checkpoint of the whole state. Started again on the
same output directory, it resumes from the last saved state and ends where an uninterrupted run would.
torch, transformers and peft are imported here, inside functions, when a fine-tuning starts.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from elm_core.errors import BackendUnavailableError, ConfigError, StateError
from elm_core.models import HFConfig, HFGenerator, load_generator
from elm_core.training._config import FinetuneMethod, TrainConfig
from elm_core.training._data import TrainingData, training_data
from elm_core.training._dataset import Dataset
from elm_core.training._export import FinetuneResult, export_checkpoint
from elm_core.training._state import TrainProgress, load_state, save_state
from elm_core.training._tokenize import IGNORE_INDEX, TokenizedSet, batch_indices, collate, tokenize_examples


@dataclass(frozen=True, kw_only=True)
class StepReport:
    """What one optimiser step did; `validation_loss` is set on the steps that evaluated."""

    step: int
    total_steps: int
    train_loss: float
    learning_rate: float
    tokens_per_s: float
    validation_loss: float | None = None


OnStep = Callable[[StepReport], None]


def finetune(
    config: TrainConfig,
    dataset: TrainingData | Dataset | str | Path,
    out_dir: str | Path,
    *,
    on_step: OnStep | None = None,
    job_id: str = "",
) -> FinetuneResult:
    """Fine-tunes `config.base_model` on `dataset` (a Dataset, a directory `write_dataset` wrote, or
    TrainingData) and writes a checkpoint `load_generator(out_dir)` loads, with its manifest.json. If
    `on_step` raises (to stop), the state is saved first, so running again resumes from that step."""
    started = time.perf_counter()
    out = Path(out_dir)
    trainer = _Trainer(config, training_data(dataset), out)
    resumed_from_step = trainer.progress.step
    trainer.train(on_step)
    return export_checkpoint(
        trainer.model, trainer.tokenizer, out, config=config, dtype=trainer.compute_dtype, data=trainer.data,
        progress=trainer.progress, tokenized=(trainer.train_set, trainer.validation_set),
        resumed_from_step=resumed_from_step, wall_s=time.perf_counter() - started, job_id=job_id,
    )  # fmt: skip


def total_steps(config: TrainConfig, train_examples: int) -> int:
    """`max_steps`, else the optimiser steps of `epochs` passes over the examples."""
    if config.max_steps is not None:
        return config.max_steps
    batches = math.ceil(train_examples / config.batch_size) * config.epochs
    return math.ceil(batches / config.grad_accumulation_steps)


class _Trainer:
    """The model, its optimiser and data, and the training progress."""

    def __init__(self, config: TrainConfig, data: TrainingData, out: Path) -> None:
        import torch

        self.config, self.data, self.out = config, data, out
        generator = _base_generator(config)
        self.tokenizer, self.device = generator.tokenizer, generator.device
        self.compute_dtype = _compute_dtype(config, self.device)
        if self.device.type == "cuda":  # the manifest's peak is this training's, weights included
            torch.cuda.reset_peak_memory_stats(self.device)
        torch.manual_seed(config.seed)  # the LoRA weights' (or from scratch, all weights') initialisation
        self.model = _trainable(_initial(generator.model, config), config)
        self.train_set = tokenize_examples(self.tokenizer, data.train, config.max_seq_tokens)
        self.validation_set = tokenize_examples(self.tokenizer, data.validation, config.max_seq_tokens)
        _check_trainable(data, self.train_set, config)
        weights = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(weights, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.total_steps = total_steps(config, len(self.train_set.examples))
        self.belongs_to = {"config": config.to_json(), "dataset_sha256": data.sha256}
        self.progress = load_state(out, self.model, self.optimizer, self.belongs_to) or TrainProgress()

    def train(self, on_step: OnStep | None) -> None:
        """Steps until the last step or early stopping; `on_step` hears of every step."""
        self.model.train()
        while self.progress.step < self.total_steps and not self.progress.stopped_early:
            report = self._step()
            step = self.progress.step
            if step % self.config.eval_every_steps == 0 or step == self.total_steps:
                report = replace(report, validation_loss=self._evaluate())
            if step % self.config.checkpoint_every_steps == 0:
                self._save()
            if on_step is not None:
                try:
                    on_step(report)
                except BaseException:
                    self._save()  # the caller stops us here: the next run resumes from this step
                    raise

    def _step(self) -> StepReport:
        import torch

        config, progress = self.config, self.progress
        learning_rate = config.learning_rate * min(1.0, (progress.step + 1) / (config.warmup_steps + 1))
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        started = time.perf_counter()
        micro = [self._micro_batch(progress.step * config.grad_accumulation_steps + k)
                 for k in range(config.grad_accumulation_steps)]  # fmt: skip
        completion_tokens = sum(_answer_tokens(batch) for batch in micro)
        loss = 0.0
        for batch in micro:
            part = self._loss_sum(batch) / completion_tokens  # summed over the step: the mean per token
            part.backward()
            loss += part.item()
        if config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - started
        tokens = sum(int(batch["attention_mask"].sum()) for batch in micro)
        self._record_step(loss, tokens, completion_tokens, seconds)
        return StepReport(step=progress.step, total_steps=self.total_steps, train_loss=loss,
                          learning_rate=learning_rate, tokens_per_s=tokens / seconds)  # fmt: skip

    def _record_step(self, loss: float, tokens: int, completion_tokens: int, seconds: float) -> None:
        progress = self.progress
        progress.step += 1
        progress.first_train_loss = loss if progress.first_train_loss is None else progress.first_train_loss
        progress.last_train_loss = loss
        progress.train_tokens += tokens
        progress.completion_tokens += completion_tokens
        progress.train_s += seconds

    def _micro_batch(self, index: int) -> dict[str, Any]:
        examples = self.train_set.examples
        chosen = batch_indices(len(examples), self.config.batch_size, self.config.seed, index)
        return self._tensors(_pick(self.train_set, chosen))

    def _tensors(self, examples: list[Any]) -> dict[str, Any]:
        import torch

        pad_id = self.tokenizer.pad_token_id
        return {k: torch.tensor(v, device=self.device) for k, v in collate(examples, pad_id).items()}

    def _loss_sum(self, batch: dict[str, Any]) -> Any:
        """The cross-entropy summed over the batch's completion tokens (each predicted from those before)."""
        import torch
        import torch.nn.functional as F

        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        mixed = self.compute_dtype != torch.float32  # e.g. float32 weights computed in bfloat16
        with torch.autocast(self.device.type, dtype=self.compute_dtype, enabled=mixed):
            logits = self.model(**inputs, use_cache=False).logits[:, :-1]
        labels = batch["labels"][:, 1:]
        return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX,
                               reduction="sum")  # fmt: skip

    def _evaluate(self) -> float | None:
        """The validation loss per completion token (None without validation examples); early stopping
        counts the evaluations since the best one."""
        import torch

        examples = list(self.validation_set.examples)
        if not examples:
            return None
        self.model.eval()
        total, tokens = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(examples), self.config.batch_size):
                batch = self._tensors(examples[start : start + self.config.batch_size])
                total += self._loss_sum(batch).item()
                tokens += _answer_tokens(batch)
        self.model.train()
        self._record_evaluation(total / tokens)
        return total / tokens

    def _record_evaluation(self, loss: float) -> None:
        progress, patience = self.progress, self.config.early_stopping_patience
        if progress.best_validation_loss is None or loss < progress.best_validation_loss:
            progress.best_validation_loss, progress.evaluations_without_improvement = loss, 0
            return
        progress.evaluations_without_improvement += 1
        progress.stopped_early = patience is not None and progress.evaluations_without_improvement >= patience

    def _save(self) -> None:
        save_state(self.out, self.model, self.optimizer, self.progress, self.belongs_to)


def _answer_tokens(batch: dict[str, Any]) -> int:
    """The tokens the loss is on: labelled ones, each predicted from the tokens before it."""
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


def _check_trainable(data: TrainingData, train_set: TokenizedSet, config: TrainConfig) -> None:
    if not data.train:
        raise StateError(f"run {data.run_id}'s dataset has no training examples (counts: {data.counts})")
    if not train_set.examples:
        raise ConfigError(f"no training example fits in max_seq_tokens={config.max_seq_tokens} "
                          f"(all {len(data.train)} are longer)")  # fmt: skip


def _base_generator(config: TrainConfig) -> HFGenerator:
    """The base model and tokenizer, loaded as the generator loads them. Fully fine-tuned weights are kept in
    float32 (bfloat16 weights would round small updates away) and computed in the dtype policy's type; a
    LoRA base is frozen, so it is loaded in that type directly."""
    dtype = "float32" if config.method is FinetuneMethod.FULL else config.dtype
    settings = HFConfig(device=config.device, dtype=dtype, threads=config.threads)
    generator = load_generator(config.base_model, settings, backend="hf")
    if not isinstance(generator, HFGenerator):
        raise ConfigError(f"fine-tuning needs a transformers model; {config.base_model!r} is not one")
    return generator


def _compute_dtype(config: TrainConfig, device: Any) -> Any:
    """The dtype policy: `auto` is bfloat16 on a GPU and float32 on the CPU."""
    import torch

    if config.dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, config.dtype)


def _initial(model: Any, config: TrainConfig) -> Any:
    """The base model, or (from scratch) a model of its architecture with fresh random weights."""
    if not config.from_scratch:
        return model
    fresh = type(model)(model.config).to(model.device)
    fresh.generation_config = model.generation_config  # its end tokens and sampling defaults
    return fresh


def _trainable(model: Any, config: TrainConfig) -> Any:
    """The model itself for full fine-tuning; for LoRA, the model with adapters (only they train)."""
    if config.method is FinetuneMethod.FULL:
        return model
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:
        raise BackendUnavailableError(f"LoRA needs peft ({e}); install the project's `train` extra") from e
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.lora_target_modules), task_type="CAUSAL_LM")  # fmt: skip
    with warnings.catch_warnings():  # peft asks transformers a question transformers 5 renamed
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
        return get_peft_model(model, lora)


def _pick(tokenized: TokenizedSet, indices: list[int]) -> list[Any]:
    return [tokenized.examples[i] for i in indices]
