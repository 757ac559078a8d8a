"""`elm model pull|list` and `elm mutate`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from elm_core.errors import ElmError
from elm_core.models import KNOWN_MODELS, TINY, SamplingConfig, cache_dir, cached_models, pull, tiny_model
from services.cli._common import console, fail

model_app = typer.Typer(
    help="Models: fetch them into the cache and list what is there.", no_args_is_help=True
)

ModelOpt = Annotated[
    str | None,
    typer.Option(
        help="Registry name, `tiny`, model directory, .gguf file or hub id; default $ELM_MODEL or "
        "qwen2.5-coder-0.5b."
    ),  # fmt: skip
]


@model_app.command("pull")
def pull_command(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join([*KNOWN_MODELS, TINY])}.")],
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if cached.")] = False,
) -> None:
    """Fetch a known model into the cache (verified, converted once to safetensors); `tiny` is built there."""
    try:
        path = tiny_model() if name == TINY else pull_with_progress(name, force=force)
    except ElmError as e:
        raise fail(str(e)) from e
    console.print(f"{name} is ready at {path}")


def pull_with_progress(name: str, *, force: bool = False) -> Path:
    columns = (TextColumn("{task.description:<10}"), BarColumn(), DownloadColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        return pull(name, force=force, progress=report)


@model_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per model.")] = False,
) -> None:
    """Show the known models and what is in the cache."""
    cached = {m.name: m for m in cached_models()}
    if as_json:
        for name, spec in KNOWN_MODELS.items():
            entry = cached.get(name)
            record = {"name": name, "cached": entry is not None, "path": str(entry.path) if entry else None,
                      "license": spec.license, "style": spec.style, "hub_id": spec.hub_id}  # fmt: skip
            sys.stdout.write(json.dumps(record) + "\n")
        return
    table = Table(title=f"models (cache: {cache_dir()})")
    for column in ("name", "cached", "size", "license", "style", "source"):
        table.add_column(column)
    for name, spec in KNOWN_MODELS.items():
        entry = cached.pop(name, None)
        size = f"{entry.size_bytes / 1e6:.0f} MB" if entry else ""
        source = entry.source if entry else spec.hub_id
        table.add_row(name, "yes" if entry else "no", size, spec.license, spec.style, source)
    for name, entry in cached.items():
        table.add_row(name, "yes", f"{entry.size_bytes / 1e6:.0f} MB", entry.license, "", entry.source)
    table.add_row("tiny", "built on use", "", "-", "rewrite", "random weights, for tests and trials")
    console.print(table)


def mutate_command(
    program: Annotated[Path, typer.Argument(help="The parent program (.py) or a seed name.")],
    operator: Annotated[str, typer.Option(help="llm or gp.")] = "llm",
    style: Annotated[
        str | None, typer.Option(help="diff, instruct or rewrite; default: the model's.")
    ] = None,
    n: Annotated[int, typer.Option(min=1, help="Children to make.")] = 4,
    model: ModelOpt = None,
    backend: Annotated[str, typer.Option(help="auto, hf or llamacpp.")] = "auto",
    max_new_tokens: Annotated[int, typer.Option(min=1)] = SamplingConfig().max_new_tokens,
    temperature: Annotated[float, typer.Option(min=0.0)] = SamplingConfig().temperature,
    seed: Annotated[int, typer.Option(help="RNG seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per child.")] = False,
) -> None:
    """Mutate a program and print the children with their outcomes."""
    from elm_core.mutation import build_mutator
    from elm_core.run import seed_programs

    try:
        (parent,) = seed_programs((str(program),))
        sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature)
        with console.status("loading the model..." if operator == "llm" else "mutating..."):
            mutator = build_mutator(operator, model=model, style=style, sampling=sampling, backend=backend)
        with console.status(f"making {n} children..."):
            children = mutator.mutate([parent] * n, np.random.default_rng(seed))
    except ElmError as e:
        raise fail(str(e)) from e
    for k, child in enumerate(children):
        if as_json:
            record = {"outcome": child.outcome.value, "operator": child.operator, "style": child.style,
                      "message": child.message, "source": child.source, "raw_output": child.raw_output,
                      "detail": child.detail}  # fmt: skip
            sys.stdout.write(json.dumps(record) + "\n")
            continue
        console.rule(f"child {k}: {child.outcome.value} ({child.operator}/{child.style}) {child.message}")
        console.print(
            child.source if child.ok else f"[dim]{child.detail}[/dim]\n{child.raw_output}", markup=False
        )


def bench_bugfix_command(
    operator: Annotated[list[str] | None, typer.Option(help="gp and/or llm; repeatable.")] = None,
    style: Annotated[str | None, typer.Option(help="LLM prompt style: diff, instruct or rewrite.")] = None,
    model: ModelOpt = None,
    backend: Annotated[str, typer.Option(help="auto, hf or llamacpp.")] = "auto",
    bugs: Annotated[str, typer.Option(help="Bug counts, e.g. 1-5 or 1,3,5.")] = "1-5",
    trials: Annotated[int, typer.Option(min=1, help="Single mutations per bug count.")] = 100,
    workers: Annotated[int, typer.Option(min=1, help="Sandboxes testing the children.")] = 2,
    seed: Annotated[int, typer.Option(help="RNG seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows instead of a table.")] = False,
) -> None:
    """The paper's 4-bit-parity repair test: success rate per number of bugs, operators side by side."""
    from elm_core.mutation import BUGFIX_MESSAGE, BUGFIX_TASK, PAPER_SUCCESS_RATES, build_mutator, run_bugfix
    from elm_core.sandbox import SandboxPool

    counts = _bug_counts(bugs)
    rows: list[dict] = []
    try:
        with SandboxPool(workers=workers) as pool:
            for name in operator or ["gp"]:
                with console.status(f"{name}: {trials} mutations per bug count..."):
                    mutator = build_mutator(name, model=model, style=style, backend=backend, parallel=16,
                                            messages=((BUGFIX_MESSAGE, 1.0),), task=BUGFIX_TASK)  # fmt: skip
                    found = run_bugfix(mutator, bugs=counts, trials=trials, pool=pool,
                                       rng=np.random.default_rng(seed))  # fmt: skip
                label = name if name == "gp" else f"llm/{mutator.config.style.value}"
                rows += [dict(operator=label, bugs=r.bugs, trials=r.trials, applied=r.applied, ran=r.ran,
                              solved=r.solved, success_rate=r.success_rate) for r in found]  # fmt: skip
    except ElmError as e:
        raise fail(str(e)) from e
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table(title="bug fixing (4-bit parity): success rate of single mutations")
    for column in (
        "operator",
        "bugs",
        "trials",
        "applied",
        "ran",
        "solved",
        "success",
        "paper: diff",
        "paper: GP",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        paper = [f"{PAPER_SUCCESS_RATES[k][r['bugs']]:.3%}" for k in ("diff", "gp")]
        table.add_row(r["operator"], str(r["bugs"]), str(r["trials"]), str(r["applied"]), str(r["ran"]),
                      str(r["solved"]), f"{r['success_rate']:.2%}", *paper)  # fmt: skip
    console.print(table)


def _bug_counts(spec: str) -> list[int]:
    try:
        if "-" in spec:
            low, high = (int(x) for x in spec.split("-"))
            return list(range(low, high + 1))
        return [int(x) for x in spec.split(",")]
    except ValueError as e:
        raise fail(f"--bugs: expected a range like 1-5 or a list like 1,3,5, got {spec!r}") from e
