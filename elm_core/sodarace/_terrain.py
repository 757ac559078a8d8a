"""Terrains: the static world a walker moves in, as line segments.

Every terrain is flat ground at y = 0 plus its features; features are placed relative to the
walker's starting half-width (the walker starts centred on x = 0), so "a wall 2 units to the right"
means the same for a small and a large walker. The same segments build the pymunk space and draw
the pictures.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from elm_core.errors import ConfigError

Segment = tuple[tuple[float, float], tuple[float, float]]

GROUND_HALF_LENGTH = 2000.0  # far beyond where any walker gets in the default evaluation
WALL_HEIGHT = 200.0
BUMPY_HALF_LENGTH = 150.0  # bumps are static shapes too: enough for any evaluation, few enough to build fast


class TerrainKind(enum.StrEnum):
    FLAT = "flat"
    BUMPY = "bumpy"
    LEFT_WALL = "left_wall"
    RIGHT_WALL = "right_wall"
    TUNNEL = "tunnel"


@dataclass(frozen=True, kw_only=True)
class Terrain:
    """A terrain kind with its parameters (lengths in simulator units)."""

    kind: TerrainKind = TerrainKind.FLAT
    wall_gap: float = 2.0  # distance from the walker's starting edge to a wall or the tunnel mouth
    tunnel_height: float = 4.0  # clearance under the tunnel's ceiling
    bump_height: float = 0.6  # peak height of a bump
    bump_spacing: float = 3.0  # distance between bump peaks

    def __post_init__(self) -> None:
        for name in ("wall_gap", "tunnel_height", "bump_height", "bump_spacing"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"Terrain.{name} must be a finite number > 0, got {value!r}")

    @classmethod
    def named(cls, name: str) -> Terrain:
        try:
            return cls(kind=TerrainKind(name.replace("-", "_")))
        except ValueError as e:
            choices = ", ".join(k.value for k in TerrainKind)
            raise ConfigError(f"unknown terrain {name!r}; choose one of {choices}") from e

    def segments(self, half_width: float) -> list[Segment]:
        """The terrain's static segments for a walker spanning [-half_width, half_width] at the start."""
        edge = half_width + self.wall_gap
        ground: Segment = ((-GROUND_HALF_LENGTH, 0.0), (GROUND_HALF_LENGTH, 0.0))
        match self.kind:
            case TerrainKind.FLAT:
                return [ground]
            case TerrainKind.BUMPY:
                return self._bumps(edge)
            case TerrainKind.LEFT_WALL:
                return [ground, ((-edge, 0.0), (-edge, WALL_HEIGHT))]
            case TerrainKind.RIGHT_WALL:
                return [ground, ((edge, 0.0), (edge, WALL_HEIGHT))]
            case TerrainKind.TUNNEL:
                ceiling = ((edge, self.tunnel_height), (GROUND_HALF_LENGTH, self.tunnel_height))
                mouth = ((edge, self.tunnel_height), (edge, WALL_HEIGHT))
                return [ground, ceiling, mouth]

    def _bumps(self, flat_half_length: float) -> list[Segment]:
        """Flat under the walker's start, then triangular bumps on both sides."""
        segments: list[Segment] = [((-flat_half_length, 0.0), (flat_half_length, 0.0))]
        half = self.bump_spacing / 2
        for side in (1.0, -1.0):
            x = flat_half_length
            while x < BUMPY_HALF_LENGTH:
                start, peak, end = side * x, side * (x + half), side * (x + self.bump_spacing)
                segments += [((start, 0.0), (peak, self.bump_height)), ((peak, self.bump_height), (end, 0.0))]
                x += self.bump_spacing
            far = side * GROUND_HALF_LENGTH
            segments.append(((side * x, 0.0), (far, 0.0)))
        return segments
