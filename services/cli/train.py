"""`elm train finetune` and `elm train pretrain` (stage 2: a model of the programs runs admitted to their
maps), with live progress, and the fine-tuning effect benchmark (`finetune_effect_command`)."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from elm_core.errors import ElmError
from elm_core.models import SamplingConfig, model_name
from elm_core.run import STORE_FILE
from elm_core.spec import RunSpec, run_spec
from elm_core.store import SQLiteStore
from elm_core.training import (
    EVALUATION_SAMPLING,
    MANIFEST_FILE,
    DatasetConfig,
    EliteProgram,
    FinetuneMethod,
    FinetuneResult,
    PretrainConfig,
    StepReport,
    TrainConfig,
    dataset_for_run,
    elite_programs,
    evaluate_pretrained,
    finetune,
    measure_finetune_effect,
    pretrain,
    split_programs,
)
from services.cli._common import console, errors, fail
from services.cli._train_tables import effect_table, pretrain_table, summary_table
from services.cli.models import ModelOpt

train_app = typer.Typer(
    help="Fine-tune the mutation model on its own successful mutations, or pretrain one on runs' programs.",
    no_args_is_help=True,
)
DEFAULTS = TrainConfig()

RunOpt = Annotated[Path, typer.Option(help="An `elm run` directory, or a coordinator store file (*.sqlite).")]
RunIdOpt = Annotated[str | None, typer.Option(help="The run in the store; needed if it holds several.")]
OutOpt = Annotated[
    Path | None,
    typer.Option(help="Checkpoint directory; default <run>/finetune/<run id>-<model>-<method>."),
]
StepsOpt = Annotated[int | None, typer.Option(min=1, help="Optimiser steps in all; overrides --epochs.")]
PatienceOpt = Annotated[
    int, typer.Option(min=0, help="Evaluations without a better validation loss before stopping; 0: never.")
]
IncludeRanOpt = Annotated[
    bool, typer.Option(help="Learn from every mutation whose child ran, not only those the archive accepted.")
]
StyleOpt = Annotated[
    str | None,
    typer.Option(help="One prompt layout for all: diff, instruct or rewrite; default: their own."),
]
DtypeOpt = Annotated[str, typer.Option(help="auto (bfloat16 on GPU, float32 on CPU), float32 or bfloat16.")]
SeqOpt = Annotated[int, typer.Option(min=1, help="Examples longer than this (prompt + answer) are skipped.")]
Positive = Annotated[int, typer.Option(min=1)]
WorkersOpt = Annotated[int, typer.Option(min=1, help="Sandboxes evaluating the programs.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
Train = Callable[[Callable[[StepReport], None]], FinetuneResult]  # a training, given its on_step


class _Stopped(Exception):
    """Ctrl-C: training stops at the next step boundary, after saving its state."""


@train_app.command("finetune")
def finetune_command(
    run: RunOpt,
    run_id: RunIdOpt = None,
    model: ModelOpt = None,
    method: Annotated[str, typer.Option(help="full or lora.")] = DEFAULTS.method.value,
    out: OutOpt = None,
    max_steps: StepsOpt = None,
    epochs: Positive = DEFAULTS.epochs,
    learning_rate: Annotated[float, typer.Option(min=0)] = DEFAULTS.learning_rate,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per micro-batch.")] = DEFAULTS.batch_size,
    grad_accumulation_steps: Positive = DEFAULTS.grad_accumulation_steps,
    max_seq_tokens: SeqOpt = DEFAULTS.max_seq_tokens,
    lora_r: Positive = DEFAULTS.lora_r,
    eval_every_steps: Positive = DEFAULTS.eval_every_steps,
    checkpoint_every_steps: Positive = DEFAULTS.checkpoint_every_steps,
    patience: PatienceOpt = 3,
    include_ran: IncludeRanOpt = False,
    style: StyleOpt = None,
    validation_fraction: Annotated[float, typer.Option(min=0, max=0.99)] = 0.1,
    seed: Annotated[int, typer.Option(min=0)] = DEFAULTS.seed,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = DEFAULTS.device,
    dtype: DtypeOpt = DEFAULTS.dtype,
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads on the CPU.")] = None,
) -> None:
    """Fine-tune on a run's accepted mutations; the same command again resumes an interrupted one."""
    try:
        config = TrainConfig(
            base_model=model_name(model),
            method=method,  # type: ignore[arg-type]
            max_steps=max_steps,
            epochs=epochs,
            learning_rate=learning_rate,
            batch_size=batch_size,
            grad_accumulation_steps=grad_accumulation_steps,
            max_seq_tokens=max_seq_tokens,
            lora_r=lora_r,
            eval_every_steps=eval_every_steps,
            checkpoint_every_steps=checkpoint_every_steps,
            early_stopping_patience=patience or None,
            seed=seed,
            device=device,
            dtype=dtype,
            threads=threads,
        )
        dataset = DatasetConfig(include_ran=include_ran, validation_fraction=validation_fraction, style=style)
        store_path, chosen_run = _store_and_run(run, run_id)
        out = out or _default_out(run, chosen_run, config)
        if (out / MANIFEST_FILE).is_file():
            raise fail(f"{out} already holds a fine-tuned checkpoint; choose another --out")
        with SQLiteStore(store_path) as store:
            data_dir = dataset_for_run(store, chosen_run, out, dataset)
        console.print(f"fine-tuning {config.base_model} ({config.method.value}) into {out}")
        _train(lambda on_step: finetune(config, data_dir, out, on_step=on_step), "fine-tuning")
    except ElmError as e:
        raise fail(str(e)) from e


def _store_and_run(run: Path, run_id: str | None) -> tuple[Path, str]:
    """The store file `run` names (a run directory's, or the file itself) and the run to learn from."""
    store_path = _store_path(run)
    with SQLiteStore(store_path) as store:
        if run_id is not None:
            return store_path, store.get_run(run_id).run_id
        ids = [r.run_id for r in store.list_runs()]
    if len(ids) != 1:
        raise fail(f"{store_path} holds {len(ids)} runs; pick one with --run-id ({', '.join(ids) or 'none'})")
    return store_path, ids[0]


def _store_path(run: Path) -> Path:
    store_path = run / STORE_FILE if run.is_dir() else run
    if not store_path.is_file():
        raise fail(f"{run} is neither an `elm run` directory nor a store file")
    return store_path


def _default_out(run: Path, run_id: str, config: TrainConfig) -> Path:
    root = run if run.is_dir() else run.parent
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(config.base_model).name)
    return root / "finetune" / f"{run_id}-{model}-{config.method.value}"


def _train(train: Train, title: str, shown_on: Console = console) -> FinetuneResult:
    """Runs a training with a progress bar; Ctrl-C stops it at the next step, resumable."""
    stop: list[bool] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[figures]}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=shown_on) as progress:
        task = progress.add_task("loading the model", total=None, figures="")
        shown: dict[str, Any] = {}

        def on_step(report: StepReport) -> None:
            progress.update(task, description="training", completed=report.step, total=report.total_steps,
                            figures=_figures(report, shown))  # fmt: skip
            if stop:
                raise _Stopped

        previous = signal.signal(signal.SIGINT, lambda *_: stop.append(True))
        try:
            result = train(on_step)
        except _Stopped:
            shown_on.print("stopped; the same command resumes from this step")
            raise typer.Exit(1) from None
        finally:
            signal.signal(signal.SIGINT, previous)
    shown_on.print(summary_table(result.metrics, title))
    shown_on.print(f"checkpoint: {result.path}")
    return result


def _figures(report: StepReport, shown: dict[str, Any]) -> str:
    """The step's loss and speed, and the latest validation loss (kept between evaluations)."""
    if report.validation_loss is not None:
        shown["validation"] = f"  validation {report.validation_loss:.4f}"
    return f"loss {report.train_loss:.4f}{shown.get('validation', '')}  {report.tokens_per_s:,.0f} tokens/s"


RunsOpt = Annotated[
    list[Path],
    typer.Option("--runs", help="`elm run` directories or coordinator store files; repeatable."),
]
RunIdsOpt = Annotated[
    list[str] | None,
    typer.Option("--run-id", help="Runs to take (repeatable); default: every run in the stores."),
]
ThresholdOpt = Annotated[
    float,
    typer.Option(min=0, max=1, help="Keep programs at least this share of their cell's best (0.5, 0.8)."),
]
TokensOpt = Annotated[int, typer.Option(min=1, help="Tokens each sampled program may have.")]


@train_app.command("pretrain")
def pretrain_command(
    runs: RunsOpt,
    run_id: RunIdsOpt = None,
    threshold: ThresholdOpt = 0.5,
    model: ModelOpt = None,
    from_scratch: Annotated[
        bool, typer.Option(help="Random weights in the model's architecture, its tokenizer kept.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Checkpoint directory; default <first run>/pretrain/...")
    ] = None,
    samples: Annotated[int, typer.Option(min=1, help="Programs sampled into a fresh map.")] = 1024,
    max_new_tokens: TokensOpt = EVALUATION_SAMPLING.max_new_tokens,
    held_out_fraction: Annotated[
        float, typer.Option(min=0, max=0.99, help="Share held out for validation and completion.")
    ] = 0.1,
    max_steps: StepsOpt = None,
    epochs: Positive = DEFAULTS.epochs,
    learning_rate: Annotated[float, typer.Option(min=0)] = DEFAULTS.learning_rate,
    batch_size: Annotated[int, typer.Option(min=1, help="Programs per micro-batch.")] = DEFAULTS.batch_size,
    grad_accumulation_steps: Positive = DEFAULTS.grad_accumulation_steps,
    max_seq_tokens: Annotated[int, typer.Option(min=1, help="Longer programs are skipped.")] = 2048,
    seed: Annotated[int, typer.Option(min=0)] = DEFAULTS.seed,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = DEFAULTS.device,
    dtype: DtypeOpt = DEFAULTS.dtype,
    workers: WorkersOpt = 2,
    as_json: JsonOpt = False,
) -> None:
    """Stage 2: train a model on the programs runs admitted to their maps, then sample it into a fresh map.

    Programs are kept at --threshold of their cell's best across the runs; held-out ones are completed from
    their first half. The same command again resumes an interrupted training."""
    shown_on = errors if as_json else console
    try:
        train = TrainConfig(base_model=model_name(model), method=FinetuneMethod.FULL,
                            from_scratch=from_scratch, max_steps=max_steps, epochs=epochs,
                            learning_rate=learning_rate, batch_size=batch_size,
                            grad_accumulation_steps=grad_accumulation_steps, max_seq_tokens=max_seq_tokens,
                            early_stopping_patience=None, seed=seed, device=device, dtype=dtype)  # fmt: skip
        config = PretrainConfig(train=train, held_out_fraction=held_out_fraction)
        programs, first_run = _elite_programs(runs, run_id, threshold)
        out = out or _pretrain_out(runs[0], config, threshold)
        if (out / MANIFEST_FILE).is_file():
            raise fail(f"{out} already holds a trained checkpoint; choose another --out")
        start = "from scratch, as " if from_scratch else ""
        shown_on.print(f"{len(programs)} programs at >= {threshold:.0%} of their cell's best; training "
                       f"{start}{train.base_model} into {out}")  # fmt: skip
        _train(lambda on_step: pretrain(config, programs, out, on_step=on_step), "pretraining", shown_on)
        with shown_on.status(f"sampling {samples} programs and completing held-out walkers"):
            evaluation = evaluate_pretrained(
                out, archive_config=first_run.archive, samples=samples, seed=seed, evaluator_workers=workers,
                held_out=[p.source for p in split_programs(programs, held_out_fraction)[1]],
                sim_config=first_run.evaluation.sim, terrain=first_run.evaluation.terrain_model,
                sampling=SamplingConfig(max_new_tokens=max_new_tokens),
            )  # fmt: skip
    except ElmError as e:
        raise fail(str(e)) from e
    if as_json:
        sys.stdout.write(json.dumps(evaluation.to_json() | {"checkpoint": str(out)}) + "\n")
        return
    console.print(pretrain_table(evaluation))


def _elite_programs(
    runs: list[Path], run_ids: list[str] | None, threshold: float
) -> tuple[list[EliteProgram], RunSpec]:
    """The runs' programs above the threshold, and the first run's config (its archive and sim settings)."""
    with ExitStack() as stack:
        chosen: list[tuple[SQLiteStore, str]] = []
        for run in runs:
            store = stack.enter_context(SQLiteStore(_store_path(run)))
            held = [r.run_id for r in store.list_runs()]
            chosen += [(store, r) for r in held if run_ids is None or r in run_ids]
        missing = sorted(set(run_ids or ()) - {r for _, r in chosen})
        if missing or not chosen:
            raise fail(f"no run {', '.join(missing) or 'at all'} in {', '.join(map(str, runs))}")
        return elite_programs(chosen, threshold), run_spec(*chosen[0])


def _pretrain_out(run: Path, config: PretrainConfig, threshold: float) -> Path:
    root = run if run.is_dir() else run.parent
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(config.train.base_model).name)
    start = "scratch" if config.train.from_scratch else "base"
    return root / "pretrain" / f"{model}-{start}-{threshold:g}"


CheckpointOpt = Annotated[Path, typer.Option(help="A checkpoint directory `elm train finetune` wrote.")]


def finetune_effect_command(
    run: RunOpt,
    checkpoint: CheckpointOpt,
    run_id: RunIdOpt = None,
    parents: Annotated[int, typer.Option(min=1, help="Elites mutated by each model.")] = 32,
    seed: Annotated[int, typer.Option(min=0, help="Draws the parents, messages and sampling seed.")] = 0,
    base_model: Annotated[str | None, typer.Option(help="Default: the checkpoint's base model.")] = None,
    style: Annotated[str | None, typer.Option(help="diff, instruct or rewrite; default: the run's.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(min=1, help="Default: the run's.")] = None,
    workers: WorkersOpt = 2,
    as_json: JsonOpt = False,
) -> None:
    """The fine-tuning effect: the base and the fine-tuned model mutate the same parents, side by side.

    For each: how many children apply, run, and would enter the run's map as it stands."""
    try:
        store_path, chosen_run = _store_and_run(run, run_id)
        with SQLiteStore(store_path) as store, console.status(f"mutating {parents} parents with both models"):
            sampling = run_spec(store, chosen_run).mutation.sampling
            if max_new_tokens is not None:
                sampling = dataclasses.replace(sampling, max_new_tokens=max_new_tokens)
            report = measure_finetune_effect(store, chosen_run, checkpoint, base_model=base_model,
                                             parents=parents, seed=seed, style=style,
                                             evaluator_workers=workers, sampling=sampling)  # fmt: skip
    except ElmError as e:
        raise fail(str(e)) from e
    if as_json:
        sys.stdout.write(json.dumps(report.to_json()) + "\n")
        return
    console.print(effect_table(report))
