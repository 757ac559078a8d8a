"""Pictures and animations of a walker: GIF, PNG and self-contained HTML."""

from __future__ import annotations

import json
import re
from functools import cache

import numpy as np
import pytest
from PIL import Image, ImageChops

from elm_core.errors import ConfigError
from elm_core.sandbox import run_program
from elm_core.sodarace import SimConfig, Terrain, TerrainKind, Walker, seed_source, simulate
from elm_core.sodarace._render import _clip, render_gif, render_html, render_png

CONFIG = SimConfig(seconds=2.0)


@cache
def square() -> Walker:
    return run_program(seed_source("square")).walker


@cache
def trajectory(walker: Walker, kind: TerrainKind = TerrainKind.FLAT) -> np.ndarray:
    result = simulate(walker, CONFIG, Terrain(kind=kind), record_every=8)
    assert result.ok and result.trajectory is not None
    return result.trajectory


def two_joints() -> Walker:
    muscle = {"type": "muscle", "amplitude": 3.0, "phase": 0.0}
    return Walker.from_dict({"joints": [[0, 0], [1, 0.5]], "muscles": [[0, 1, muscle]]})


def html_frames(text: str) -> list[list[float]]:
    data = re.search(r'<script id="walker-data" type="application/json">(.*?)</script>', text, re.S)
    assert data is not None
    return json.loads(data.group(1))["frames"]


def test_gif_has_one_looping_frame_per_trajectory_frame(tmp_path):
    frames = trajectory(square())
    path = render_gif(square(), frames, Terrain(), tmp_path / "walk.gif", frame_duration_ms=40)
    assert path == tmp_path / "walk.gif" and path.stat().st_size > 0
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.size == (640, 360)
        assert gif.n_frames == len(frames) and gif.is_animated
        assert gif.info["loop"] == 0 and gif.info["duration"] == 40


def test_gif_frames_keep_distinct_when_the_walker_stands_still(tmp_path):
    still = np.repeat(trajectory(square())[:1], 5, axis=0)
    path = render_gif(
        square(), still, Terrain(), tmp_path / "still.gif", frame_duration_ms=1, size=(200, 120)
    )
    with Image.open(path) as gif:
        assert gif.n_frames == 5


def test_png_has_the_requested_size(tmp_path):
    path = render_png(square(), trajectory(square()), Terrain(), tmp_path / "walk.png", size=(480, 200))
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size == (480, 200)
    with Image.open(render_png(square(), trajectory(square()), Terrain(), tmp_path / "default.png")) as png:
        assert png.size == (960, 360)


def test_html_is_self_contained_and_embeds_every_frame(tmp_path):
    frames = trajectory(square())
    path = render_html(
        square(), frames, Terrain(), tmp_path / "walk.html", frame_duration_ms=40, title="a <b>"
    )
    text = path.read_text(encoding="utf-8")
    assert "<svg" in text and "<script>" in text and "a &lt;b&gt;" in text
    assert not re.search(r"\b(src|href)\s*=", text) and "url(" not in text and "@import" not in text
    assert "://" not in text
    embedded = html_frames(text)
    assert len(embedded) == len(frames)
    assert np.allclose(np.array(embedded).reshape(frames.shape), frames, atol=5e-4)
    assert all(len(str(v).split(".")[-1]) <= 3 for v in embedded[-1])  # rounded to 3 decimals


@pytest.mark.parametrize("kind", list(TerrainKind))
def test_every_terrain_renders(tmp_path, kind):
    terrain, frames = Terrain(kind=kind), trajectory(square(), kind)
    with Image.open(render_png(square(), frames, terrain, tmp_path / "t.png", size=(320, 120))) as png:
        assert png.size == (320, 120)
    with Image.open(
        render_gif(square(), frames, terrain, tmp_path / "t.gif", frame_duration_ms=50, size=(320, 180))
    ) as gif:
        assert gif.n_frames == len(frames)
    text = render_html(square(), frames, terrain, tmp_path / "t.html", frame_duration_ms=50).read_text()
    assert len(html_frames(text)) == len(frames)


@pytest.mark.parametrize("kind", [TerrainKind.LEFT_WALL, TerrainKind.RIGHT_WALL, TerrainKind.TUNNEL])
def test_walls_and_tunnel_show_in_the_picture(tmp_path, kind):
    frames = trajectory(square())  # the same motion on both terrains: only the terrain differs
    with (
        Image.open(render_png(square(), frames, Terrain(), tmp_path / "flat.png")) as flat,
        Image.open(render_png(square(), frames, Terrain(kind=kind), tmp_path / "feature.png")) as feature,
    ):
        diff = np.asarray(ImageChops.difference(flat.convert("RGB"), feature.convert("RGB"))).max(axis=2)
    assert (diff > 64).mean() > 0.02  # a solid block of rock, not a few pixels
    flat_html = render_html(
        square(), frames, Terrain(), tmp_path / "f.html", frame_duration_ms=40
    ).read_text()
    html = render_html(
        square(), frames, Terrain(kind=kind), tmp_path / "k.html", frame_duration_ms=40
    ).read_text()
    assert html.count("<polygon") > flat_html.count("<polygon")


def test_a_two_joint_walker_renders(tmp_path):
    walker = two_joints()
    frames = trajectory(walker, TerrainKind.TUNNEL)
    assert frames.shape[1:] == (2, 2)
    with Image.open(
        render_gif(walker, frames, Terrain(kind="tunnel"), tmp_path / "w.gif", frame_duration_ms=30)
    ) as g:
        assert g.n_frames == len(frames)
    with Image.open(render_png(walker, frames[:1], Terrain(kind="tunnel"), tmp_path / "w.png")) as png:
        assert png.size == (960, 360)
    text = render_html(
        walker, frames, Terrain(kind="tunnel"), tmp_path / "w.html", frame_duration_ms=30
    ).read_text()
    assert len(html_frames(text)) == len(frames) and text.count("<circle") == 2


def test_the_view_ignores_far_terrain_and_keeps_the_walker_large(tmp_path):
    frames = trajectory(square())
    path = render_png(square(), frames, Terrain(), tmp_path / "walk.png", size=(400, 200))
    with Image.open(path) as png:
        pixels = np.asarray(png.convert("RGB")).astype(int)
    muscle = (pixels[..., 0] > 180) & (pixels[..., 1] < 130) & (pixels[..., 2] < 110)  # the orange muscles
    cols = np.flatnonzero(muscle.any(axis=0))
    assert cols.size and cols.max() - cols.min() > 60  # a ground 4000 units long would shrink it to a dot


def test_bad_inputs_are_rejected(tmp_path):
    frames = trajectory(square())
    with pytest.raises(ConfigError, match="trajectory"):
        render_png(two_joints(), frames, Terrain(), tmp_path / "x.png")
    with pytest.raises(ConfigError, match="frame_duration_ms"):
        render_gif(square(), frames, Terrain(), tmp_path / "x.gif", frame_duration_ms=0)
    with pytest.raises(ConfigError, match="non-finite"):
        render_html(square(), frames * np.nan, Terrain(), tmp_path / "x.html", frame_duration_ms=10)


def test_clip_keeps_the_part_of_a_segment_inside_the_box():
    box = (-1.0, -1.0, 1.0, 1.0)
    assert _clip(((-2000.0, 0.0), (2000.0, 0.0)), box) == ((-1.0, 0.0), (1.0, 0.0))
    assert _clip(((0.5, 0.0), (0.5, 200.0)), box) == ((0.5, 0.0), (0.5, 1.0))
    assert _clip(((5.0, 0.0), (5.0, 200.0)), box) is None
    assert _clip(((0.0, 0.0), (0.5, 0.5)), box) == ((0.0, 0.0), (0.5, 0.5))
