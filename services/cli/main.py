"""`elm`: run ELM on Sodarace, and the tools around it: walkers, the sandbox, models, mutation, benchmarks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from elm_core.errors import ElmError
from elm_core.sodarace import SEED_NAMES, SimConfig, Terrain, simulate
from services.cli._common import console, fail
from services.cli.dashboard import dashboard_command
from services.cli.inputs import LoadedWalker, load_walkers, seed_walkers
from services.cli.invent import bench_invent_command, invent_command, sample_command
from services.cli.models import bench_bugfix_command, model_app, mutate_command
from services.cli.remote import archive_command, runs_command, submit_command, watch_command
from services.cli.runs import report_command, run_command
from services.cli.serve import certs_command, serve_app
from services.cli.train import finetune_effect_command, train_app

app = typer.Typer(help="Evolution through Large Models on Sodarace.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print a table.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(model_app, name="model")
app.command("mutate")(mutate_command)
bench_app.command("bugfix")(bench_bugfix_command)
bench_app.command("finetune-effect")(finetune_effect_command)
bench_app.command("invent")(bench_invent_command)
train_app.command("invent")(invent_command)
app.command("sample")(sample_command)
app.command("run")(run_command)
app.command("report")(report_command)
app.add_typer(serve_app, name="serve")
app.add_typer(train_app, name="train")
app.command("submit")(submit_command)
app.command("watch")(watch_command)
app.command("runs")(runs_command)
app.command("archive")(archive_command)
app.command("certs")(certs_command)
app.command("dashboard")(dashboard_command)

SpecArg = Annotated[str, typer.Argument(help="A walker program (.py), a walker (.json), or a seed name.")]
TerrainOpt = Annotated[str, typer.Option(help="flat, bumpy, left_wall, right_wall or tunnel.")]
SecondsOpt = Annotated[float, typer.Option(help="Simulated seconds.")]
DEFAULT_SECONDS = SimConfig().seconds


def _load(specs: list[str]) -> list[LoadedWalker]:
    try:
        return load_walkers(specs)
    except ElmError as e:
        raise fail(str(e)) from e


def _settings(terrain: str, seconds: float) -> tuple[SimConfig, Terrain]:
    try:
        return SimConfig(seconds=seconds), Terrain.named(terrain)
    except ElmError as e:
        raise fail(str(e)) from e


@app.command("simulate")
def simulate_command(
    spec: SpecArg,
    terrain: TerrainOpt = "flat",
    seconds: SecondsOpt = DEFAULT_SECONDS,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run a walker program in the sandbox, simulate its walker, print fitness and descriptors."""
    config, world = _settings(terrain, seconds)
    (loaded,) = _load([spec])
    report: dict = {
        "status": loaded.result.status.value,
        "message": loaded.result.message,
        "fitness": None,
        "descriptors": None,
        "walker": None,
        "steps": 0,
    }
    if loaded.result.ok:
        walker = loaded.result.walker
        result = simulate(walker, config, world)
        report |= {
            "status": result.status.value,
            "message": result.message,
            "fitness": result.fitness,
            "descriptors": result.descriptors.to_dict(),
            "walker": walker.to_dict(),
            "steps": result.steps,
        }
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        _print_simulation(loaded.name, report)
    if report["status"] != "OK":
        raise typer.Exit(1)


def _print_simulation(name: str, report: dict) -> None:
    table = Table(title=name, show_header=False)
    table.add_row("status", report["status"] + (f": {report['message']}" if report["message"] else ""))
    if report["fitness"] is not None:
        table.add_row("fitness (x displacement)", f"{report['fitness']:.3f}")
        for key, value in report["descriptors"].items():
            table.add_row(key, f"{value:.3f}")
        table.add_row("steps", str(report["steps"]))
    console.print(table)


@app.command("render")
def render_command(
    spec: SpecArg,
    out: Annotated[
        Path, typer.Option(help="Output file: .gif (animation), .html (animation) or .png (still).")
    ],
    terrain: TerrainOpt = "flat",
    seconds: SecondsOpt = DEFAULT_SECONDS,
) -> None:
    """Simulate a walker and draw it: an animated GIF or HTML page, or a still PNG."""
    from elm_core.sodarace import render_film

    config, world = _settings(terrain, seconds)
    if out.suffix not in (".gif", ".html", ".png"):
        raise fail(f"--out must end in .gif, .html or .png, got {out.name!r}")
    (loaded,) = _load([spec])
    if not loaded.result.ok:
        raise fail(f"{loaded.name}: {loaded.result.status.value}: {loaded.result.message}", code=1)
    try:
        path = render_film(loaded.result.walker, config, world, out, title=loaded.name)
    except ElmError as e:
        raise fail(str(e), code=1) from e
    console.print(f"wrote {path}")


@app.command("gallery")
def gallery_command(
    specs: Annotated[
        list[str] | None, typer.Argument(help="Walkers to show; default: the four seeds.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("out"),
    terrain: TerrainOpt = "flat",
    seconds: SecondsOpt = DEFAULT_SECONDS,
) -> None:
    """Simulate walkers and write their animations and a summary page (index.html) to --out."""
    from elm_core.report import GalleryEntry, write_gallery

    config, world = _settings(terrain, seconds)
    with console.status("running the programs in the sandbox, simulating and rendering..."):
        entries = [GalleryEntry(loaded.name, loaded.result) for loaded in _load(specs or list(SEED_NAMES))]
        index = write_gallery(entries, config, world, out)
    for entry in entries:
        console.print(f"  {entry.name:<14} {entry.summary}")
    console.print(f"wrote {index}")


@bench_app.command("sim")
def bench_sim_command(
    walker: Annotated[
        list[str] | None, typer.Option(help="Walker(s) to time; default: the seeds and 30j/80m.")
    ] = None,
    steps: Annotated[int, typer.Option(min=1, help="Steps per timed loop.")] = 2000,
    repeat: Annotated[int, typer.Option(min=1, help="Timed loops per figure (the best is kept).")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows instead of a table.")] = False,
) -> None:
    """Time the simulator against the engine's floor (space.step) and the naive per-step loop."""
    from elm_core.sodarace.bench import bench_walker, benchmark_walker

    if walker:
        named = []
        for loaded in _load(walker):
            if not loaded.result.ok:
                raise fail(f"{loaded.name}: {loaded.result.status.value}: {loaded.result.message}", code=1)
            named.append((loaded.name, loaded.result.walker))
    else:
        named = [*seed_walkers(), ("30j/80m", benchmark_walker())]
    rows = [bench_walker(name, w, steps=steps, repeat=repeat) for name, w in named]
    if as_json:
        sys.stdout.write(json.dumps([row.to_dict() for row in rows]) + "\n")
        return
    console.print(sim_bench_table(rows))


def sim_bench_table(rows: list) -> Table:
    table = Table(title="simulator: µs per step (best of repeats); targets: ours/floor ≤ 1.5, naive/ours ≥ 3")
    columns = (
        "walker",
        "joints",
        "muscles",
        "floor",
        "ours",
        "naive",
        "ours/floor",
        "naive/ours",
        "naive/floor",
        "evals/s",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "walker" else "right", no_wrap=True)
    for r in rows:
        table.add_row(
            r.walker,
            str(r.joints),
            str(r.muscles),
            f"{r.floor_us:.2f}",
            f"{r.fast_us:.2f}",
            f"{r.naive_us:.2f}",
            f"{r.over_floor:.2f}",
            f"{r.speedup_over_naive:.2f}",
            f"{r.speedup_ceiling:.2f}",
            f"{r.evals_per_s:.0f}",
        )
    table.caption = "floor = pymunk space.step() alone; naive/floor = the best any muscle update could do"
    return table


@app.command("sandbox")
def sandbox_command(
    program: Annotated[Path | None, typer.Argument(help="A walker program to run in the sandbox.")] = None,
    doctor: Annotated[
        bool, typer.Option("--doctor", help="Print each isolation layer and whether it is active.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run a program in the sandbox and print its outcome, or list the isolation layers this host allows."""
    from elm_core.sandbox import Sandbox

    if doctor == (program is not None):
        raise fail("give either a PROGRAM or --doctor")
    try:
        with Sandbox() as sandbox:
            if doctor:
                _print_layers(sandbox.layers, as_json)
                return
            result = sandbox.run(program.read_bytes())
    except (ElmError, OSError) as e:
        raise fail(str(e)) from e
    report = {"status": result.status.value, "message": result.message,
              "walker": result.walker.to_dict() if result.walker else None, "output": result.output,
              "timings": result.timings}  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        console.print(f"[bold]{report['status']}[/bold] {report['message']}")
        console.print(f"timings (ms): {', '.join(f'{k} {v:.1f}' for k, v in result.timings.items())}")
    if not result.ok:
        raise typer.Exit(1)


def _print_layers(layers: dict, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(
            json.dumps({k.value: {"active": a, "detail": d} for k, (a, d) in layers.items()}) + "\n"
        )
        return
    table = Table(title="sandbox layers on this host")
    for column in ("layer", "active", "detail"):
        table.add_column(column)
    for layer, (active, detail) in layers.items():
        table.add_row(layer.value, "[green]yes[/green]" if active else "[red]no[/red]", detail)
    console.print(table)


if __name__ == "__main__":
    app()
