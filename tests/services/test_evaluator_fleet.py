"""The EvaluatorPool port, in process and over gRPC: one contract suite runs against both, then what only the
fleet does: spreading chunks, surviving a replica that stops mid-batch, backing off from a full one, DNS
names, giving up."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from elm_core.errors import BackendUnavailableError
from elm_core.evaluation import EvaluatorPool
from elm_core.sandbox import SandboxConfig
from elm_core.sodarace import SEED_NAMES, SimConfig, seed_source, simulate
from protos.elm.v1 import evaluator_pb2, evaluator_pb2_grpc
from services.client import EvaluatorFleet
from services.common import RunningServer
from services.evaluator import EvaluatorServerConfig, serve

SIM = SimConfig(seconds=2.0)
LIMITS = SandboxConfig(cpu_time_s=1, wall_time_s=5.0, source_limit_bytes=4096)

HOSTILE = {
    "infinite loop": ("def make_walker():\n    while True:\n        pass\n", "CPU_TIMEOUT"),
    "syntax error": ("def make_walker(:\n", "SYNTAX_ERROR"),
    "no make_walker": ("x = 1\n", "NO_ENTRY_POINT"),
    "raises": ("def make_walker():\n    raise ValueError('no')\n", "PROGRAM_ERROR"),
    "returns junk": ("def make_walker():\n    return {'joints': [[0, 0]]}\n", "INVALID_WALKER"),
    "nul bytes": ("x = 1\x00\n", "SYNTAX_ERROR"),
    "lone surrogate": ("x = '\ud800'\n", "SYNTAX_ERROR"),
    "oversized": ("#" * 5000, "SYNTAX_ERROR"),
}


def walker_program(index: int, sleep_s: float = 0.0) -> str:
    """A program whose walker's width tells which program it came from."""
    return (
        f"import time\ndef make_walker():\n    time.sleep({sleep_s})\n    wc = walker_creator()\n"
        f"    a, b = wc.add_joint(0, 0), wc.add_joint({1 + index}, 0)\n"
        "    wc.add_muscle(a, b)\n    return wc.get_walker()\n"
    )


def start_replicas(count: int) -> list[RunningServer]:
    """One-lane replicas, started side by side (each warms its lane up before serving)."""
    config = EvaluatorServerConfig(workers=1, sim=SIM, sandbox=LIMITS)
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: serve(config, port=0), range(count)))


def refused_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[RunningServer]]:
    running = start_replicas(2)
    yield running
    for server in running:
        server.stop(grace_s=5)


@pytest.fixture(scope="module")
def fleet(replicas: list[RunningServer]) -> Iterator[EvaluatorFleet]:
    with EvaluatorFleet([r.address for r in replicas]) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def embedded() -> Iterator[EvaluatorPool]:
    with EvaluatorPool(LIMITS, SIM, workers=2) as evaluator:
        yield evaluator


@pytest.fixture(params=["embedded", "fleet"])
def evaluator(request: pytest.FixtureRequest) -> EvaluatorPool | EvaluatorFleet:
    return request.getfixturevalue(request.param)


# The contract: what the MAP-Elites loop may rely on from any EvaluatorPool.


def test_seeds_walk_as_far_as_simulating_them_directly(evaluator, seed_walkers) -> None:
    results = evaluator.evaluate([seed_source(name) for name in SEED_NAMES])
    for name, result in zip(SEED_NAMES, results, strict=True):
        assert result.ok, (name, result.status, result.message)
        direct = simulate(seed_walkers[name], SIM)
        assert (result.fitness, result.descriptors, result.walker) == (
            direct.fitness,
            direct.descriptors,
            seed_walkers[name],
        )


def test_hostile_programs_are_typed_results_in_order(evaluator) -> None:
    sources = [source for source, _ in HOSTILE.values()]
    results = evaluator.evaluate([seed_source("square"), *sources])
    assert results[0].ok
    assert {name: r.status for name, r in zip(HOSTILE, results[1:], strict=True)} == {
        name: status for name, (_, status) in HOSTILE.items()
    }
    assert all(r.fitness is None and r.walker is None for r in results[1:])


def test_the_fleet_screens_programs_with_the_limit_its_replicas_report(replicas) -> None:
    with EvaluatorFleet([replicas[0].address]) as fleet:
        (result,) = fleet.evaluate(["#" * (LIMITS.source_limit_bytes + 1)])
        assert result.status == "SYNTAX_ERROR" and f"limit of {LIMITS.source_limit_bytes}" in result.message
        assert fleet.programs_by_replica() == {}  # refused here, never sent


def test_two_threads_evaluating_at_once_each_get_their_own_results(evaluator) -> None:
    batches = [[walker_program(i) for i in range(first, first + 6)] for first in (0, 10)]
    widths: list[list[float]] = [[], []]

    def evaluate(k: int) -> None:
        widths[k] = [r.walker.width for r in evaluator.evaluate(batches[k])]

    threads = [threading.Thread(target=evaluate, args=(k,)) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert widths == [[1.0 + i for i in range(first, first + 6)] for first in (0, 10)]


def test_an_empty_batch_has_no_results(evaluator) -> None:
    assert evaluator.evaluate([]) == []


# The fleet.


def test_chunks_are_spread_over_both_replicas(replicas) -> None:
    with EvaluatorFleet([r.address for r in replicas]) as fleet:
        results = fleet.evaluate([walker_program(i) for i in range(8)])
        assert [r.walker.width for r in results] == [1.0 + i for i in range(8)]
        assert sorted(fleet.programs_by_replica().values()) == [4, 4]
        assert sorted(c.max_batch for c in fleet.capabilities()) == [4, 4]


def test_a_replica_stopped_mid_batch_leaves_every_result_to_the_other() -> None:
    victim, survivor = start_replicas(2)
    try:
        with EvaluatorFleet([victim.address, survivor.address]) as fleet:
            stopper = threading.Thread(target=stop_once_busy, args=(victim,))
            stopper.start()
            results = fleet.evaluate([walker_program(i, sleep_s=0.2) for i in range(8)])
            stopper.join()
            assert [r.walker.width for r in results] == [1.0 + i for i in range(8)]
            (name,) = fleet.programs_by_replica()
            assert name.endswith(f":{survivor.port}")
    finally:
        victim.stop(grace_s=0)
        survivor.stop(grace_s=5)


def stop_once_busy(server: RunningServer) -> None:
    while server.services[0].servicer.admission.in_flight == 0:
        time.sleep(0.01)
    server.stop(grace_s=0)


def test_a_replica_full_of_another_clients_work_is_retried_after_a_back_off(replicas) -> None:
    replica = replicas[0]
    admission = replica.services[0].servicer.admission
    stub = evaluator_pb2_grpc.EvaluatorServiceStub(grpc.insecure_channel(replica.address))
    request = evaluator_pb2.EvaluateRequest(
        programs=[walker_program(0, sleep_s=0.3).encode()] * admission.limit
    )
    other_client = threading.Thread(target=stub.Evaluate, args=(request,))
    other_client.start()
    while admission.in_flight < admission.limit:
        time.sleep(0.01)
    with EvaluatorFleet([replica.address]) as fleet:
        assert fleet.evaluate([walker_program(7)])[0].walker.width == 8.0
    other_client.join()


def test_a_target_that_refuses_connections_is_skipped(replicas) -> None:
    with EvaluatorFleet([refused_address(), replicas[0].address]) as fleet:
        assert [r.walker.width for r in fleet.evaluate([walker_program(i) for i in range(3)])] == [1, 2, 3]
        assert len(fleet.capabilities()) == 1


def test_a_dns_name_reaches_each_replica_once(replicas) -> None:
    port = replicas[1].port
    with EvaluatorFleet([f"localhost:{port}", f"[::1]:{port}"]) as fleet:
        assert fleet.evaluate([seed_source("square")])[0].ok
        (capabilities,) = fleet.capabilities()  # 127.0.0.1 and ::1 reach the same replica: counted once
        assert capabilities.replica.endswith(f":{port}")


def test_no_usable_replica_is_backend_unavailable_after_the_give_up_time() -> None:
    with EvaluatorFleet([refused_address()], give_up_s=1.0) as fleet:
        started = time.perf_counter()
        with pytest.raises(BackendUnavailableError):
            fleet.evaluate([seed_source("square")])
        assert 1.0 <= time.perf_counter() - started < 3.0
        assert fleet.evaluate(["x = 1\x00"])[0].status == "SYNTAX_ERROR"  # rejected here, never sent
