"""The model server's dynamic-batching gain (`grpc_bench.py --section model`): aggregate generated tokens/s
with 1 caller and with C callers.

An in-process model server on 127.0.0.1; each caller sends `requests` Mutate calls of one parent, one after
another; all callers start together. Tokens are the server's own count (GetModelInfo.generated_tokens).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from elm_core.models import SamplingConfig
from elm_core.sodarace import seed_source
from protos.elm.v1 import mutation_pb2, mutation_pb2_grpc
from services.common import channel
from services.model_server import ModelServerConfig, serve


def measure_batching_gain(
    model: str = "tiny",
    callers: Sequence[int] = (1, 8),
    requests_per_caller: int = 4,
    max_new_tokens: int = 64,
    max_wait_ms: float = 5.0,
    threads: int | None = None,
) -> list[dict]:
    """One row per caller count: generated tokens/s over all callers, mean call latency, and the gain over
    the first row's tokens/s."""
    sampling = SamplingConfig(max_new_tokens=max_new_tokens)
    config = ModelServerConfig(
        model=model, max_batch_size=max(callers), max_wait_ms=max_wait_ms, sampling=sampling, threads=threads
    )
    server = serve(config, host="127.0.0.1")
    link = channel(server.address)
    try:
        stub = mutation_pb2_grpc.MutationServiceStub(link)
        stub.Mutate(_request(-1), timeout=600)  # warm-up: the first call pays for lazy initialisation
        rows = [_measure(stub, count, requests_per_caller) for count in callers]
    finally:
        link.close()
        server.stop(grace_s=0)
    for row in rows:
        row["gain"] = row["tokens_per_s"] / rows[0]["tokens_per_s"]
    return rows


def _request(caller: int) -> mutation_pb2.MutateRequest:
    """One parent, distinct per caller (as in a run: parents differ), in the model's own style."""
    source = f"# caller {caller}\n{seed_source('square')}"
    return mutation_pb2.MutateRequest(parents=[mutation_pb2.Parent(source=source.encode())])


def _measure(stub: mutation_pb2_grpc.MutationServiceStub, callers: int, requests: int) -> dict:
    info = mutation_pb2.GetModelInfoRequest()
    before = stub.GetModelInfo(info, timeout=10).generated_tokens
    start = threading.Barrier(callers + 1)

    def caller(index: int) -> list[float]:
        start.wait()
        latencies = []
        for _ in range(requests):
            began = time.perf_counter()
            stub.Mutate(_request(index), timeout=600)
            latencies.append(time.perf_counter() - began)
        return latencies

    with ThreadPoolExecutor(callers) as pool:
        running = [pool.submit(caller, index) for index in range(callers)]
        start.wait()
        began = time.perf_counter()
        latencies = [seconds for future in running for seconds in future.result()]
    seconds = time.perf_counter() - began
    tokens = stub.GetModelInfo(info, timeout=10).generated_tokens - before
    return {"callers": callers, "calls": len(latencies), "generated_tokens": tokens, "seconds": seconds,
            "tokens_per_s": tokens / seconds, "mean_latency_s": sum(latencies) / len(latencies)}  # fmt: skip
