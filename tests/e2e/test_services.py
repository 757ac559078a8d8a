"""The four services as separate processes on loopback, driven the way a user drives them.

A GP run and an LLM run (tiny model through the model server) share the coordinator; one of two evaluator
replicas is SIGKILLed mid-run and the coordinator is restarted mid-run (SIGTERM, then SIGKILL): both runs
finish with every individual committed exactly once. The trainer builds a dataset from the GP run's log.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from elm_core.sodarace import seed_source
from elm_core.store import SQLiteStore
from protos.elm.v1 import evaluator_pb2, evaluator_pb2_grpc
from services.client import CoordinatorClient, TrainerClient

from .services_harness import ELM, ServiceProcess

GP_BUDGET = 600
LLM_SECONDS = 10


@pytest.fixture
def stack(tmp_path: Path, model_cache: Path) -> Iterator[dict[str, ServiceProcess]]:
    data, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    env = {"ELM_MODEL_CACHE": str(model_cache)}
    services = {
        "evaluator-a": ServiceProcess("evaluator", ["--workers", "1"], logs),
        "evaluator-b": ServiceProcess("evaluator", ["--workers", "1"], logs),
        "model": ServiceProcess("model", ["--model", "tiny", "--threads", "1"], logs, env=env),
    }
    services["trainer"] = ServiceProcess(
        "trainer",
        ["--store", str(data / "coordinator.sqlite"), "--checkpoints", str(tmp_path / "ckpt")],
        logs,
    )
    evaluators = [a for s in ("evaluator-a", "evaluator-b") for a in ("--evaluator", services[s].address)]
    services["coordinator"] = ServiceProcess(
        "coordinator", ["--data", str(data), *evaluators, "--model-server", services["model"].address], logs
    )
    try:
        for name in ("evaluator-a", "evaluator-b", "model", "coordinator", "trainer"):
            services[name].start()
        for service in services.values():
            service.wait_healthy()
        yield services
    finally:
        for service in services.values():
            service.stop()


def restart(service: ServiceProcess) -> None:
    service.process = None
    service.start().wait_healthy()


def wait_for(client: CoordinatorClient, run_id: str, evaluations: int) -> None:
    for event in client.watch_run(run_id):
        if event.run.evaluations >= evaluations or event.run.status in ("FINISHED", "FAILED"):
            return


def assert_mid_run(tmp_path: Path, run_id: str) -> None:
    with SQLiteStore(tmp_path / "data" / "coordinator.sqlite") as store:
        run = store.get_run(run_id)
    assert run.status == "RUNNING" and run.evaluations < GP_BUDGET, "the run ended before the restart"


def elm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ELM, *args], capture_output=True, text=True, timeout=300)


def test_four_services_run_evolution_through_replica_and_coordinator_failures(
    stack: dict[str, ServiceProcess], tmp_path: Path
) -> None:
    coordinator = stack["coordinator"]
    square = tmp_path / "square.py"
    square.write_text(seed_source("square"))

    # every service answers health (waited above), reflection and /metrics
    for service in stack.values():
        names = ProtoReflectionDescriptorDatabase(grpc.insecure_channel(service.address)).get_services()
        assert any(n.startswith("elm.v1.") for n in names) and "grpc.health.v1.Health" in names
        with urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics", timeout=5) as reply:
            assert b"elm_grpc_requests_total" in reply.read()

    # a user submits a GP run with the CLI and adds a second seed to it
    submitted = elm("submit", "--coordinator", coordinator.address, str(square), "--run", "walk",
                    "--operator", "gp", "--budget", str(GP_BUDGET), "--batch-size", "8")  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    added = elm("submit", "--coordinator", coordinator.address, "radial", "--run", "walk")
    assert added.returncode == 0 and "added 1 seed" in added.stdout, added.stderr

    with CoordinatorClient(coordinator.address) as client:
        # the tiny model writes noise: its run is bounded in time, since it never makes a program to count
        loop = {
            "batch_size": 4,
            "max_evaluations": None,
            "max_seconds": LLM_SECONDS,
            "max_barren_batches": 1000,
        }
        config = {"operator": "llm", "loop": loop, "sampling": {"max_new_tokens": 24}}
        llm = client.create_run([seed_source("square")], name="llm", config=config)

        # one evaluator replica dies mid-run
        wait_for(client, "walk", 40)
        stack["evaluator-a"].process.kill()
        wait_for(client, "walk", 120)

        # the coordinator is stopped gracefully, then killed, and restarted each time
        assert coordinator.signal(signal.SIGTERM) == 0
    assert_mid_run(tmp_path, "walk")
    restart(coordinator)
    with CoordinatorClient(coordinator.address) as client:
        wait_for(client, "walk", 240)
    coordinator.process.kill()
    coordinator.process.wait()
    assert_mid_run(tmp_path, "walk")
    restart(coordinator)

    watched = elm("watch", "--coordinator", coordinator.address, "walk")
    assert watched.returncode == 0 and "FINISHED" in watched.stdout, watched.stdout + watched.stderr
    with CoordinatorClient(coordinator.address) as client:
        wait_for(client, llm.run_id, 1 << 30)
        runs = {r.run_id: r for r in client.list_runs()}
        assert runs["walk"].status == "FINISHED" and runs["walk"].evaluations == GP_BUDGET
        assert runs["llm"].status == "FINISHED", runs["llm"].message
        top = client.get_archive("walk", top=3)
        assert len(top) == 3 and top[0].fitness >= top[-1].fitness
    archive = elm("archive", "--coordinator", coordinator.address, "walk", "--top", "3", "--json")
    assert archive.returncode == 0 and len(json.loads(archive.stdout)) == 3

    # nothing lost, nothing counted twice
    with SQLiteStore(tmp_path / "data" / "coordinator.sqlite") as store:
        walk = store.individuals("walk")
        assert [i.individual_id for i in walk] == list(range(GP_BUDGET))
        assert not [i for i in walk if i.status == "SANDBOX_ERROR"]
        assert sum(i.parent_id is None for i in walk) == 2
        llm_log = store.mutations("llm")
        assert (
            llm_log
            and {m.operator for m in llm_log} <= {"paper", "directed", "crossover"}
            and all(m.raw_output for m in llm_log)
        )

    # the trainer turns the GP run's mutation log into a dataset
    with TrainerClient(stack["trainer"].address) as trainer:
        job = trainer.start_job("walk", kind="dataset")
        final = [j for j in trainer.watch_job(job.job_id)][-1]
        assert final.status == "SUCCEEDED", final.message
        assert final.metrics["train"] + final.metrics["validation"] == final.metrics["selected"] > 0


SLOW_PROGRAM = seed_source("square").replace(
    "def make_walker():", "def make_walker():\n    sum(range(15_000_000))  # about a second of CPU\n", 1
)


def test_sigterm_lets_the_call_in_flight_finish_then_exits_cleanly(tmp_path: Path) -> None:
    evaluator = ServiceProcess("evaluator", ["--workers", "1"], tmp_path).start()
    try:
        evaluator.wait_healthy()
        stub = evaluator_pb2_grpc.EvaluatorServiceStub(grpc.insecure_channel(evaluator.address))
        request = evaluator_pb2.EvaluateRequest(programs=[SLOW_PROGRAM.encode()] * 2)
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(stub.Evaluate, request, timeout=60)
            time.sleep(0.5)
            assert evaluator.signal(signal.SIGTERM) == 0
            assert [r.status for r in in_flight.result().results] == ["OK", "OK"]
    finally:
        evaluator.stop()
    lines = [json.loads(line) for line in evaluator.log.read_text().splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert events.index("shutting down") < events.index("stopped")
    assert all(line["service"] == "evaluator" for line in lines)
