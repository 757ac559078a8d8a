"""Sodarace: walkers written as Python programs, validated, and simulated with pymunk."""

from elm_core.sodarace._cppn import query_cppn
from elm_core.sodarace._creator import Joint, walker_creator
from elm_core.sodarace._film import Film, record, render_film
from elm_core.sodarace._render import render_gif, render_html, render_png
from elm_core.sodarace._seeds import SEED_NAMES, seed_source
from elm_core.sodarace._simulator import (
    Descriptors,
    SimConfig,
    SimResult,
    SimStatus,
    describe,
    muscle_schedule,
    simulate,
)
from elm_core.sodarace._terrain import Terrain, TerrainKind
from elm_core.sodarace._walker import Muscle, MuscleKind, Walker, WalkerLimits, WalkerRule, walker_digest

__all__ = [
    "SEED_NAMES",
    "Descriptors",
    "Film",
    "Joint",
    "Muscle",
    "MuscleKind",
    "SimConfig",
    "SimResult",
    "SimStatus",
    "Terrain",
    "TerrainKind",
    "Walker",
    "walker_digest",
    "WalkerLimits",
    "WalkerRule",
    "describe",
    "muscle_schedule",
    "query_cppn",
    "record",
    "render_film",
    "render_gif",
    "render_html",
    "render_png",
    "seed_source",
    "simulate",
    "walker_creator",
]
