"""Containers benchmark: image sizes, cold `docker compose up` to healthy, and evaluation throughput through
the containerised evaluator fleet vs the embedded evaluator on the same machine.

    .venv/bin/python benchmarks/compose_bench.py [--ups 3] [--workers 2] [--batches 16] [--rounds 3]

Needs the images built (deploy/scripts/bootstrap.sh, or `docker compose build`). Runs the stack as its own
compose project (elm-bench) with the tiny model, so nothing is downloaded, and removes it at the end.
Throughput: the four seeds repeated in batches of 8, two callers at once (the loop at pipeline depth 2); the
fleet side runs in the coordinator's container against the compose file's evaluator replicas (2 × 1 worker,
1 CPU each), the embedded side is an in-process `EvaluatorPool` with `--workers` workers; the sides
alternate for `--rounds` rounds and the ratio is the median of the rounds' ratios (target >= 0.80).
Prints a table and writes benchmarks/results/compose_bench.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import docker
import numpy as np
from grpc_bench import THREADS, seed_batches, throughput  # beside this script: the same workload
from rich.console import Console
from rich.table import Table

from elm_core.evaluation import EvaluatorPool

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "elm-bench"
IMAGES = ["elm-evaluator:dev", "elm-coordinator:dev", "elm-model-server:dev", "elm-trainer:dev"]
CALLERS = THREADS  # FLEET_THROUGHPUT has the same 2 callers

# Runs in the coordinator's container: programs/s of the fleet on the batches given on stdin.
FLEET_THROUGHPUT = """
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
from services.client import EvaluatorFleet
batches, warm = json.load(sys.stdin)
with EvaluatorFleet(["evaluator:50052"]) as fleet, ThreadPoolExecutor(2) as pool:
    list(pool.map(fleet.evaluate, warm))
    started = time.perf_counter()
    results = [r for batch in pool.map(fleet.evaluate, batches) for r in batch]
    elapsed = time.perf_counter() - started
assert all(r.ok for r in results), {r.execution for r in results}
print(json.dumps(len(results) / elapsed))
"""


def compose(*args: str, input: str | None = None) -> str:
    env = {**os.environ, "ELM_MODEL": "tiny", "ELM_COORDINATOR_PORT": "0"}
    done = subprocess.run(["docker", "compose", "--project-name", PROJECT, *args], cwd=ROOT, env=env,
                          input=input, capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"docker compose {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def image_sizes() -> dict[str, float]:
    with contextlib.closing(docker.from_env()) as client:
        return {image: client.images.get(image).attrs["Size"] / 1e6 for image in IMAGES}


def cold_up_s() -> float:
    """Seconds from no containers and fresh volumes to every service healthy."""
    compose("down", "--volumes", "--timeout", "5")
    started = time.perf_counter()
    compose("up", "--detach", "--wait", "--wait-timeout", "600")
    return time.perf_counter() - started


def fleet_throughput(batches: list[list[str]]) -> float:
    payload = json.dumps([batches, seed_batches(CALLERS)])
    out = compose("exec", "-T", "coordinator", "python3", "-c", FLEET_THROUGHPUT, input=payload)
    return float(out.strip().splitlines()[-1])


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--ups", type=int, default=3, help="cold starts to time")
    parser.add_argument("--workers", type=int, default=2, help="the embedded evaluator's workers")
    parser.add_argument("--batches", type=int, default=16, help="batches of 8 per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    console = Console()

    sizes = image_sizes()
    try:
        ups = [cold_up_s() for _ in range(args.ups)]
        batches = seed_batches(args.batches)
        rates: dict[str, list[float]] = {"embedded": [], "containers": []}
        with EvaluatorPool(workers=args.workers) as evaluator:
            throughput(evaluator.evaluate, seed_batches(CALLERS))
            for _ in range(args.rounds):
                rates["embedded"].append(throughput(evaluator.evaluate, batches))
                rates["containers"].append(fleet_throughput(batches))
    finally:
        compose("down", "--volumes", "--timeout", "5")
    ratio = float(np.median(np.array(rates["containers"]) / np.array(rates["embedded"])))

    table = Table(title=f"containers ({platform.node()}, {os.cpu_count()} cores)")
    for column in ("measure", "value"):
        table.add_column(column)
    for image, mb in sizes.items():
        table.add_row(f"image {image}", f"{mb:,.0f} MB")
    table.add_row(f"cold `docker compose up` to healthy (median of {len(ups)})", f"{np.median(ups):.1f} s")
    table.add_row("seed evaluations/s, embedded", f"{np.median(rates['embedded']):.1f}")
    table.add_row("seed evaluations/s, containerised fleet", f"{np.median(rates['containers']):.1f}")
    table.add_row("ratio (target >= 0.80)", f"{ratio:.2f}")
    console.print(table)

    out = ROOT / "benchmarks" / "results" / "compose_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"images_mb": sizes, "cold_up_s": ups, "rates": rates, "ratio": ratio,
              "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
