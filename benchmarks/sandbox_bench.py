"""Sandbox benchmark: overhead per program, pool throughput, end-to-end evaluation vs direct simulation.

    .venv/bin/python benchmarks/sandbox_bench.py [--programs 600] [--rounds 6]

Prints three tables and writes benchmarks/results/sandbox_bench.json. Targets (issue: Sandbox):
overhead p50 <= 5 ms and p99 <= 20 ms; pool >= 150 trivial programs/s per core; sandboxed evaluation
(execute + validate + simulate) of the four seeds >= 90 % of the throughput of simulating them directly.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from elm_core.evaluation import EvaluatorPool
from elm_core.sandbox import Sandbox, SandboxPool
from elm_core.sodarace import SEED_NAMES, Walker, seed_source, simulate, walker_creator
from services.cli.inputs import seed_walkers

TRIVIAL = """
def make_walker():
    wc = walker_creator()
    a, b = wc.add_joint(0, 0), wc.add_joint(1, 0)
    wc.add_muscle(a, b)
    return wc.get_walker()
"""


def in_process_ms(source: str) -> float:
    """The same work without the sandbox: compile, run, serialise, parse, validate."""
    start = time.perf_counter()
    namespace: dict = {"walker_creator": walker_creator}
    exec(compile(source, "<program>", "exec"), namespace)  # noqa: S102 - our own trivial program
    Walker.from_dict(json.loads(json.dumps(namespace["make_walker"]())))
    return (time.perf_counter() - start) * 1e3


def overhead(programs: int) -> dict:
    with Sandbox() as sandbox:
        sandbox.run(TRIVIAL)  # warm
        totals = []
        for _ in range(programs):
            start = time.perf_counter()
            assert sandbox.run(TRIVIAL).ok
            totals.append((time.perf_counter() - start) * 1e3)
    direct = float(np.median([in_process_ms(TRIVIAL) for _ in range(200)]))
    over = np.array(totals) - direct
    return {"programs": programs, "in_process_ms": direct, "p50_ms": float(np.percentile(over, 50)),
            "p99_ms": float(np.percentile(over, 99))}  # fmt: skip


def pool_throughput(programs: int, workers: int) -> dict:
    with SandboxPool(workers=workers, queue_size=programs) as pool:
        pool.map([TRIVIAL] * 10)  # warm
        start = time.perf_counter()
        results = pool.map([TRIVIAL] * programs)
        elapsed = time.perf_counter() - start
    assert all(r.ok for r in results)
    rate = programs / elapsed
    return {"programs": programs, "workers": workers, "per_s": rate, "per_s_per_core": rate / os.cpu_count()}


def _simulate_all(walkers: list[Walker]) -> None:
    for walker in walkers:
        simulate(walker)


def end_to_end(rounds: int, workers: int, lanes: int) -> list[dict]:
    walkers = dict(seed_walkers())
    rows = []
    with (
        EvaluatorPool(workers=workers, queue_size=64) as evaluator,
        multiprocessing.get_context("spawn").Pool(workers) as direct,
    ):
        evaluator.map([seed_source(name) for name in SEED_NAMES])  # warm both
        direct.map(_simulate_all, [[w] for w in walkers.values()])
        for name in [*SEED_NAMES, "all four"]:
            names = list(SEED_NAMES) if name == "all four" else [name]
            jobs = [n for n in names for _ in range(rounds * workers)]
            start = time.perf_counter()
            direct.map(_simulate_all, [[walkers[n]] for n in jobs])
            direct_rate = len(jobs) / (time.perf_counter() - start)
            start = time.perf_counter()
            results = evaluator.map([seed_source(n) for n in jobs])
            sandboxed_rate = len(jobs) / (time.perf_counter() - start)
            assert all(r.ok for r in results)
            row = {"walker": name, "evaluations": len(jobs), "direct_per_s": direct_rate}
            rows.append(row | {"sandboxed_per_s": sandboxed_rate, "ratio": sandboxed_rate / direct_rate})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--lanes", type=int, default=2 * os.cpu_count(), help="evaluator lanes")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sandbox_bench.json")
    args = parser.parse_args()
    console = Console(width=140)

    o = overhead(args.programs)
    table = Table(
        title="sandbox overhead per trivial program (sandboxed minus in-process), ms; targets 5 / 20"
    )
    for column in ("programs", "in-process", "p50", "p99"):
        table.add_column(column, justify="right")
    table.add_row(str(o["programs"]), f"{o['in_process_ms']:.3f}", f"{o['p50_ms']:.2f}", f"{o['p99_ms']:.2f}")
    console.print(table)

    p = pool_throughput(args.programs, args.workers)
    table = Table(title="pool throughput on trivial programs; target >= 150/s per core")
    for column in ("programs", "workers", "programs/s", "per core"):
        table.add_column(column, justify="right")
    table.add_row(str(p["programs"]), str(p["workers"]), f"{p['per_s']:.0f}", f"{p['per_s_per_core']:.0f}")
    console.print(table)

    rows = end_to_end(args.rounds, args.workers, args.lanes)
    table = Table(
        title="evaluations/s: sandboxed (execute + validate + simulate) vs direct simulation; target >= 0.90"
    )
    for column in ("walker", "evaluations", "direct/s", "sandboxed/s", "ratio"):
        table.add_column(column, justify="left" if column == "walker" else "right")
    for r in rows:
        rates = f"{r['direct_per_s']:.1f}", f"{r['sandboxed_per_s']:.1f}", f"{r['ratio']:.2f}"
        table.add_row(r["walker"], str(r["evaluations"]), *rates)
    console.print(table)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {os.cpu_count()} cores",
              "overhead": o, "pool": p, "end_to_end": rows}  # fmt: skip
    args.out.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
