"""Sodarace: walkers written as Python programs, validated, and simulated with pymunk."""

from elm_core.sodarace._cppn import query_cppn
from elm_core.sodarace._creator import Joint, walker_creator
from elm_core.sodarace._gallery import GalleryEntry, render_film, write_gallery
from elm_core.sodarace._program import ProgramResult, ProgramStatus, run_program, walker_data
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
from elm_core.sodarace._walker import Muscle, MuscleKind, Walker, WalkerLimits, WalkerRule

__all__ = [
    "SEED_NAMES",
    "Descriptors",
    "GalleryEntry",
    "Joint",
    "Muscle",
    "MuscleKind",
    "ProgramResult",
    "ProgramStatus",
    "SimConfig",
    "SimResult",
    "SimStatus",
    "Terrain",
    "TerrainKind",
    "Walker",
    "WalkerLimits",
    "WalkerRule",
    "describe",
    "muscle_schedule",
    "query_cppn",
    "render_film",
    "render_gif",
    "render_html",
    "render_png",
    "run_program",
    "seed_source",
    "simulate",
    "walker_creator",
    "walker_data",
    "write_gallery",
]
