"""The JSON the pages are drawn from: the run list, and one run's state (its map, curves and operators).

Everything here is data; the page script puts it into the page as text, never as markup.
"""

from __future__ import annotations

from typing import Any

from elm_core.spec import RunSpec
from elm_core.store import EliteRecord, MetricsRecord, RunRecord
from services.dashboard.sources import RunSource

MAX_POINTS = 2000  # curve points sent at once; a longer history is thinned evenly, keeping the last
TOP_WALKERS = 4


def runs_state(source: RunSource) -> list[dict[str, Any]]:
    """Every run with its counters and its last batch's map figures, newest first."""
    listed = []
    for run in sorted(source.runs(), key=lambda r: r.created_at, reverse=True):
        last = source.metrics(run.run_id, run.batches - 2)
        listed.append(_run_json(run, source.spec(run.run_id), source.controllable) | _last_figures(last))
    return listed


def run_state(source: RunSource, run_id: str, after_batch: int = -1) -> dict[str, Any]:
    """The run, its whole archive and operator table, and the curve points of batches after `after_batch`."""
    run = source.run(run_id)
    spec = source.spec(run_id)
    points = source.metrics(run_id, after_batch)
    elites = source.elites(run_id)
    best = sorted(elites, key=lambda e: e.fitness, reverse=True)[:TOP_WALKERS]
    return {
        "run": _run_json(run, spec, source.controllable) | _last_figures(points),
        "archive": _archive_json(spec, elites),
        "points": [_point_json(m) for m in _thinned(points, MAX_POINTS)],
        "last_batch": points[-1].batch if points else after_batch,
        "operators": [
            {
                "operator": s.operator,
                "mutations": s.mutations,
                "applied": s.applied,
                "ran": s.ran,
                "inserted": s.inserted,
                "duplicates": s.duplicates,
                "generated_tokens": s.generated_tokens,
            }
            for s in source.operators(run_id)
        ],  # fmt: skip
        "best": [{"individual_id": e.individual_id, "fitness": e.fitness, "cell": e.cell} for e in best],
    }


def _run_json(run: RunRecord, spec: RunSpec, controllable: bool) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "name": run.name,
        "status": run.status.value,
        "evaluations": run.evaluations,
        "batches": run.batches,
        "budget": spec.loop.max_evaluations,
        "operator": spec.mutation.operator,
        "model": spec.mutation.model if spec.mutation.operator == "llm" else "",
        "terrain": spec.evaluation.terrain,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "controllable": controllable,
    }


def _last_figures(points: list[MetricsRecord]) -> dict[str, Any]:
    if not points:
        return {}
    last = points[-1]
    return {"filled": last.filled, "coverage": last.coverage, "qd_score": last.qd_score,
            "max_fitness": last.max_fitness, "evaluations_per_s": last.evaluations_per_s,
            "elapsed_s": last.elapsed_s}  # fmt: skip


def _archive_json(spec: RunSpec, elites: list[EliteRecord]) -> dict[str, Any]:
    archive = spec.archive
    return {
        "kind": str(archive.kind),
        "dims": list(archive.dims),
        "ranges": [list(r) for r in archive.ranges],
        "descriptors": ["height", "width", "mass"][: len(archive.ranges)],
        # [cell, individual id, fitness, descriptors...]: compact, a 12 x 12 x 12 map is at most ~60 kB
        "elites": [
            [e.cell, e.individual_id, round(e.fitness, 4), *(round(d, 4) for d in e.descriptors)]
            for e in elites
        ],  # fmt: skip
    }


def _point_json(m: MetricsRecord) -> dict[str, Any]:
    return {"batch": m.batch, "evaluations": m.evaluations, "filled": m.filled, "coverage": m.coverage,
            "qd_score": m.qd_score, "max_fitness": m.max_fitness, "applied": m.applied_fraction,
            "ran": m.ran_fraction, "inserted": m.inserted_fraction}  # fmt: skip


def _thinned(points: list[MetricsRecord], most: int) -> list[MetricsRecord]:
    if len(points) <= most:
        return points
    step = -(-len(points) // most)
    kept = points[::step]
    return kept if kept[-1] is points[-1] else [*kept, points[-1]]
