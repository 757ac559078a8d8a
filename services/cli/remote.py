"""Commands that talk to a coordinator: `elm submit`, `elm watch`, `elm runs`, `elm archive`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from google.protobuf.json_format import MessageToDict
from rich.console import Group
from rich.live import Live
from rich.table import Table

from elm_core.errors import ElmError, NotFoundError
from elm_core.run import seed_programs
from protos.elm.v1 import coordinator_pb2 as pb
from services.cli._common import console, fail, operator_table
from services.cli.runs import CallsOpt, MixOpt, RunTerrainOpt, SimSecondsOpt, run_settings
from services.client import CoordinatorClient
from services.common import Credentials

CoordinatorOpt = Annotated[
    str, typer.Option("--coordinator", envvar="ELM_COORDINATOR", help="The coordinator's address.")
]
TokenOpt = Annotated[
    str | None,
    typer.Option(envvar="ELM_TOKEN", help="The coordinator API's bearer token (or $ELM_TOKEN_FILE names a "
                 "file holding it); TLS comes from $ELM_TLS_DIR and $ELM_TLS_NAME."),
]  # fmt: skip
DEFAULT_COORDINATOR = "localhost:50051"
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def submit_command(
    seeds: Annotated[
        list[str], typer.Argument(help="Seed program FILEs or seed names (square, radial, ...).")
    ],
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    token: TokenOpt = None,
    run: Annotated[
        str | None, typer.Option(help="Run name; a seed for an existing run is added to it.")
    ] = None,
    operator: Annotated[str | None, typer.Option(help="llm or gp.")] = None,
    budget: Annotated[int | None, typer.Option(min=1, help="Evaluations in all, seeds included.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Children per batch.")] = None,
    terrain: RunTerrainOpt = None,
    sim_seconds: SimSecondsOpt = None,
    calls: CallsOpt = None,
    mix: MixOpt = None,
    rng_seed: Annotated[int | None, typer.Option(help="The run's RNG seed.")] = None,
    config: Annotated[Path | None, typer.Option(help="A TOML file of run settings.")] = None,
    watch: Annotated[bool, typer.Option(help="Follow the run's progress afterwards.")] = False,
) -> None:
    """Create a run on a coordinator from seed programs (or add the seeds to the run named by --run)."""
    try:
        programs = seed_programs(tuple(seeds))
        with CoordinatorClient(coordinator, credentials=credentials(token)) as client:
            existing = _existing(client, run)
            if existing is not None:
                for program in programs:
                    reply = client.submit_seed(existing.run_id, program)
                console.print(f"added {len(programs)} seed(s) to run {reply.run_id} ({reply.status})")
            else:
                settings = run_settings(config, operator=operator, budget=budget, batch_size=batch_size,
                                        rng_seed=rng_seed, calls=calls, mix=mix, terrain=terrain,
                                        sim_seconds=sim_seconds)  # fmt: skip
                values = json.loads(settings.to_json())
                values.pop("seeds")  # the programs themselves travel with the request
                reply = client.create_run(programs, name=run or "", config=values)
                console.print(f"created run {reply.run_id} ({reply.status}); follow it with: "
                              f"elm watch --coordinator {coordinator} {reply.run_id}")  # fmt: skip
            if watch:
                _watch(client, reply.run_id)
    except ElmError as e:
        raise fail(str(e)) from e


def watch_command(
    run: Annotated[str, typer.Argument(help="The run id.")],
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    token: TokenOpt = None,
) -> None:
    """Follow a run's progress live until it ends (Ctrl-C leaves; the run goes on)."""
    try:
        with CoordinatorClient(coordinator, credentials=credentials(token)) as client:
            status = _watch(client, run)
    except ElmError as e:
        raise fail(str(e)) from e
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if status == "FAILED":
        raise typer.Exit(1)


def runs_command(
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """List the coordinator's runs."""
    try:
        with CoordinatorClient(coordinator, credentials=credentials(token)) as client:
            runs = client.list_runs()
    except ElmError as e:
        raise fail(str(e)) from e
    if as_json:
        console.print_json(json.dumps([_summary(r) for r in runs]))
        return
    table = Table(title=f"runs on {coordinator}")
    for column in ("run", "status", "evaluations", "coverage", "best", "created"):
        table.add_column(column, no_wrap=True)
    for r in runs:
        best = f"{r.progress.max_fitness:.2f} m" if r.progress.HasField("max_fitness") else "-"
        table.add_row(r.run_id, r.status, _of_budget(r), f"{r.progress.coverage:.1%}", best,
                      _time(r.created_at))  # fmt: skip
    console.print(table)


def archive_command(
    run: Annotated[str, typer.Argument(help="The run id.")],
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    token: TokenOpt = None,
    top: Annotated[int | None, typer.Option(min=1, help="Only the K fittest elites.")] = None,
    show: Annotated[int | None, typer.Option(help="Print this individual's program instead.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The run's archive, fittest first (or one individual's program with --show ID)."""
    try:
        with CoordinatorClient(coordinator, credentials=credentials(token)) as client:
            if show is not None:
                individual = client.get_individual(run, show)
                if as_json:
                    console.print_json(json.dumps(MessageToDict(individual)))
                else:
                    console.print(individual.source, markup=False, highlight=False, soft_wrap=True)
                return
            elites = client.get_archive(run, top=top)
    except ElmError as e:
        raise fail(str(e)) from e
    if as_json:
        console.print_json(
            json.dumps([MessageToDict(e, always_print_fields_with_no_presence=True) for e in elites])
        )
        return
    table = Table(title=f"archive of {run}: {len(elites)} elites")
    for column in ("individual", "fitness", "height", "width", "mass", "cell"):
        table.add_column(column, justify="right", no_wrap=True)
    for e in elites:
        table.add_row(
            str(e.individual_id), f"{e.fitness:.2f}", *(f"{d:.2f}" for d in e.descriptors), str(e.cell)
        )
    console.print(table)


def _existing(client: CoordinatorClient, run: str | None) -> pb.Run | None:
    if not run:
        return None
    try:
        return client.get_run(run)
    except NotFoundError:
        return None


def _watch(client: CoordinatorClient, run_id: str) -> str:
    with Live(console=console, refresh_per_second=4) as live:
        for event in client.watch_run(run_id):
            live.update(Group(_progress(event.run), operator_table(event.run.operators)))
    run = client.get_run(run_id)
    console.print()
    console.print(f"run {run_id}: {run.status}" + (f" ({run.message})" if run.message else ""))
    return run.status


def _progress(run: pb.Run) -> Table:
    table = Table(title=f"{run.run_id}: {run.status}")
    for column in ("evaluations", "coverage", "QD", "best", "applied", "ran", "inserted", "evals/s"):
        table.add_column(column, justify="right", no_wrap=True)
    p = run.progress
    best = f"{p.max_fitness:.2f} m" if p.HasField("max_fitness") else "-"
    fractions = (p.applied_fraction, p.ran_fraction, p.inserted_fraction)
    table.add_row(_of_budget(run), f"{p.coverage:.1%}", f"{p.qd_score:.1f}", best,
                  *(f"{f:.0%}" for f in fractions), f"{p.evaluations_per_s:.2f}")  # fmt: skip
    return table


def _of_budget(run: pb.Run) -> str:
    return f"{run.evaluations}" + (f" / {run.budget}" if run.budget else "")


def _summary(run: pb.Run) -> dict[str, object]:
    return MessageToDict(run, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def _time(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def credentials(token: str | None) -> Credentials:
    """TLS from the environment; the token from --token, else from the environment."""
    from_env = Credentials.from_env()
    return Credentials(from_env.tls, token or from_env.token)
