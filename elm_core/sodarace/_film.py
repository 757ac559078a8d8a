"""A walker's film: simulate while recording frames, then draw it as an animation or a still."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from elm_core.errors import ConfigError, StateError
from elm_core.sodarace._render import render_gif, render_html, render_png
from elm_core.sodarace._simulator import SimConfig, SimResult, simulate
from elm_core.sodarace._terrain import Terrain
from elm_core.sodarace._walker import Walker

FRAMES_PER_SECOND = 20


@dataclass(frozen=True)
class Film:
    result: SimResult
    frames: np.ndarray  # (frames, joints, 2): up to the end, or up to where an unstable run stopped
    frame_duration_ms: int


def record(walker: Walker, config: SimConfig, terrain: Terrain) -> Film:
    """Simulates, recording about FRAMES_PER_SECOND frames."""
    record_every = max(1, round(config.steps_per_second / FRAMES_PER_SECOND))
    result = simulate(walker, config, terrain, record_every=record_every)
    assert result.trajectory is not None  # always recorded when record_every > 0
    return Film(result, result.trajectory, round(1000 * record_every / config.steps_per_second))


def render_film(walker: Walker, config: SimConfig, terrain: Terrain, path: Path, *, title: str = "") -> Path:
    """Simulates `walker` and writes a .gif or .html animation or a .png still, chosen by the suffix."""
    if path.suffix not in (".gif", ".html", ".png"):
        raise ConfigError(f"cannot render to {path.name!r}: use .gif, .html or .png")
    film = record(walker, config, terrain)
    if not film.result.ok:
        raise StateError(f"nothing to draw: the simulation ended {film.result.status}: {film.result.message}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        return render_gif(walker, film.frames, terrain, path, frame_duration_ms=film.frame_duration_ms)
    if path.suffix == ".html":
        return render_html(
            walker, film.frames, terrain, path, frame_duration_ms=film.frame_duration_ms, title=title
        )
    return render_png(walker, film.frames, terrain, path)
