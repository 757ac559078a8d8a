"""Terrains: flat ground plus walls, a tunnel or bumps placed relative to the walker's start."""

from __future__ import annotations

import math

import pytest

from elm_core.errors import ConfigError
from elm_core.sodarace import Terrain, TerrainKind

HALF_WIDTH = 5.0
Segment = tuple[tuple[float, float], tuple[float, float]]


def is_vertical(segment: Segment) -> bool:
    (x0, y0), (x1, y1) = segment
    return x0 == x1 and y0 != y1


def is_horizontal_at(segment: Segment, y: float) -> bool:
    (_, y0), (_, y1) = segment
    return y0 == y1 == y


def ground_height_at(segments: list[Segment], x: float) -> list[float]:
    """Heights of the non-vertical segments over x (the surface a walker stands on, and any ceiling)."""
    heights = []
    for (x0, y0), (x1, y1) in segments:
        lo, hi = min(x0, x1), max(x0, x1)
        if lo != hi and lo <= x <= hi:
            heights.append(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
    return heights


def covers_without_gaps(segments: list[Segment], start: float, stop: float) -> bool:
    """Whether the x-ranges of the non-vertical segments cover [start, stop] with no gap."""
    ranges = sorted((min(a[0], b[0]), max(a[0], b[0])) for a, b in segments if a[0] != b[0])
    reach = start
    for lo, hi in ranges:
        if lo > reach + 1e-9:
            return False
        reach = max(reach, hi)
    return reach >= stop


# ---- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(TerrainKind))
def test_named_accepts_every_kind(kind: TerrainKind) -> None:
    terrain = Terrain.named(kind.value)
    assert terrain.kind is kind
    assert terrain == Terrain(kind=kind)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("left-wall", TerrainKind.LEFT_WALL),
        ("right-wall", TerrainKind.RIGHT_WALL),
        ("left_wall", TerrainKind.LEFT_WALL),
    ],
)
def test_named_accepts_dashed_names(name: str, kind: TerrainKind) -> None:
    assert Terrain.named(name).kind is kind


@pytest.mark.parametrize("name", ["lava", "", "wall", "left wall", "flat "])
def test_named_rejects_unknown_names_listing_the_choices(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        Terrain.named(name)
    message = str(info.value)
    for kind in TerrainKind:
        assert kind.value in message
    assert repr(name) in message


@pytest.mark.parametrize("field", ["wall_gap", "tunnel_height", "bump_height", "bump_spacing"])
@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf])
def test_nonsense_parameters_are_config_errors(field: str, value: float) -> None:
    with pytest.raises(ConfigError):
        Terrain(**{field: value})


# ---- shapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(TerrainKind))
@pytest.mark.parametrize("half_width", [0.5, HALF_WIDTH, 20.0])
def test_every_terrain_has_ground_under_the_walker_and_far_beyond(
    kind: TerrainKind, half_width: float
) -> None:
    segments = Terrain(kind=kind).segments(half_width)
    assert covers_without_gaps(segments, -1000.0, 1000.0)
    for x in (-half_width, 0.0, half_width):
        assert 0.0 in ground_height_at(segments, x)
    for segment in segments:
        for x, y in segment:
            assert math.isfinite(x) and math.isfinite(y)
            assert y >= 0.0


def test_flat_is_only_ground() -> None:
    segments = Terrain.named("flat").segments(HALF_WIDTH)
    assert all(is_horizontal_at(s, 0.0) for s in segments)


@pytest.mark.parametrize("half_width", [1.0, HALF_WIDTH, 12.5])
@pytest.mark.parametrize("wall_gap", [0.5, 2.0, 7.0])
def test_walls_stand_wall_gap_beyond_the_walkers_edge(half_width: float, wall_gap: float) -> None:
    edge = half_width + wall_gap
    for kind, side in ((TerrainKind.LEFT_WALL, -1.0), (TerrainKind.RIGHT_WALL, 1.0)):
        segments = Terrain(kind=kind, wall_gap=wall_gap).segments(half_width)
        walls = [s for s in segments if is_vertical(s)]
        assert len(walls) == 1, kind
        (x0, y0), (x1, y1) = walls[0]
        assert x0 == x1 == pytest.approx(side * edge)
        assert min(y0, y1) == 0.0  # standing on the ground, no gap to slip under
        assert max(y0, y1) > 10 * half_width  # too tall to climb over
        # nothing else but ground
        assert all(is_horizontal_at(s, 0.0) for s in segments if s is not walls[0])


def test_the_wall_is_on_the_named_side() -> None:
    left = [s for s in Terrain.named("left-wall").segments(HALF_WIDTH) if is_vertical(s)]
    right = [s for s in Terrain.named("right-wall").segments(HALF_WIDTH) if is_vertical(s)]
    assert left[0][0][0] < -HALF_WIDTH
    assert right[0][0][0] > HALF_WIDTH


@pytest.mark.parametrize("tunnel_height", [1.0, 4.0, 9.5])
def test_tunnel_has_a_ceiling_at_tunnel_height(tunnel_height: float) -> None:
    terrain = Terrain(kind=TerrainKind.TUNNEL, tunnel_height=tunnel_height)
    segments = terrain.segments(HALF_WIDTH)
    edge = HALF_WIDTH + terrain.wall_gap
    ceilings = [s for s in segments if is_horizontal_at(s, tunnel_height)]
    assert ceilings, "no ceiling"
    # the ceiling starts at the tunnel mouth, to the walker's right, and runs far on
    ceiling_xs = [x for s in ceilings for x, _ in s]
    assert min(ceiling_xs) == pytest.approx(edge)
    assert max(ceiling_xs) >= 1000.0
    # inside the tunnel: ground below, ceiling at tunnel_height; at the start: open sky
    assert sorted(ground_height_at(segments, edge + 10.0)) == [0.0, pytest.approx(tunnel_height)]
    assert ground_height_at(segments, 0.0) == [0.0]
    assert ground_height_at(segments, -edge - 10.0) == [0.0]
    # the mouth is walled above the opening, so the only way on is through the tunnel
    mouths = [s for s in segments if is_vertical(s)]
    assert len(mouths) == 1
    (x0, y0), (x1, y1) = mouths[0]
    assert x0 == x1 == pytest.approx(edge)
    assert min(y0, y1) == pytest.approx(tunnel_height)
    assert max(y0, y1) > 10 * tunnel_height


@pytest.mark.parametrize("half_width", [1.0, HALF_WIDTH, 12.5])
def test_bumpy_is_flat_under_the_walker_start_and_bumpy_beyond(half_width: float) -> None:
    terrain = Terrain(kind=TerrainKind.BUMPY, bump_height=0.8, bump_spacing=2.0)
    segments = terrain.segments(half_width)
    # flat under the start, out to the wall gap
    for k in range(101):
        x = -half_width + 2 * half_width * k / 100
        assert ground_height_at(segments, x) == [0.0], x
    # bumps of the configured height on both sides
    peaks = [p for s in segments for p in s if p[1] == pytest.approx(0.8)]
    assert any(x > half_width for x, _ in peaks)
    assert any(x < -half_width for x, _ in peaks)
    assert all(y <= 0.8 + 1e-12 for s in segments for _, y in s)
    right_peaks = sorted({round(x, 9) for x, _ in peaks if x > 0})
    gaps = {round(b - a, 6) for a, b in zip(right_peaks, right_peaks[1:], strict=False)}
    assert gaps == {2.0}
    # the surface is one continuous line: every x has exactly one height
    for x in (half_width + 2.3, half_width + 40.7, -half_width - 17.1, 500.0, -500.0):
        assert len(set(ground_height_at(segments, x))) == 1, x
    # the walls are not part of bumpy terrain
    assert not any(is_vertical(s) for s in segments)


def test_bumpy_and_flat_agree_under_the_walker() -> None:
    bumpy = Terrain.named("bumpy").segments(HALF_WIDTH)
    flat = Terrain.named("flat").segments(HALF_WIDTH)
    for x in (-HALF_WIDTH, -1.0, 0.0, 2.5, HALF_WIDTH):
        assert set(ground_height_at(bumpy, x)) == set(ground_height_at(flat, x)) == {0.0}
