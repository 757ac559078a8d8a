"""`elm run` (the embedded ELM run, with live progress) and `elm report`."""

from __future__ import annotations

import contextlib
import signal
import time
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table

from elm_core.errors import ConfigError, ElmError
from elm_core.models import TINY, available, model_name
from elm_core.qd import MIX_OPERATORS, OperatorMix
from elm_core.run import STORE_FILE, create_run, execute_run, load_config, set_budget
from elm_core.spec import RunSpec
from elm_core.store import MetricsRecord, RunStatus, SQLiteStore
from services.cli._common import console, errors, fail, operator_table
from services.cli.models import ModelOpt, pull_with_progress
from services.client import InRunWorld

CallsOpt = Annotated[int | None, typer.Option(min=1, help="Mutations (LLM calls) in all.")]
MixOpt = Annotated[
    str | None,
    typer.Option(help="The LLM's operators: directed, crossover or paper alone, or weights such as "
                 "directed=2,crossover=1,paper=1 (default: the config's operators table)."),
]  # fmt: skip
RunTerrainOpt = Annotated[
    str | None, typer.Option("--terrain", help="flat, bumpy, left_wall, right_wall or tunnel.")
]
SimSecondsOpt = Annotated[float | None, typer.Option("--sim-seconds", help="Simulated seconds per walker.")]
SeedOpt = Annotated[
    list[str] | None,
    typer.Option("--seed", help="square, radial, cppn-fixed, cppn-mutable or a program FILE; repeatable."),
]


def run_command(
    seed: SeedOpt = None,
    operator: Annotated[str | None, typer.Option(help="llm or gp.")] = None,
    model: ModelOpt = None,
    style: Annotated[str | None, typer.Option(help="LLM prompt style: diff, instruct or rewrite.")] = None,
    backend: Annotated[str | None, typer.Option(help="auto, hf or llamacpp.")] = None,
    terrain: RunTerrainOpt = None,
    sim_seconds: SimSecondsOpt = None,
    budget: Annotated[int | None, typer.Option(min=1, help="Evaluations in all, seeds included.")] = None,
    calls: CallsOpt = None,
    mix: MixOpt = None,
    minutes: Annotated[
        float | None, typer.Option(min=0.1, help="Wall-clock budget for this session.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Children per batch.")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Sandboxed evaluator workers (per container with docker:N).")
    ] = None,
    evaluators: Annotated[
        str | None,
        typer.Option(
            help="local (a sandbox pool here) or docker:N (N locked-down evaluator containers, "
            "started and removed by the run)."
        ),
    ] = None,  # fmt: skip
    rng_seed: Annotated[int | None, typer.Option(help="The run's RNG seed.")] = None,
    config: Annotated[Path | None, typer.Option(help="A TOML file of run settings.")] = None,
    out: Annotated[Path | None, typer.Option(help="The run directory; default runs/<date-time>.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this directory.")] = None,
    fallback_gp: Annotated[
        bool, typer.Option(help="If the model cannot be had, say why and use the GP operator.")
    ] = True,
    dashboard: Annotated[
        bool, typer.Option(help="Serve the live dashboard of this run on 127.0.0.1 while it runs.")
    ] = False,
    dashboard_port: Annotated[
        int, typer.Option(min=0, max=65535, help="The dashboard's port (0: any free one).")
    ] = 8080,
) -> None:
    """Run ELM on Sodarace in this process tree: MAP-Elites, sandboxed evaluation, the model in-process."""
    try:
        if resume is not None:
            run_dir = resume
            if budget is not None:
                set_budget(run_dir, budget)
        else:
            flags = dict(seed=seed, operator=operator, model=model, style=style, backend=backend,
                         terrain=terrain, sim_seconds=sim_seconds, evaluators=evaluators,
                         budget=budget, calls=calls, minutes=minutes, mix=mix,
                         batch_size=batch_size, workers=workers, rng_seed=rng_seed)  # fmt: skip
            settings = run_settings(config, **flags)
            settings = _with_model(settings, fallback_gp)
            run_dir = out or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
            create_run(run_dir, settings)
        _execute(run_dir, dashboard_port if dashboard else None)
    except ElmError as e:
        raise fail(str(e)) from e


def report_command(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """Write (again) the run's report.html."""
    from elm_core.report import write_run_report
    from elm_core.run import REPORT_FILE

    try:
        load_config(run_dir)
        with SQLiteStore(run_dir / STORE_FILE) as store:
            (run,) = store.list_runs()
            path = write_run_report(store, run.run_id, run_dir / REPORT_FILE)
    except ElmError as e:
        raise fail(str(e)) from e
    console.print(f"wrote {path}")


def run_settings(config: Path | None, **flags: Any) -> RunSpec:
    values: dict[str, Any] = {}
    if config is not None:
        try:
            values = tomllib.loads(config.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise fail(f"cannot read {config}: {e}") from e
    settings = RunSpec.from_mapping(values)
    given = {name: value for name, value in flags.items() if value is not None}
    if given.get("seed"):
        settings = settings.replace(seeds=tuple(given["seed"]))
    if "rng_seed" in given:
        settings = settings.replace(rng_seed=given["rng_seed"])
    mutation = {k: given[k] for k in ("operator", "model", "style") if k in given}
    evaluation: dict[str, Any] = {"terrain": given["terrain"]} if "terrain" in given else {}
    if "sim_seconds" in given:
        evaluation["sim"] = replace(settings.evaluation.sim, seconds=given["sim_seconds"])
    if "mix" in given:
        mutation["operators"] = parse_mix(given["mix"], settings.mutation.operators)
    embedded = {k: given[k] for k in ("workers", "backend", "evaluators") if k in given}
    loop_flags = (("max_evaluations", "budget"), ("max_mutations", "calls"), ("batch_size", "batch_size"))
    loop = {k: given[f] for k, f in loop_flags if f in given}
    if "minutes" in given:
        loop["max_seconds"] = 60 * given["minutes"]
    settings = settings.replace_in("mutation", **mutation).replace_in("evaluation", **evaluation)
    return settings.replace_in("embedded", **embedded).replace_in("loop", **loop)


def parse_mix(text: str, base: OperatorMix) -> OperatorMix:
    """`directed` (one operator alone) or `directed=2,paper=1` (weights; operators left out weigh 0)."""
    weights = {name: 0.0 for name in MIX_OPERATORS}
    if "=" not in text:
        text = f"{text.strip()}=1"
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name.strip() not in weights:
            raise ConfigError(f"--mix: unknown operator {name.strip()!r}; known: {', '.join(MIX_OPERATORS)}")
        try:
            weights[name.strip()] = float(value)
        except ValueError as e:
            raise ConfigError(f"--mix: {part!r} needs a number after '='") from e
    return replace(base, **weights)


def _with_model(settings: RunSpec, fallback_gp: bool) -> RunSpec:
    """Makes sure the LLM operator's model is there (pulling a registry model once), or falls back to GP."""
    if settings.mutation.operator != "llm":
        return settings
    name = model_name(settings.mutation.model)
    try:
        if not available(name) and name != TINY:
            console.print(f"the model {name} is not cached yet: fetching it once (about 480 MB)")
            pull_with_progress(name)
        return settings.replace_in("mutation", model=name)
    except ElmError as e:
        if not fallback_gp:
            raise
        errors.print(f"[yellow]cannot use the model {name}:[/yellow] {e}\n[yellow]running the GP operator "
                     "instead (--no-fallback-gp to stop here)[/yellow]")  # fmt: skip
        return settings.replace_in("mutation", operator="gp")


def _execute(run_dir: Path, dashboard_port: int | None) -> None:
    settings = load_config(run_dir)
    loop = settings.loop
    mutation = settings.mutation
    llm = f"llm {mutation.model} (style {mutation.style or 'default'}, backend {settings.embedded.backend})"
    label = mutation.operator if mutation.operator == "gp" else llm
    budget = [f"{loop.max_evaluations} evaluations"] if loop.max_evaluations else []
    budget += [f"{loop.max_seconds / 60:g} minutes"] if loop.max_seconds else []
    world = f"{settings.evaluation.terrain} terrain, {settings.evaluation.sim.seconds:g} s"
    console.print(f"run {run_dir}: {label}, seeds {', '.join(settings.seeds)}, {world}, "
                  f"budget {' or '.join(budget) or 'none (Ctrl-C pauses)'}")  # fmt: skip
    loops = []
    reader = SQLiteStore(run_dir / STORE_FILE)
    (run,) = reader.list_runs()

    def show(metrics: MetricsRecord) -> None:
        live.update(Group(_progress(metrics, settings), operator_table(reader.operator_stats(run.run_id))))

    with reader, Live(_progress(None, settings), console=console, refresh_per_second=4) as live:
        previous = signal.signal(
            signal.SIGINT, lambda *_: [loop.request_stop(RunStatus.PAUSED) for loop in loops]
        )
        try:
            with contextlib.ExitStack() as stack:
                if dashboard_port is not None:
                    _serve_dashboard(run_dir, dashboard_port, stack)
                evaluator = _evaluator(settings, stack)
                outcome = execute_run(run_dir, evaluator=evaluator, on_batch=show, on_start=loops.append)
        finally:
            signal.signal(signal.SIGINT, previous)
    stats = outcome.stats
    console.print()
    console.print(
        f"{outcome.status.value}: loop overhead {stats.overhead_ms_per_evaluation:.2f} ms per evaluation"
    )
    if outcome.status is RunStatus.PAUSED:
        console.print(f"paused; continue with: elm run --resume {run_dir}")
    console.print(f"report: {outcome.report}")


def _serve_dashboard(run_dir: Path, port: int, stack: contextlib.ExitStack) -> None:
    """The run's live dashboard on 127.0.0.1 for as long as the run goes on."""
    from services.dashboard import DashboardThread, StoreSource, create_app

    source = StoreSource(run_dir)
    stack.callback(source.close)
    app = create_app(source, source_name=f"run {run_dir}")
    server = stack.enter_context(DashboardThread(app, port=port))
    console.print(f"dashboard: {server.url}/runs/{source.runs()[0].run_id} (it stops with the run; "
                  f"`elm dashboard --store {run_dir}` shows it again)")  # fmt: skip


def _evaluator(settings: RunSpec, stack: contextlib.ExitStack) -> InRunWorld | None:
    """`docker:N`: N evaluator containers for this session, removed when it ends; None: the local pool."""
    if settings.embedded.containers is None:
        return None
    from services.client import DockerEvaluators

    console.print(f"starting {settings.embedded.containers} evaluator containers")
    fleet = stack.enter_context(
        DockerEvaluators(settings.embedded.containers, workers=settings.embedded.workers or 1)
    )
    return InRunWorld(fleet, settings.evaluation)


def _progress(metrics: MetricsRecord | None, settings: RunSpec) -> Table:
    table = Table(title="ELM on Sodarace", show_header=True)
    for column in ("evaluations", "coverage", "QD", "best", "applied", "ran", "inserted", "evals/s"):
        table.add_column(column, justify="right", no_wrap=True)
    if metrics is None:
        table.add_row("evaluating the seeds...", *[""] * 7)
        return table
    budget = settings.loop.max_evaluations
    best = "-" if metrics.max_fitness is None else f"{metrics.max_fitness:.2f} m"
    table.add_row(
        f"{metrics.evaluations}" + (f" / {budget}" if budget else ""), f"{metrics.coverage:.1%}",
        f"{metrics.qd_score:.1f}", best, f"{metrics.applied_fraction:.0%}", f"{metrics.ran_fraction:.0%}",
        f"{metrics.inserted_fraction:.0%}", f"{metrics.evaluations_per_s:.2f}",
    )  # fmt: skip
    return table
