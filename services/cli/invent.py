"""Stage 3: `elm train invent` (terrain conditioning and RL), `elm bench invent` (the paper's evaluation)
and `elm sample` (walker programs from a model, for a terrain)."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from elm_core.errors import ElmError
from elm_core.training import (
    InventConfig,
    InventionEvaluation,
    IterationReport,
    TerrainSampler,
    evaluate_invention,
    invent,
    write_invention_report,
)
from services.cli._common import console, errors, fail

DEFAULTS = InventConfig()
StageModelOpt = Annotated[str, typer.Option("--model", help="A checkpoint directory (or model name).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
StartOpt = Annotated[
    str, typer.Option(help='The text every sample continues (the programs of the seeds open with """).')
]
ThreadsOpt = Annotated[int | None, typer.Option(min=1, help="torch threads (default: all cores).")]


class _Stopped(Exception):
    pass


def invent_command(
    model: Annotated[str, typer.Option("--model", help="The stage-2 checkpoint (`elm train pretrain`).")],
    out: Annotated[Path, typer.Option(help="The stage-3 checkpoint directory; the same one resumes.")],
    terrains: Annotated[
        str, typer.Option(help="Comma-separated: flat, bumpy, left_wall, right_wall, tunnel.")
    ] = (",".join(DEFAULTS.terrains)),
    iterations: Annotated[int, typer.Option(min=1)] = DEFAULTS.iterations,
    samples_per_iteration: Annotated[
        int, typer.Option(min=2, help="Programs sampled per iteration, split evenly over the terrains.")
    ] = DEFAULTS.samples_per_iteration,
    prompt_tokens: Annotated[int, typer.Option(min=1, help="Soft-prompt vectors per terrain.")] = (
        DEFAULTS.prompt_tokens
    ),
    prompt_warmup_steps: Annotated[
        int, typer.Option(min=0, help="Steps fitting the terrain prompts to the stage-2 dataset before RL.")
    ] = DEFAULTS.prompt_warmup_steps,
    train_model: Annotated[
        bool, typer.Option(help="Train the LM's weights too (--no-train-model: only the terrain prompts).")
    ] = DEFAULTS.train_model,
    learning_rate: Annotated[float, typer.Option(min=0)] = DEFAULTS.learning_rate,
    prompt_learning_rate: Annotated[float, typer.Option(min=0)] = DEFAULTS.prompt_learning_rate,
    kl_coef: Annotated[float, typer.Option(min=0, help="Weight of the KL penalty to the stage-2 model.")] = (
        DEFAULTS.kl_coef
    ),
    max_new_tokens: Annotated[int, typer.Option(min=1)] = DEFAULTS.max_new_tokens,
    temperature: Annotated[float, typer.Option(min=0)] = DEFAULTS.temperature,
    micro_batch: Annotated[int, typer.Option(min=1)] = DEFAULTS.micro_batch,
    failure_reward: Annotated[float, typer.Option(help="The reward of a program that walks nowhere.")] = (
        DEFAULTS.failure_reward
    ),
    sim_seconds: Annotated[float, typer.Option(min=0.1)] = DEFAULTS.sim_seconds,
    workers: Annotated[
        int, typer.Option(min=1, help="Sandboxed evaluator workers.")
    ] = DEFAULTS.evaluator_workers,
    seed: Annotated[int, typer.Option(min=0)] = DEFAULTS.seed,
    start: StartOpt = DEFAULTS.start,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = DEFAULTS.device,
    threads: ThreadsOpt = None,
) -> None:
    """Stage 3: condition the stage-2 model on the terrain and fine-tune it with RL on the walkers' fitness.

    Ctrl-C (or a kill) stops it; the same command resumes from the last finished iteration."""
    try:
        config = InventConfig(terrains=tuple(terrains.split(",")), iterations=iterations,
                              samples_per_iteration=samples_per_iteration, prompt_tokens=prompt_tokens,
                              prompt_warmup_steps=prompt_warmup_steps,
                              train_model=train_model, learning_rate=learning_rate,
                              prompt_learning_rate=prompt_learning_rate, kl_coef=kl_coef,
                              max_new_tokens=max_new_tokens, temperature=temperature,
                              micro_batch=micro_batch, failure_reward=failure_reward,
                              sim_seconds=sim_seconds, evaluator_workers=workers, seed=seed, start=start,
                              device=device, threads=threads)  # fmt: skip
        result = _with_progress(config, model, out)
    except ElmError as e:
        raise fail(str(e)) from e
    console.print(_curve_table(result.history))
    console.print(f"checkpoint: {result.path}  (sample it: elm sample --model {result.path} --terrain "
                  f"{config.terrains[0]}; evaluate it: elm bench invent --model {result.path})")  # fmt: skip


def _with_progress(config: InventConfig, model: str, out: Path):  # type: ignore[no-untyped-def]
    stop: list[bool] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[figures]}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("loading the model", total=config.iterations, figures="")

        def on_iteration(report: IterationReport) -> None:
            rewards = "  ".join(f"{t} {m:+.2f}" for t, m in report.mean_reward.items())
            progress.update(task, description="iterations", completed=report.iteration,
                            figures=f"mean reward: {rewards}  KL {report.kl:.3f}")  # fmt: skip
            if stop:
                raise _Stopped

        previous = signal.signal(signal.SIGINT, lambda *_: stop.append(True))
        try:
            return invent(config, model, out, on_iteration=on_iteration)
        except _Stopped:
            console.print("stopped; the same command resumes from this iteration")
            raise typer.Exit(1) from None
        finally:
            signal.signal(signal.SIGINT, previous)


def _curve_table(history: list[dict]) -> Table:
    """The reward curve: each terrain's mean (and best) reward, at up to 10 iterations evenly spaced."""
    table = Table(title="reward per terrain: mean (best)")
    table.add_column("iteration", justify="right")
    terrains = list(history[0]["mean_reward"]) if history else []
    for terrain in terrains:
        table.add_column(terrain, justify="right")
    table.add_column("KL", justify="right")
    step = max(1, len(history) // 10)
    for row in history[::step] + ([history[-1]] if (len(history) - 1) % step else []):
        cells = [f"{row['mean_reward'][t]:+.2f} ({row['best_reward'][t]:+.2f})" for t in terrains]
        table.add_row(str(row["iteration"]), *cells, f"{row['kl']:.3f}")
    return table


def bench_invent_command(
    model: StageModelOpt,
    n: Annotated[
        int, typer.Option(min=1, help="Programs from each source, per terrain (the paper: 1,024).")
    ] = 64,
    terrains: Annotated[str | None, typer.Option(help="Comma-separated; default: the model's.")] = None,
    stage2: Annotated[
        str | None, typer.Option(help="The stage-2 checkpoint; default: the one it was trained from.")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write an HTML report here (walkers animated).")] = None,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    workers: Annotated[int, typer.Option(min=1)] = 2,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The paper's stage-3 evaluation: per terrain, best-of-N and mean of the conditioned model vs the stage-2
    model and dataset, and whether the conditioning matters."""
    try:
        chosen = terrains.split(",") if terrains else None
        with (errors if as_json else console).status(f"sampling and evaluating {n} programs per source"):
            evaluation = evaluate_invention(model, n=n, terrains=chosen, stage2=stage2, seed=seed,
                                            workers=workers, threads=threads)  # fmt: skip
        if report is not None:
            write_invention_report(evaluation, report)
    except ElmError as e:
        raise fail(str(e)) from e
    if as_json:
        sys.stdout.write(json.dumps(evaluation.to_json()) + "\n")
        return
    console.print(_evaluation_table(evaluation))
    console.print(_cross_table(evaluation))
    if report is not None:
        console.print(f"report: {report}")


def _evaluation_table(e: InventionEvaluation) -> Table:
    table = Table(title=f"stage 3, {e.n} programs per source on each terrain: best / mean reward (walked)")
    table.add_column("terrain")
    for source in ("conditioned model", "stage-2 model", "stage-2 dataset"):
        table.add_column(source, justify="right")
    for t in e.terrains:
        cells = (
            f"{s.best:+.2f} / {s.mean:+.2f} ({s.walked:.0%})"
            for s in (e.conditioned[t], e.stage2_model[t], e.dataset[t])
        )
        table.add_row(t, *cells)
    return table


def _cross_table(e: InventionEvaluation) -> Table:
    table = Table(title="does the conditioning matter? mean reward of programs conditioned on a terrain "
                  "(rows), evaluated on each (columns)")  # fmt: skip
    table.add_column("conditioned on")
    for t in e.terrains:
        table.add_column(t, justify="right")
    for c in e.terrains:
        table.add_row(c, *(f"{e.cross[c][t]:+.2f}" for t in e.terrains))
    return table


def sample_command(
    model: StageModelOpt,
    terrain: Annotated[str | None, typer.Option(help="Condition on this terrain (a stage-3 model).")] = None,
    n: Annotated[int, typer.Option(min=1, help="Programs to sample.")] = 16,
    out: Annotated[Path | None, typer.Option(help="Write each program to OUT/sample-NNN.py.")] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = DEFAULTS.max_new_tokens,
    temperature: Annotated[float, typer.Option(min=0)] = 1.0,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    start: StartOpt = DEFAULTS.start,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sample walker programs (--start and what the model writes after it), conditioned on a terrain for a
    stage-3 model; run them with `elm simulate FILE --terrain T`."""
    try:
        sampler = TerrainSampler(model, threads=threads)
        programs = sampler.sample(n, terrain=terrain, seed=seed, max_new_tokens=max_new_tokens,
                                  temperature=temperature, start=start)  # fmt: skip
    except ElmError as e:
        raise fail(str(e)) from e
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for k, program in enumerate(programs):
            (out / f"sample-{k:03d}.py").write_text(program, encoding="utf-8")
        errors.print(f"wrote {n} programs to {out}")
    if as_json:
        sys.stdout.write(json.dumps({"terrain": terrain, "programs": programs}) + "\n")
    elif out is None:
        for k, program in enumerate(programs):
            console.rule(f"sample {k}")
            console.print(program, markup=False, highlight=False, soft_wrap=True)
