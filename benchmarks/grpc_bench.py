"""gRPC benchmark: what going through the services costs compared with calling the core in process.

    .venv/bin/python benchmarks/grpc_bench.py [--section evaluation|model|all] [--workers 2] [--replicas 2]
                                              [--batches 16] [--rounds 3] [--calls 100]
                                              [--model tiny] [--callers 1 8] [--tokens 64] [--threads 1]

Section `evaluation`: (a) throughput on the four seeds repeated, batches of 8, two threads calling evaluate at
once (as the loop does at pipeline depth 2): the embedded EvaluatorPool with W workers vs an EvaluatorFleet
over R evaluator servers started in this process with W workers in all, measured in alternating rounds
(ratio: the median of the rounds' ratios); target ratio >= 0.90. (b) per-call overhead of Evaluate on a batch
of 16 trivial programs: gRPC latency minus in-process latency (paired calls), p50/p99.
Section `model`: the model server's dynamic batching, aggregate generated tokens/s with 8 concurrent Mutate
callers vs 1 (benchmarks/_model_batching.py).
Prints a table per section and writes benchmarks/results/grpc_bench.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import structlog
from rich.console import Console
from rich.table import Table

from elm_core.evaluation import EvalResult, EvaluatorPool
from elm_core.sodarace import SEED_NAMES, SimConfig, seed_source
from protos.elm.v1 import evaluator_pb2, evaluator_pb2_grpc
from services.client import EvaluatorFleet
from services.common import RunningServer
from services.evaluator import EvaluatorServerConfig, serve

TRIVIAL = """
def make_walker():
    wc = walker_creator()
    a, b = wc.add_joint(0, 0), wc.add_joint(1, 0)
    wc.add_muscle(a, b)
    return wc.get_walker()
"""
BATCH = 8
THREADS = 2  # evaluate() callers at once, as the loop's pipeline depth 2
OVERHEAD_BATCH = 16
OVERHEAD_SIM_S = 1.0  # short simulations, so that the evaluation's own spread does not hide the overhead


def seed_batches(batches: int) -> list[list[str]]:
    """`batches` batches of 8, the four seeds repeated."""
    sources = [seed_source(name) for name in SEED_NAMES]
    return [[sources[(b * BATCH + i) % len(sources)] for i in range(BATCH)] for b in range(batches)]


def throughput(evaluate: Callable[[Sequence[str]], list[EvalResult]], batches: list[list[str]]) -> float:
    """Programs per second with THREADS threads calling `evaluate` back to back."""
    with ThreadPoolExecutor(THREADS) as pool:
        started = time.perf_counter()
        results = [r for batch in pool.map(evaluate, batches) for r in batch]
        elapsed = time.perf_counter() - started
    assert all(r.ok for r in results), {r.status for r in results}
    return len(results) / elapsed


def start_replicas(
    replicas: int, workers: int, *, max_in_flight: int = 0, sim_seconds: float = SimConfig.seconds
) -> list[RunningServer]:
    """`replicas` evaluator servers in this process sharing `workers` (max_in_flight 0: the default)."""
    config = EvaluatorServerConfig(
        workers=max(1, workers // replicas), max_in_flight=max_in_flight, sim=SimConfig(seconds=sim_seconds)
    )
    with ThreadPoolExecutor(replicas) as pool:
        return list(pool.map(lambda _: serve(config, port=0, host="127.0.0.1"), range(replicas)))


def evaluation_throughput(args: argparse.Namespace, replicas: list[RunningServer]) -> dict:
    """Programs/s of each side over `rounds` rounds, the sides alternating (a busy host drifts); medians."""
    batches, warm = seed_batches(args.batches), seed_batches(THREADS)
    with (
        EvaluatorPool(workers=args.workers) as embedded,
        EvaluatorFleet([r.address for r in replicas]) as fleet,
    ):
        sides = {"embedded": embedded.evaluate, "grpc": fleet.evaluate}
        for evaluate in sides.values():
            throughput(evaluate, warm)
        warmed = fleet.programs_by_replica()
        rates: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, evaluate in sides.items():
                rates[name].append(throughput(evaluate, batches))
        spread = {name: n - warmed.get(name, 0) for name, n in fleet.programs_by_replica().items()}
    ratios = np.array(rates["grpc"]) / np.array(rates["embedded"])  # paired by round, so drift cancels
    return {"programs": args.rounds * len(batches) * BATCH, "workers": args.workers,
            "replicas": len(replicas), "embedded_per_s": float(np.median(rates["embedded"])),
            "grpc_per_s": float(np.median(rates["grpc"])), "ratio": float(np.median(ratios)), "rounds": rates,
            "programs_by_replica": spread}  # fmt: skip


def evaluate_overhead(args: argparse.Namespace) -> dict:
    """Paired calls on a replica and an EvaluatorPool with the same workers: gRPC minus in-process, in ms."""
    sim = SimConfig(seconds=OVERHEAD_SIM_S)
    (replica,) = start_replicas(1, args.workers, max_in_flight=OVERHEAD_BATCH, sim_seconds=sim.seconds)
    stub = evaluator_pb2_grpc.EvaluatorServiceStub(grpc.insecure_channel(replica.address))
    request = evaluator_pb2.EvaluateRequest(programs=[TRIVIAL.encode()] * OVERHEAD_BATCH)
    try:
        with EvaluatorPool(sim_config=sim, workers=args.workers, queue_size=OVERHEAD_BATCH) as embedded:

            def in_process() -> None:
                embedded.evaluate([TRIVIAL] * OVERHEAD_BATCH)

            def over_grpc() -> None:
                stub.Evaluate(request, timeout=60)

            in_process()  # warm both
            over_grpc()
            pairs = [(_ms(in_process), _ms(over_grpc)) for _ in range(args.calls)]
    finally:
        replica.stop(grace_s=5)
    local, remote = np.array(pairs).T
    over = remote - local
    return {"calls": args.calls, "programs_per_call": OVERHEAD_BATCH, "sim_seconds": sim.seconds,
            "in_process_p50_ms": float(np.median(local)), "grpc_p50_ms": float(np.median(remote)),
            "p50_ms": float(np.percentile(over, 50)), "p99_ms": float(np.percentile(over, 99))}  # fmt: skip


def _ms(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1e3


def evaluation_section(args: argparse.Namespace, console: Console) -> dict:
    replicas = start_replicas(args.replicas, args.workers)
    try:
        rate = evaluation_throughput(args, replicas)
    finally:
        for replica in replicas:
            replica.stop(grace_s=5)
    table = Table(title=f"seed evaluations/s, batches of {BATCH}, {THREADS} callers; target ratio >= 0.90")
    for column in ("programs", "workers", "replicas", "embedded/s", "gRPC/s", "ratio"):
        table.add_column(column, justify="right")
    rates = f"{rate['embedded_per_s']:.1f}", f"{rate['grpc_per_s']:.1f}", f"{rate['ratio']:.2f}"
    table.add_row(str(rate["programs"]), str(rate["workers"]), str(rate["replicas"]), *rates)
    console.print(table)
    over = evaluate_overhead(args)
    console.print(_overhead_table(over))
    return {"throughput": rate, "overhead": over}


def _overhead_table(over: dict) -> Table:
    title = f"Evaluate overhead per call of {OVERHEAD_BATCH} trivial programs (gRPC - in-process), ms"
    table = Table(title=title)
    for column in ("calls", "in-process p50", "gRPC p50", "overhead p50", "overhead p99"):
        table.add_column(column, justify="right")
    latencies = f"{over['in_process_p50_ms']:.1f}", f"{over['grpc_p50_ms']:.1f}"
    table.add_row(str(over["calls"]), *latencies, f"{over['p50_ms']:.2f}", f"{over['p99_ms']:.2f}")
    return table


def model_section(args: argparse.Namespace, console: Console) -> dict:
    from _model_batching import measure_batching_gain  # beside this script

    rows = measure_batching_gain(args.model, args.callers, args.requests, args.tokens, threads=args.threads)
    threads = args.threads or "default"
    table = Table(title=f"model server batching: {args.model}, {args.tokens} new tokens, {threads} threads")
    for column in ("callers", "calls", "generated tokens", "seconds", "tokens/s", "mean latency s", "gain"):
        table.add_column(column, justify="right")
    for row in rows:
        counts = str(row["callers"]), str(row["calls"]), str(row["generated_tokens"])
        rates = f"{row['seconds']:.2f}", f"{row['tokens_per_s']:.1f}", f"{row['mean_latency_s']:.2f}"
        table.add_row(*counts, *rates, f"{row['gain']:.2f}x")
    console.print(table)
    return {"batching": rows}


SECTIONS: dict[str, Callable[[argparse.Namespace, Console], dict]] = {
    "evaluation": evaluation_section,
    "model": model_section,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=[*SECTIONS, "all"], default="all")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="evaluator workers in all")
    parser.add_argument("--replicas", type=int, default=2, help="evaluator servers sharing the workers")
    parser.add_argument("--batches", type=int, default=16, help="seed batches of 8 per throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds, embedded and gRPC in turn")
    parser.add_argument("--calls", type=int, default=100, help="paired Evaluate calls for the overhead")
    parser.add_argument("--model", default="tiny", help="the model server's model (section model)")
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 8], help="concurrent Mutate callers")
    parser.add_argument("--requests", type=int, default=4, help="Mutate calls per caller")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per child")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (hf backend)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "grpc_bench.json")
    args = parser.parse_args()
    console = Console(width=140)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # no call logs
    sections = list(SECTIONS) if args.section == "all" else [args.section]
    record = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {os.cpu_count()} cores",
              "args": {k: str(v) for k, v in vars(args).items()}}  # fmt: skip
    for name in sections:
        record[name] = SECTIONS[name](args, console)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
