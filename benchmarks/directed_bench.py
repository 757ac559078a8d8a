"""Does the model follow a directed instruction? Children of one seed, asked to move to a neighbouring cell.

    python benchmarks/directed_bench.py [--moves any axis] [--children 16] [--seed square]
                                        [--model qwen2.5-coder-0.5b]

For each way of choosing targets (`moves`), asks the model for `--children` directed children of the seed
(targets drawn by the loop's own `neighbour_gap`, instructions by `directed_instruction`), evaluates them in
the sandbox and counts how many are programs (applied), built a walker that simulated (ran), left the
seed's cell, and landed in the target cell. Results are also written to
benchmarks/results/directed_bench.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from elm_core.evaluation import EvaluatorPool
from elm_core.models import LlamaCppConfig, LlamaCppGenerator, gguf_path
from elm_core.mutation import ChildRequest, LLMMutator, MutationConfig, PromptStyle
from elm_core.qd import ArchiveConfig, Elite, GridArchive, directed_instruction, neighbour_gap
from elm_core.sodarace import seed_source


@dataclass(frozen=True)
class Targets:
    """A seed alone in the default map, and `len(gaps)` moves to neighbouring cells drawn as the loop draws
    them."""

    source: str
    point: tuple[float, float, float]
    archive: GridArchive
    parent: Elite
    gaps: list[np.ndarray]


def seed_targets(
    evaluator: EvaluatorPool, seed: str, children: int, rng: np.random.Generator, *, axis: bool
) -> Targets:
    source = seed_source(seed)
    (result,) = evaluator.evaluate([source])
    point = (result.descriptors.height, result.descriptors.width, result.descriptors.mass)
    archive = GridArchive(ArchiveConfig())
    archive.try_insert(0, result.fitness, point)
    parent = archive.get(archive.cell_of(point))
    gaps = [neighbour_gap(archive, parent, rng, reach=2, axis=axis) for _ in range(children)]
    return Targets(source, point, archive, parent, gaps)


def bench(
    moves: str, args: argparse.Namespace, evaluator: EvaluatorPool, generator: LlamaCppGenerator
) -> dict:
    rng = np.random.default_rng(args.rng_seed)
    t = seed_targets(evaluator, args.seed, args.children, rng, axis=moves == "axis")
    requests = [ChildRequest(parent=t.source, instruction=directed_instruction(g.tolist(), t.point),
                             operator="directed") for g in t.gaps]  # fmt: skip
    mutator = LLMMutator(generator, MutationConfig(style=PromptStyle.REWRITE))
    started = time.perf_counter()
    children = [c for k in range(0, len(requests), 8) for c in mutator.mutate(requests[k : k + 8], rng)]
    seconds = time.perf_counter() - started
    results = iter(evaluator.evaluate([c.source for c in children if c.source is not None]))
    ran = left = hit = 0
    for child, gap in zip(children, t.gaps, strict=True):
        result = next(results) if child.source is not None else None
        if result is None or result.descriptors is None or result.fitness is None:
            continue
        d = result.descriptors
        cell = t.archive.cell_of((d.height, d.width, d.mass))
        ran, left = ran + 1, left + (cell != t.parent.cell)
        hit += cell == t.archive.cell_of(np.asarray(t.point) + gap)
    applied = sum(c.source is not None for c in children)
    return {"moves": moves, "children": len(children), "applied": applied, "ran": ran, "left_cell": left,
            "hit_target": hit, "seconds": seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--moves", nargs="+", default=["any", "axis"], choices=["any", "axis"])
    parser.add_argument("--children", type=int, default=16)
    parser.add_argument("--seed", default="square")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--rng-seed", type=int, default=1)
    args = parser.parse_args()
    config = LlamaCppConfig(parallel=8)
    with (
        EvaluatorPool(workers=2) as evaluator,
        LlamaCppGenerator(gguf_path(args.model), config=config) as model,
    ):
        rows = [bench(moves, args, evaluator, model) for moves in args.moves]
    table = Table(title=f"{args.model}: directed children of {args.seed} ({platform.node()})")
    for column in ("moves", "children", "applied", "ran", "left the cell", "hit the target", "s"):
        table.add_column(column, justify="right")
    counts = ("children", "applied", "ran", "left_cell", "hit_target")
    for r in rows:
        table.add_row(r["moves"], *(str(r[k]) for k in counts), f"{r['seconds']:.0f}")
    Console().print(table)
    out = Path(__file__).parent / "results" / "directed_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
