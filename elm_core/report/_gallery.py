"""The gallery: several walkers' animations, stills and numbers on one page (what `make run` shows)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from elm_core.sandbox import ExecutionResult
from elm_core.sodarace import (
    Film,
    SimConfig,
    SimResult,
    Terrain,
    Walker,
    record,
    render_gif,
    render_html,
    render_png,
)

GALLERY_GIF_SIZE = (480, 270)  # the page shows them about 340 px wide


@dataclass
class GalleryEntry:
    name: str
    program: ExecutionResult
    simulation: SimResult | None = None

    @property
    def summary(self) -> str:
        if not self.program.ok:
            return f"{self.program.status.value}: {self.program.message}"
        if self.simulation is None or not self.simulation.ok:
            return (
                f"{self.simulation.status.value}: {self.simulation.message}" if self.simulation else "not run"
            )
        d = self.simulation.descriptors
        fitness = self.simulation.fitness
        return f"fitness {fitness:+.2f}  height {d.height:.2f}  width {d.width:.2f}  mass {d.mass:.2f}"


def write_gallery(entries: list[GalleryEntry], config: SimConfig, terrain: Terrain, out: Path) -> Path:
    """Simulates every entry, writes <name>.gif/.png/.html for each and an index.html summary page."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        walker = entry.program.walker
        if walker is None:
            continue
        film = record(walker, config, terrain)
        entry.simulation = film.result
        if film.result.ok:
            _draw(entry.name, walker, film, terrain, out)
    index = out / "index.html"
    index.write_text(_page(entries, config, terrain))
    return index


def _draw(name: str, walker: Walker, film: Film, terrain: Terrain, out: Path) -> None:
    ms = film.frame_duration_ms
    render_gif(walker, film.frames, terrain, out / f"{name}.gif", frame_duration_ms=ms, size=GALLERY_GIF_SIZE)
    render_png(walker, film.frames, terrain, out / f"{name}.png")
    render_html(walker, film.frames, terrain, out / f"{name}.html", frame_duration_ms=ms, title=name)


def _card(entry: GalleryEntry) -> str:
    name = html.escape(entry.name)
    if entry.simulation is None or not entry.simulation.ok:
        return f'<div class="card failed"><h2>{name}</h2><p>{html.escape(entry.summary)}</p></div>'
    result, d = entry.simulation, entry.simulation.descriptors
    return f"""<div class="card"><h2>{name}</h2>
<a href="{name}.html"><img src="{name}.gif" alt="{name} walking"></a>
<table><tr><th>fitness</th><td>{result.fitness:+.3f}</td></tr>
<tr><th>height</th><td>{d.height:.3f}</td></tr><tr><th>width</th><td>{d.width:.3f}</td></tr>
<tr><th>mass</th><td>{d.mass:.3f}</td></tr></table>
<p><a href="{name}.html">interactive</a> · <a href="{name}.png">still</a></p></div>"""


def _page(entries: list[GalleryEntry], config: SimConfig, terrain: Terrain) -> str:
    cards = "\n".join(_card(entry) for entry in entries)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sodarace walkers</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; background: #fafafa; color: #222; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 1.5rem; }}
.card {{ background: white; border: 1px solid #ddd; border-radius: 8px; padding: 1rem; }}
.card img {{ width: 100%; border-radius: 4px; }} .failed {{ border-color: #c33; }}
th {{ text-align: left; padding-right: 1rem; font-weight: 500; color: #555; }}
</style></head><body>
<h1>Sodarace walkers</h1>
<p>Terrain <b>{html.escape(terrain.kind.value)}</b>, {config.seconds:g} simulated seconds at
{config.steps_per_second} steps/s, muscle period {config.muscle_period_s:g} s.
Fitness is the distance the centre of mass moved along x.</p>
<div class="grid">
{cards}
</div></body></html>
"""
