"""The MAP-Elites loop's own costs (overhead per evaluation, evaluator utilisation), GP vs LLM by evaluations.

Quality-diversity per LLM call, operator mix by operator mix, is benchmarks/qd_bench.py.

    python benchmarks/loop_bench.py [--operators gp llm] [--budget 1000] [--every 250] [--model NAME]
                                    [--seed square] [--workers 2] [--batch 8] [--depth 2]

For each operator: coverage, QD score and max fitness at every `--every` evaluations; the loop's overhead
per evaluation (time outside mutate/evaluate); evaluator utilisation (busy worker time over workers x wall
time).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from elm_core.qd import LoopConfig, MapElites
from elm_core.run import STORE_FILE, create_run, execute_run
from elm_core.spec import EmbeddedSpec, MutationSpec, RunSpec
from elm_core.store import SQLiteStore


def bench(operator: str, args: argparse.Namespace, root: Path) -> dict:
    config = RunSpec(
        mutation=MutationSpec(operator=operator, model=args.model), seeds=(args.seed,),
        embedded=EmbeddedSpec(workers=args.workers),
        loop=LoopConfig(batch_size=args.batch, pipeline_depth=args.depth, max_evaluations=args.budget),
    )  # fmt: skip
    run_dir = root / operator
    create_run(run_dir, config)
    loops: list[MapElites] = []
    started: list[float] = []  # from the moment the loop starts: model loading is not the loop's time

    def start(loop: MapElites) -> None:
        loops.append(loop)
        started.append(time.perf_counter())

    outcome = execute_run(run_dir, on_start=start)
    wall = time.perf_counter() - started[0] - outcome.report_seconds
    evaluator = loops[0].evaluator
    with SQLiteStore(run_dir / STORE_FILE) as store:
        (run,) = store.list_runs()
        metrics = store.metrics(run.run_id)
    marks = [m for m in metrics if m.evaluations // args.every > 0]
    checkpoints = {}
    for m in marks:
        checkpoints.setdefault(m.evaluations // args.every * args.every, m)
    busy = getattr(evaluator, "busy_seconds", 0.0) / (getattr(evaluator, "workers", 1) * wall)
    return {
        "operator": operator, "evaluations": run.evaluations, "wall_s": wall,
        "overhead_ms_per_eval": outcome.stats.overhead_ms_per_evaluation, "evaluator_utilisation": busy,
        "checkpoints": [{"evaluations": k, "coverage": m.coverage, "qd_score": m.qd_score,
                         "max_fitness": m.max_fitness, "applied": m.applied_fraction, "ran": m.ran_fraction}
                        for k, m in sorted(checkpoints.items())],
        "final": {"coverage": metrics[-1].coverage, "qd_score": metrics[-1].qd_score,
                  "max_fitness": metrics[-1].max_fitness},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--operators", nargs="+", default=["gp", "llm"])
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--model", default=None)
    parser.add_argument("--seed", default="square")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--depth", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        rows = [bench(op, args, Path(scratch)) for op in args.operators]
    table = Table(title=f"MAP-Elites from {args.seed}, budget {args.budget} ({platform.node()})")
    for column in (
        "operator",
        "evals",
        "coverage",
        "QD score",
        "max fit",
        "wall s",
        "loop ms/eval",
        "eval util",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        for c in r["checkpoints"]:
            best = "-" if c["max_fitness"] is None else f"{c['max_fitness']:.1f}"
            cells = (str(c["evaluations"]), f"{c['coverage']:.2%}", f"{c['qd_score']:.0f}", best)
            table.add_row(r["operator"], *cells, "", "", "")
        table.add_row(r["operator"], f"{r['evaluations']} (all)", f"{r['final']['coverage']:.2%}",
                      f"{r['final']['qd_score']:.0f}", "", f"{r['wall_s']:.0f}",
                      f"{r['overhead_ms_per_eval']:.2f}", f"{r['evaluator_utilisation']:.0%}")  # fmt: skip
    Console().print(table)
    out = Path(__file__).parent / "results" / "loop_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
