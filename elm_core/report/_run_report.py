"""The run report: one self-contained HTML page about a stored run (what `elm run` writes at the end).

The page has no scripts and no external references: charts are inline SVG, animations base64 GIFs, and a
Content-Security-Policy forbids anything else. Programs and model output are untrusted, so every string
read from the store is HTML-escaped before it reaches the page.
"""

from __future__ import annotations

import base64
import difflib
import html
import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from elm_core.errors import ConfigError, ElmError, InvalidRequestError
from elm_core.report._charts import (
    Axis,
    ColourScale,
    Series,
    heat_map,
    line_chart,
    running_mean,
    scatter,
    small_multiples,
)
from elm_core.sodarace import Walker, record, render_gif
from elm_core.spec import RunSpec, run_spec
from elm_core.store import EliteRecord, IndividualRecord, MetricsRecord, OperatorStats, RunRecord, SQLiteStore

REPORT_GIF_SIZE = (320, 180)
_GIF_FRAMES = 40  # at most; a 10 s run becomes 4 frames a second, about 100-400 kB a walker
_MEAN_WINDOW = 10  # batches in the running mean of the per-batch fractions
MAX_LINEAGE_STEPS = 60  # a longer lineage shows its seed and its last steps
_DESCRIPTORS = ("height", "width", "mass")
_COLOURS = ("#2f7fc1", "#e4572e", "#3aa76d")
_NONE = "—"


@dataclass
class _Tallies:
    """Counts over every mutation and individual of the run, read a page at a time."""

    outcomes: dict[str, int]
    mutations: int = 0
    flags: Counter[str] = field(default_factory=Counter)  # applied / ran / inserted
    statuses: Counter[str] = field(default_factory=Counter)
    messages: dict[int, str] = field(default_factory=dict)  # child id -> the commit message asked for
    best_seed: float | None = None  # the fittest seed's fitness, to say how far evolution went beyond it
    operators: list[OperatorStats] = field(default_factory=list)


def _spec(store: SQLiteStore, run_id: str) -> RunSpec:
    """The run's spec; a report of a run whose stored spec no longer decodes shows the defaults."""
    try:
        return run_spec(store, run_id)
    except ConfigError:
        return RunSpec()


def write_run_report(store: SQLiteStore, run_id: str, out_path: Path, *, top: int = 4) -> Path:
    """Writes one self-contained HTML report of run `run_id` to `out_path` (atomically) and returns it."""
    if top < 0:
        raise InvalidRequestError(f"top must be >= 0, got {top}")
    run = store.get_run(run_id)
    settings = _spec(store, run_id)
    metrics = store.metrics(run_id)
    best = store.top_elites(run_id, max(top, 1))
    lineage = store.lineage(run_id, best[0].individual_id) if best else []
    tallies = _tally(store, run_id, {step.individual_id for step in lineage})
    sections = [
        _header(run, settings, metrics, tallies.best_seed),
        _map_section(store.elites(run_id), settings),
        _curves_section(metrics),
        _walkers_section(store, run_id, best[:top], settings),
        _lineage_section(lineage, tallies.messages),
        _outcomes_section(tallies),
    ]
    return _write_atomically(Path(out_path), _page(run, sections))


def _tally(store: SQLiteStore, run_id: str, lineage_ids: set[int]) -> _Tallies:
    tallies = _Tallies(outcomes=store.mutation_outcome_counts(run_id), operators=store.operator_stats(run_id))
    for m in store.iter_mutations(run_id):
        tallies.mutations += 1
        tallies.flags.update(name for name in ("applied", "ran", "inserted") if getattr(m, name))
        if m.child_id in lineage_ids:
            tallies.messages[m.child_id] = m.message
    seeds = []
    for individual in store.iter_individuals(run_id):
        tallies.statuses[individual.status] += 1
        if individual.parent_id is None and individual.fitness is not None:
            seeds.append(individual.fitness)
    tallies.best_seed = max(seeds, default=None)
    return tallies


# -- 1. header ------------------------------------------------------------------------------------------


def _header(run: RunRecord, settings: RunSpec, metrics: list[MetricsRecord], best_seed: float | None) -> str:
    last = metrics[-1] if metrics else None
    beyond = _NONE
    if last and last.max_fitness is not None and best_seed is not None:
        beyond = f"{last.max_fitness - best_seed:+.2f} m over the best seed ({best_seed:.2f} m)"
    facts = {
        "status": run.status.value,
        "operator": settings.mutation.operator,
        "model": settings.mutation.model or _NONE,
        "style": settings.mutation.style or _NONE,
        "terrain": settings.evaluation.terrain,
        "evaluations": f"{run.evaluations:,}",
        "batches": f"{run.batches:,}",
        "elapsed": _duration(last.elapsed_s) if last else _NONE,
        "evaluations/s": f"{last.evaluations_per_s:.2f}" if last else _NONE,
        "coverage": f"{100 * last.coverage:.1f}% ({last.filled:,} cells)" if last else _NONE,
        "QD score": f"{last.qd_score:,.2f}" if last else _NONE,
        "max fitness": _number(last.max_fitness) if last else _NONE,
        "best vs seed": beyond,
    }
    cells = "".join(
        f"<div><dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd></div>" for k, v in facts.items()
    )
    times = f"created {_when(run.created_at)} · updated {_when(run.updated_at)}"
    return (
        f'<header><h1>{html.escape(run.name)}</h1><p class="sub">run <code>{html.escape(run.run_id)}</code>'
        f' · {times}</p><dl class="facts">{cells}</dl></header>'
    )


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{seconds:.1f} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: float | None) -> str:
    return _NONE if value is None else f"{value:+.3f}"


# -- 2. the map ----------------------------------------------------------------------------------------


def _map_section(elites: list[EliteRecord], settings: RunSpec) -> str:
    if not elites:
        return _section("map", "Archive", _note("The archive is empty: no elites yet."))
    scale = ColourScale(min(e.fitness for e in elites), max(e.fitness for e in elites))
    legend = f'<div class="legend">{scale.legend("fitness")}</div>'
    summary = f"<p>{len(elites):,} elites; fitness from {scale.lo:+.3f} to {scale.hi:+.3f}.</p>"
    archive = settings.archive
    grid = archive.kind == "grid" and len(archive.dims) in (2, 3)
    body = _grid_maps(elites, settings, scale) if grid else _elite_scatter(elites, settings, scale)
    return _section("map", "Archive", summary + body + legend)


def _grid_maps(elites: list[EliteRecord], settings: RunSpec, scale: ColourScale) -> str:
    dims = settings.archive.dims
    grid = np.full(dims, np.nan)
    for e in elites:
        if 0 <= e.cell < grid.size:
            grid[np.unravel_index(e.cell, dims)] = e.fitness
    height, width, *mass = (
        Axis(n, r, d) for n, r, d in zip(_DESCRIPTORS, settings.archive.ranges, dims, strict=False)
    )
    projection = np.fmax.reduce(grid, axis=2) if mass else grid  # fmax: NaN only where every bin is empty
    main = heat_map(projection, scale, x=width, y=height, label="best fitness over height and width",
                    cell_px=min(28.0, 360 / max(dims[:2])))  # fmt: skip
    caption = "Best fitness per height × width cell" + (", over all mass bins" if mass else "")
    figure = f'<figure id="map-projection">{main}<figcaption>{caption}</figcaption></figure>'
    if not mass:
        return figure
    slices = small_multiples(grid, scale, x=width, y=height, z=mass[0])
    return f'{figure}<h3 id="map-slices">One height × width slice per mass bin</h3>{slices}'


def _elite_scatter(elites: list[EliteRecord], settings: RunSpec, scale: ColourScale) -> str:
    placed = [e for e in elites if len(e.descriptors) >= 2]
    if not placed:
        return _note("The elites carry no (height, width) descriptors to plot.")
    points = [(e.descriptors[1], e.descriptors[0], e.fitness) for e in placed]
    ranges = (settings.archive.ranges[1], settings.archive.ranges[0])
    tips = [f"individual {e.individual_id}: height {e.descriptors[0]:.3g}, width {e.descriptors[1]:.3g}, "
            f"fitness {e.fitness:+.3f}" for e in placed]  # fmt: skip
    svg = scatter(points, scale, label="elites by height and width", ranges=ranges,
                  axis_labels=("width", "height"), tooltips=tips)  # fmt: skip
    return _figure("map-scatter", svg, "Elites by height and width, coloured by fitness")


# -- 3. curves -----------------------------------------------------------------------------------------


def _curves_section(metrics: list[MetricsRecord]) -> str:
    if not metrics:
        return _section("curves", "Progress", _note("No metrics yet: the run has committed no batch."))
    evaluations = [float(m.evaluations) for m in metrics]
    figures = [
        _curve("curve-qd", "QD score", evaluations, [m.qd_score for m in metrics], _COLOURS[0]),
        _curve(
            "curve-coverage", "coverage (%)", evaluations, [100 * m.coverage for m in metrics], _COLOURS[1]
        ),
        _curve(
            "curve-max-fitness", "max fitness", evaluations, [m.max_fitness for m in metrics], _COLOURS[2]
        ),
        _fractions_chart(metrics),
    ]
    return _section("curves", "Progress", f'<div class="charts">{"".join(figures)}</div>')


def _curve(figure_id: str, name: str, xs: list[float], ys: Sequence[float | None], colour: str) -> str:
    include = () if name == "max fitness" else (0.0,)
    svg = line_chart([Series(name, xs, ys, colour)], label=f"{name} over evaluations", x_label="evaluations",
                     y_label=name, y_include=include)  # fmt: skip
    return _figure(figure_id, svg, f"{name} over evaluations")


def _fractions_chart(metrics: list[MetricsRecord]) -> str:
    batches, window = [float(m.batch) for m in metrics], min(_MEAN_WINDOW, len(metrics))
    series = [
        Series(name, batches, running_mean([getattr(m, f"{name}_fraction") for m in metrics], window), colour)
        for name, colour in zip(("applied", "ran", "inserted"), _COLOURS, strict=True)
    ]
    svg = line_chart(series, label="mutation outcome fractions over batches", x_label="batch",
                     y_label="fraction of the batch", y_include=(0.0, 1.0))  # fmt: skip
    caption = (
        f"Applied / ran / inserted fractions of each batch's mutations (running mean over {window} batches)"
    )
    return _figure("curve-fractions", svg, caption)


def _figure(figure_id: str, svg: str, caption: str) -> str:
    return f'<figure id="{figure_id}">{svg}<figcaption>{html.escape(caption)}</figcaption></figure>'


# -- 4. the best walkers ----------------------------------------------------------------------------------


def _walkers_section(store: SQLiteStore, run_id: str, best: list[EliteRecord], settings: RunSpec) -> str:
    if not best:
        return _section("walkers", "Best walkers", _note("No elites yet, so no walkers to show."))
    cards = [
        _walker_card(rank, e, store.individual(run_id, e.individual_id), settings)
        for rank, e in enumerate(best, 1)
    ]
    terrain = html.escape(settings.evaluation.terrain)
    intro = f"<p>Re-simulated for {settings.evaluation.sim.seconds:g} s on <b>{terrain}</b> terrain.</p>"
    return _section("walkers", "Best walkers", intro + f'<div class="cards">{"".join(cards)}</div>')


def _walker_card(rank: int, elite: EliteRecord, individual: IndividualRecord, settings: RunSpec) -> str:
    numbers = [("fitness", f"{elite.fitness:+.3f}")] + [
        (name, f"{value:.3f}") for name, value in zip(_DESCRIPTORS, elite.descriptors, strict=False)
    ]
    rows = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in numbers)
    return (
        f'<article class="card"><h3>#{rank} · individual {elite.individual_id}</h3>'
        f"{_animation(individual, settings)}"
        f"<table>{rows}<tr><th>cell</th><td>{elite.cell}</td></tr></table>"
        f"<details><summary>program</summary>{code_html(individual.source)}</details></article>"
    )


def _animation(individual: IndividualRecord, settings: RunSpec) -> str:
    """The walker re-simulated as an inline GIF, or a note saying why there is none."""
    try:
        gif = walker_gif(individual.walker_json, settings)
    except ElmError as e:
        return _note(f"No animation: {e}")
    data = base64.b64encode(gif).decode("ascii")
    w, h = REPORT_GIF_SIZE
    alt = f"individual {individual.individual_id} walking"
    return f'<img src="data:image/gif;base64,{data}" width="{w}" height="{h}" alt="{alt}">'


def walker_gif(walker_json: str | None, settings: RunSpec) -> bytes:
    """A stored walker re-simulated in the run's world, as GIF bytes; an ElmError says why there is none."""
    try:
        walker = Walker.from_dict(json.loads(walker_json or "null"))
    except json.JSONDecodeError as e:
        raise InvalidRequestError(f"the stored walker is not JSON: {e}") from e
    terrain = settings.evaluation.terrain_model
    film = record(walker, settings.evaluation.sim, terrain)
    if not film.result.ok:
        raise InvalidRequestError(f"the simulation ended {film.result.status.value}: {film.result.message}")
    step = max(1, math.ceil(len(film.frames) / _GIF_FRAMES))
    with tempfile.TemporaryDirectory() as tmp:
        gif = render_gif(
            walker,
            film.frames[::step],
            terrain,
            Path(tmp) / "walker.gif",
            frame_duration_ms=film.frame_duration_ms * step,
            size=REPORT_GIF_SIZE,
        )
        return gif.read_bytes()


def code_html(source: str) -> str:
    return f"<pre><code>{html.escape(source)}</code></pre>"


# -- 5. lineage ----------------------------------------------------------------------------------------


def _lineage_section(lineage: list[IndividualRecord], messages: dict[int, str]) -> str:
    if not lineage:
        return _section("lineage", "Lineage of the best walker", _note("No champion yet."))
    intro = f"<p>{len(lineage) - 1} mutations from the seed to the champion.</p>"
    steps = lineage_html(lineage, lambda _, child: f"individual {child.individual_id}", messages)
    return _section("lineage", "Lineage of the best walker", intro + steps)


def lineage_html(
    lineage: list[IndividualRecord],
    name: Callable[[int, IndividualRecord], str],
    messages: dict[int, str] | None = None,
) -> str:
    """Each step of a lineage (seed first) as a block: the seed's program, then each child's diff against its
    parent, with what it was asked for (`messages`, by child id); the last step open. A lineage longer than
    MAX_LINEAGE_STEPS shows its seed and its last steps. `name(step, individual)` names a step: HTML, so a
    page may make it a link; whatever came from the run in it must be escaped by the caller."""
    steps = list(enumerate(lineage))
    omitted = max(0, len(steps) - MAX_LINEAGE_STEPS)
    shown = steps[:1] + steps[1 + omitted :] if omitted else steps
    blocks = []
    for i, child in shown:
        if omitted and i == omitted + 1:
            blocks.append(_note(f"… {omitted} steps not shown …"))
        parent = lineage[i - 1] if i else None
        delta = ""
        if parent is not None and parent.fitness is not None and child.fitness is not None:
            delta = f" (Δ {child.fitness - parent.fitness:+.3f})"
        kind = "seed" if parent is None else "diff"
        summary = (f"<summary>step {i}: {name(i, child)}, batch {child.batch}, fitness "
                   f"{_number(child.fitness)}{delta} · {kind}</summary>")  # fmt: skip
        message = (messages or {}).get(child.individual_id)
        asked = f'<p class="message">asked for: {html.escape(message)}</p>' if message else ""
        body = code_html(child.source) if parent is None else diff_html(parent, child)
        opened = " open" if i == len(lineage) - 1 else ""
        blocks.append(f'<details class="step"{opened}>{summary}{asked}{body}</details>')
    return "".join(blocks)


def diff_html(parent: IndividualRecord, child: IndividualRecord) -> str:
    """The child's program as a unified diff against its parent's, escaped, one span a line."""
    old, new = parent.source.splitlines(), child.source.splitlines()
    names = f"individual {parent.individual_id}", f"individual {child.individual_id}"
    lines = list(difflib.unified_diff(old, new, *names, lineterm=""))
    if not lines:
        return _note("The program text did not change.")
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    marked = [
        f'<span class="{"file" if k < 2 else kinds.get(line[:1], "ctx")}">{html.escape(line)}</span>'
        for k, line in enumerate(lines)  # the first two lines name the files
    ]
    return f'<pre class="diff">{"".join(marked)}</pre>'


# -- 6. outcomes ---------------------------------------------------------------------------------------


def _outcomes_section(tallies: _Tallies) -> str:
    total = tallies.mutations
    if not total and not tallies.statuses:
        return _section("outcomes", "Outcomes", _note("No mutations or evaluations yet."))
    outcomes = _count_table("mutation outcome", tallies.outcomes, "outcomes")
    flags = _count_table(
        "of all mutations",
        {name: tallies.flags[name] for name in ("applied", "ran", "inserted")},
        "flags",
        total=total,
    )
    statuses = _count_table("evaluation status", dict(tallies.statuses.most_common()), "statuses")
    body = f"<p>{total:,} mutations; {sum(tallies.statuses.values()):,} individuals evaluated.</p>"
    tables = f'<div class="tables">{_operators_table(tallies.operators)}{outcomes}{flags}{statuses}</div>'
    return _section("outcomes", "Outcomes", body + tables)


def _tokens(value: float | None) -> str:
    return _NONE if value is None else f"{value:.0f}"


def _operators_table(operators: list[OperatorStats]) -> str:
    """Which operator earns its calls: the share of its mutations that applied, ran, entered the archive."""
    rows = "".join(
        f"<tr><td>{html.escape(s.operator)}</td><td class=\"num\">{s.mutations:,}</td>"
        + "".join(f'<td class="num">{100 * s.fraction(n):.1f}%</td>'
                  for n in (s.applied, s.ran, s.inserted, s.duplicates))
        + f'<td class="num">{_tokens(s.tokens_per_inserted)}</td></tr>'
        for s in operators
    )  # fmt: skip
    head = "".join(f"<th>{h}</th>" for h in ("operator", "mutations", "applied", "ran", "inserted",
                                              "duplicate", "tokens / inserted"))  # fmt: skip
    return f'<table class="counts" id="operators"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _count_table(heading: str, counts: dict[str, int], table_id: str, *, total: int | None = None) -> str:
    total = sum(counts.values()) if total is None else total
    rows = "".join(
        f'<tr><td>{html.escape(name)}</td><td class="num">{count:,}</td>'
        f'<td class="num">{100 * count / total if total else 0:.1f}%</td></tr>'
        for name, count in counts.items()
    )
    return (
        f'<table class="counts" id="{table_id}"><thead><tr><th>{html.escape(heading)}</th><th>count</th>'
        f"<th>share</th></tr></thead><tbody>{rows}</tbody></table>"
    )


# -- the page ------------------------------------------------------------------------------------------


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{html.escape(title)}</h2>{body}</section>'


def _page(run: RunRecord, sections: list[str]) -> str:
    nav = " · ".join(f'<a href="#{section_id}">{title}</a>' for section_id, title in _NAV)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>ELM run {html.escape(run.name)}</title><style>{_CSS}</style></head><body><main>"
        f"{sections[0]}<nav>{nav}</nav>{''.join(sections[1:])}"
        f"<footer>Written {generated} from the run's store.</footer></main></body></html>\n"
    )


def _write_atomically(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # a page to share, not a secret (mkstemp makes it 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


_NAV = (("map", "archive"), ("curves", "progress"), ("walkers", "best walkers"), ("lineage", "lineage"),
        ("outcomes", "outcomes"))  # fmt: skip
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_CSS = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0; background: #f6f6f4; color: #222; }
main { max-width: 1180px; margin: 0 auto; padding: 1.5rem 2rem 3rem; }
h1 { margin: 0 0 .2rem; font-size: 1.8rem; } h2 { margin: 2.2rem 0 .8rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1rem; margin: 1.2rem 0 .5rem; } .sub, footer, .note, figcaption { color: #666; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: .5rem; }
.facts div { background: #fff; border: 1px solid #e2e2e2; border-radius: 6px; padding: .4rem .7rem; }
dt { font-size: .78rem; color: #777; text-transform: uppercase; } dd { margin: 0; font-weight: 600; }
nav { margin: 1.2rem 0; } a { color: #2f6fb0; }
figure { margin: 0 0 1rem; display: inline-block; vertical-align: top; }
figcaption { font-size: .85rem; text-align: center; }
.charts, .cards, .tables { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.charts figure, .card, .counts { background: #fff; border: 1px solid #e2e2e2; border-radius: 8px; }
.charts figure, .card, .counts { padding: .6rem; }
.multiples { display: flex; flex-wrap: wrap; gap: .6rem; } .multiples figcaption { font-size: .75rem; }
svg.chart { max-width: 100%; height: auto; display: block; }
.card { width: 340px; } .card img { display: block; border-radius: 4px; max-width: 100%; height: auto; }
.card table, .counts { border-collapse: collapse; } th { text-align: left; font-weight: 500; color: #555; }
th, td { padding: .1rem .9rem .1rem 0; } .num { text-align: right; font-variant-numeric: tabular-nums; }
.counts thead th { border-bottom: 1px solid #ddd; }
pre { background: #fbfbfa; border: 1px solid #e4e4e4; border-radius: 4px; padding: .6rem; overflow: auto;
      max-height: 32rem; font-size: .8rem; line-height: 1.4; }
details { margin: .3rem 0; } summary { cursor: pointer; }
.step { background: #fff; border: 1px solid #e2e2e2; border-radius: 6px; padding: .3rem .7rem; }
.diff span { display: block; white-space: pre; } .diff .add { background: #e6f6e6; color: #14631c; }
.diff .del { background: #fbe9e9; color: #9c1c1c; } .diff .hunk { color: #6b4fa0; }
.diff .file { color: #888; } .message { font-style: italic; color: #555; margin: .3rem 0; }
"""
