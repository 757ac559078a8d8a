"""`elm train finetune`: fine-tune the mutation model on a run's successful mutations, with live progress."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from elm_core.errors import ElmError
from elm_core.models import model_name
from elm_core.run import STORE_FILE
from elm_core.store import SQLiteStore
from elm_core.training import MANIFEST_FILE, DatasetConfig, StepReport, TrainConfig, dataset_for_run, finetune
from services.cli._common import console, fail
from services.cli.models import ModelOpt

train_app = typer.Typer(
    help="Fine-tune the mutation model on its own successful mutations.", no_args_is_help=True
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
        _train(config, data_dir, out)
    except ElmError as e:
        raise fail(str(e)) from e


def _store_and_run(run: Path, run_id: str | None) -> tuple[Path, str]:
    """The store file `run` names (a run directory's, or the file itself) and the run to learn from."""
    store_path = run / STORE_FILE if run.is_dir() else run
    if not store_path.is_file():
        raise fail(f"{run} is neither an `elm run` directory nor a store file")
    with SQLiteStore(store_path) as store:
        if run_id is not None:
            return store_path, store.get_run(run_id).run_id
        ids = [r.run_id for r in store.list_runs()]
    if len(ids) != 1:
        raise fail(f"{store_path} holds {len(ids)} runs; pick one with --run-id ({', '.join(ids) or 'none'})")
    return store_path, ids[0]


def _default_out(run: Path, run_id: str, config: TrainConfig) -> Path:
    root = run if run.is_dir() else run.parent
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(config.base_model).name)
    return root / "finetune" / f"{run_id}-{model}-{config.method.value}"


def _train(config: TrainConfig, data_dir: Path, out: Path) -> None:
    console.print(f"fine-tuning {config.base_model} ({config.method.value}) into {out}")
    stop: list[bool] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[figures]}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("loading the model", total=None, figures="")
        shown: dict[str, Any] = {}

        def on_step(report: StepReport) -> None:
            progress.update(task, description="training", completed=report.step, total=report.total_steps,
                            figures=_figures(report, shown))  # fmt: skip
            if stop:
                raise _Stopped

        previous = signal.signal(signal.SIGINT, lambda *_: stop.append(True))
        try:
            result = finetune(config, data_dir, out, on_step=on_step)
        except _Stopped:
            console.print("stopped; the same command resumes from this step")
            raise typer.Exit(1) from None
        finally:
            signal.signal(signal.SIGINT, previous)
    console.print(_summary(result.metrics))
    console.print(f"checkpoint: {result.path}")


def _figures(report: StepReport, shown: dict[str, Any]) -> str:
    """The step's loss and speed, and the latest validation loss (kept between evaluations)."""
    if report.validation_loss is not None:
        shown["validation"] = f"  validation {report.validation_loss:.4f}"
    return f"loss {report.train_loss:.4f}{shown.get('validation', '')}  {report.tokens_per_s:,.0f} tokens/s"


def _summary(metrics: dict[str, float]) -> Table:
    table = Table(title="fine-tuning", show_header=False)
    for name, value in metrics.items():
        table.add_row(name, f"{value:,.4g}" if value % 1 else f"{value:,.0f}")
    return table
