"""The coordinator over real gRPC on loopback: runs created, watched, paused, resumed, stopped and resumed
after a restart, with the archive and individuals read back; bad requests get typed status codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from elm_core.errors import InvalidRequestError, NotFoundError, StateError
from elm_core.sodarace import seed_source
from elm_core.store import SQLiteStore
from protos.elm.v1 import coordinator_pb2 as pb
from protos.elm.v1 import coordinator_pb2_grpc
from services.client import CoordinatorClient
from services.common import RunningServer, error_reason
from services.coordinator import CoordinatorServerConfig, serve

GP = {
    "mutation": {"operator": "gp"},
    "evaluation": {"sim": {"seconds": 4.0}},
    "loop": {"batch_size": 6, "pipeline_depth": 2, "max_evaluations": 30},
}


def start(data: Path) -> RunningServer:
    return serve(CoordinatorServerConfig(data_dir=data, local_workers=2), port=0, host="127.0.0.1")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start(tmp_path / "data")
    yield running
    running.stop(grace_s=5)


@pytest.fixture
def client(server: RunningServer) -> Iterator[CoordinatorClient]:
    with CoordinatorClient(server.address) as c:
        yield c


def finish(client: CoordinatorClient, run_id: str) -> list[pb.RunEvent]:
    return list(client.watch_run(run_id))


def test_a_run_is_created_watched_to_the_end_and_its_archive_read(client: CoordinatorClient) -> None:
    run = client.create_run([seed_source("square"), seed_source("radial")], name="walkers", config=GP)
    assert run.run_id == "walkers" and run.budget == 30
    events = finish(client, run.run_id)
    assert events[0].kind == "SNAPSHOT" and events[-1].run.status == "FINISHED"
    assert any(e.kind == "BATCH" for e in events)
    # changes that land together reach a watcher as one event (the last batch may arrive with FINISHED)
    evaluations = [e.run.progress.evaluations for e in events]
    assert evaluations == sorted(evaluations) and evaluations[-1] == 30
    elites = client.get_archive(run.run_id)
    assert len(elites) == client.get_run(run.run_id).progress.filled > 1
    assert [e.fitness for e in elites] == sorted((e.fitness for e in elites), reverse=True)
    assert [e.individual_id for e in client.get_archive(run.run_id, top=2, page_size=1)] == [
        e.individual_id for e in elites[:2]
    ]
    best = client.get_individual(run.run_id, elites[0].individual_id)
    assert "def make_walker" in best.source and best.fitness == elites[0].fitness
    assert json.loads(best.walker_json)["joints"]
    assert [r.run_id for r in client.list_runs()] == ["walkers"]


def test_pause_resume_with_a_new_budget_and_a_live_seed(client: CoordinatorClient) -> None:
    config = {**GP, "loop": {**GP["loop"], "max_evaluations": None}}
    run = client.create_run([seed_source("square")], config=config)
    for event in client.watch_run(run.run_id):
        if event.run.progress.evaluations >= 7:
            added = client.submit_seed(run.run_id, seed_source("radial"))
            break
    assert added.status == "RUNNING"
    paused = client.pause_run(run.run_id)
    assert paused.status == "PAUSED"
    assert client.pause_run(run.run_id).status == "PAUSED"  # idempotent
    resumed = client.resume_run(run.run_id, budget=paused.evaluations + 12)
    assert resumed.budget == paused.evaluations + 12
    assert finish(client, run.run_id)[-1].run.status == "FINISHED"
    seeds = [client.get_individual(run.run_id, i) for i in range(client.get_run(run.run_id).evaluations)]
    assert [s.source for s in seeds if not s.HasField("parent_id")] == [
        seed_source("square"),
        seed_source("radial"),
    ]


def test_a_seed_submitted_to_a_paused_new_run_joins_its_seeds(client: CoordinatorClient) -> None:
    run = client.create_run([seed_source("square")], name="later", config=GP, paused=True)
    assert run.status == "CREATED"
    client.submit_seed("later", seed_source("radial"))
    client.resume_run("later")
    assert finish(client, "later")[-1].run.status == "FINISHED"
    first_two = [client.get_individual("later", i).source for i in (0, 1)]
    assert first_two == [seed_source("square"), seed_source("radial")]


def test_stop_ends_a_run_for_good(client: CoordinatorClient) -> None:
    config = {**GP, "loop": {**GP["loop"], "max_evaluations": None}}
    run = client.create_run([seed_source("square")], config=config)
    next(e for e in client.watch_run(run.run_id) if e.kind == "BATCH")
    assert client.stop_run(run.run_id).status == "STOPPED"
    with pytest.raises(StateError):
        client.submit_seed(run.run_id, seed_source("radial"))


def test_a_restarted_coordinator_resumes_its_running_runs(tmp_path: Path) -> None:
    config = {**GP, "loop": {**GP["loop"], "max_evaluations": 60}}
    first = start(tmp_path / "data")
    with CoordinatorClient(first.address) as client:
        run = client.create_run([seed_source("square")], name="long", config=config)
        next(e for e in client.watch_run(run.run_id) if e.run.progress.evaluations >= 13)
    first.stop(grace_s=10)  # what SIGTERM does: batches in flight commit, the run stays RUNNING
    with SQLiteStore(tmp_path / "data" / "coordinator.sqlite") as store:
        interrupted = store.get_run("long")
    assert interrupted.status == "RUNNING" and 13 <= interrupted.evaluations < 60
    second = start(tmp_path / "data")
    try:
        with CoordinatorClient(second.address) as client:
            assert finish(client, "long")[-1].run.status == "FINISHED"
            ids = [client.get_individual("long", i).individual_id for i in range(60)]
            assert ids == list(range(60)) and client.get_run("long").evaluations == 60
    finally:
        second.stop(grace_s=5)


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (pb.CreateRunRequest(config_json="{not json"), "INVALID_CONFIG"),
        (pb.CreateRunRequest(config_json='{"mutation": {"operator": "magic"}}'), "INVALID_CONFIG"),
        (pb.CreateRunRequest(config_json='{"no_such_setting": 1}'), "INVALID_CONFIG"),
        (pb.CreateRunRequest(seed_programs=[b"def make_walker():\x00"]), "INVALID_REQUEST"),
        (pb.CreateRunRequest(seed_programs=[b"\xff\xfe not utf-8"]), "INVALID_REQUEST"),
        (pb.CreateRunRequest(seed_programs=[b"#" * (1 << 20)]), "INVALID_REQUEST"),
        (pb.CreateRunRequest(name="Bad Name!"), "INVALID_REQUEST"),
        (
            pb.CreateRunRequest(config_json='{"mutation": {"operator": "llm"}}'),
            "INVALID_CONFIG",
        ),  # no model server
    ],
)
def test_bad_create_requests_are_invalid_arguments(server: RunningServer, request_, reason: str) -> None:
    stub = coordinator_pb2_grpc.CoordinatorServiceStub(grpc.insecure_channel(server.address))
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateRun(request_, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == reason
    assert "Traceback" not in caught.value.details()


def test_unknown_runs_and_individuals_are_invalid_arguments(
    client: CoordinatorClient, server: RunningServer
) -> None:
    stub = coordinator_pb2_grpc.CoordinatorServiceStub(grpc.insecure_channel(server.address))
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetRun(pb.GetRunRequest(run_id="nope"), timeout=10)
    assert (
        caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and error_reason(caught.value) == "NOT_FOUND"
    )
    with pytest.raises(NotFoundError):
        list(client.watch_run("nope"))
    run = client.create_run([seed_source("square")], config=GP, paused=True)
    with pytest.raises(NotFoundError):
        client.get_individual(run.run_id, 999)
    with pytest.raises(InvalidRequestError):
        client.caller.call(client.stub.GetArchive, pb.GetArchiveRequest(run_id=run.run_id, page_size=5000))
    with pytest.raises(StateError, match="exists already"):
        client.create_run([seed_source("square")], name=run.run_id, config=GP)


def test_health_and_reflection_answer(server: RunningServer) -> None:
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    channel = grpc.insecure_channel(server.address)
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "elm.v1.CoordinatorService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "elm.v1.CoordinatorService" in services and "grpc.health.v1.Health" in services
