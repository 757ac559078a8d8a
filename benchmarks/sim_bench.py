"""Simulator benchmark: per-step cost against the engine's floor and the naive loop, evaluations/s.

    .venv/bin/python benchmarks/sim_bench.py [--steps 2000] [--repeat 5]

Prints a table and writes benchmarks/results/sim_bench.json. Targets (issue: Sodarace):
ours/floor <= 1.5 and naive/ours >= 3 on each seed and on a 30-joint/80-muscle walker.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from rich.console import Console

from elm_core.sodarace.bench import bench_walker, benchmark_walker
from services.cli.inputs import seed_walkers
from services.cli.main import sim_bench_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sim_bench.json")
    args = parser.parse_args()
    rows = [
        bench_walker(name, walker, steps=args.steps, repeat=args.repeat)
        for name, walker in [*seed_walkers(), ("30j/80m", benchmark_walker())]
    ]
    Console(width=140).print(sim_bench_table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {platform.processor() or ''} {platform.python_version()}".strip(),
        "steps": args.steps,
        "repeat": args.repeat,
        "rows": [row.to_dict() for row in rows],
    }
    args.out.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
