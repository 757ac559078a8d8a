"""The trainer over real gRPC on loopback, on a store holding a real GP run: dataset jobs watched to the
end, typed errors for bad requests, checkpoints listed from manifests, jobs re-queued after a restart or a
close."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from elm_core.errors import NotFoundError
from elm_core.models import DEFAULT_MODEL
from elm_core.store import JobStatus, SQLiteStore
from elm_core.training import DATASET_MANIFEST_FILE, TRAIN_FILE, VALIDATION_FILE, build_dataset, read_examples
from protos.elm.v1 import trainer_pb2 as pb
from protos.elm.v1 import trainer_pb2_grpc
from services.client._trainer import TrainerClient
from services.common import RunningServer, error_reason
from services.trainer import KINDS, SERVICE_NAME, JobContext, JobKind, TrainerServerConfig, serve
from services.trainer.checkpoints import MANIFEST_FILE


@pytest.fixture
def store_path(gp_run: tuple[Path, str], tmp_path: Path) -> Path:
    """This test's own copy of the run's store (the coordinator's file, as the trainer shares it)."""
    path = tmp_path / "coordinator.sqlite"
    shutil.copy(gp_run[0], path)
    return path


@pytest.fixture
def run_id(gp_run: tuple[Path, str]) -> str:
    return gp_run[1]


def start(store_path: Path, **settings: float) -> RunningServer:
    config = TrainerServerConfig(store_path=store_path, checkpoints_dir=store_path.parent / "checkpoints",
                                 poll_s=0.05, **settings)  # fmt: skip
    return serve(config, port=0, host="127.0.0.1")


@pytest.fixture
def server(store_path: Path) -> Iterator[RunningServer]:
    running = start(store_path)
    yield running
    running.stop(grace_s=5)


@pytest.fixture
def client(server: RunningServer) -> Iterator[TrainerClient]:
    with TrainerClient(server.address) as c:
        yield c


def test_a_dataset_job_runs_to_success_and_writes_the_dataset(
    client: TrainerClient, store_path: Path, run_id: str
) -> None:
    settings = {"include_ran": True, "validation_fraction": 0.5}
    job = client.start_job(run_id, "dataset", config=settings)
    assert (job.status, job.model, json.loads(job.config_json)) == ("QUEUED", DEFAULT_MODEL, settings)
    events = list(client.watch_job(job.job_id))
    assert events[-1].status == "SUCCEEDED" and events[-1].progress == 1.0
    assert [e.progress for e in events] == sorted(e.progress for e in events)
    assert client.get_job(job.job_id) == events[-1]
    directory = Path(events[-1].checkpoint)
    assert directory == store_path.parent / "checkpoints" / job.job_id
    with SQLiteStore(store_path) as store:
        expected = build_dataset(store, run_id, include_ran=True, validation_fraction=0.5)
    assert read_examples(directory / TRAIN_FILE) == list(expected.train)
    assert read_examples(directory / VALIDATION_FILE) == list(expected.validation)
    assert json.loads((directory / DATASET_MANIFEST_FILE).read_text())["sha256"] == expected.sha256
    metrics = events[-1].metrics
    assert (metrics["train"], metrics["validation"]) == (len(expected.train), len(expected.validation))
    assert [j.job_id for j in client.list_jobs(run_id)] == [job.job_id]
    assert [j.job_id for j in client.list_jobs()] == [job.job_id]
    assert client.list_jobs("another-run") == []
    assert client.list_checkpoints() == []  # a dataset is not a checkpoint: it has no manifest.json


def test_bad_requests_are_invalid_arguments_with_a_reason(server: RunningServer, run_id: str) -> None:
    stub = trainer_pb2_grpc.TrainerServiceStub(grpc.insecure_channel(server.address))
    cases = [
        ("ghost", "dataset", "", "NOT_FOUND", "run 'ghost'"),
        (run_id, "poem", "", "INVALID_REQUEST", "known kinds: dataset"),
        (run_id, "dataset", "{oops", "INVALID_CONFIG", "not JSON"),
        (run_id, "dataset", "[]", "INVALID_CONFIG", "must be a JSON object"),
        (run_id, "dataset", '{"epochs": 3}', "INVALID_CONFIG", "unknown settings epochs; known: include_ran, "
         "style, validation_fraction"),
        (run_id, "dataset", '{"style": "poem"}', "INVALID_CONFIG", "style must be one of"),
        (run_id, "dataset", '{"validation_fraction": 1}', "INVALID_CONFIG", "validation_fraction"),
    ]  # fmt: skip
    for run, kind, config_json, reason, words in cases:
        with pytest.raises(grpc.RpcError) as caught:
            stub.StartJob(pb.StartJobRequest(run_id=run, kind=kind, config_json=config_json), timeout=5)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(caught.value) == reason and words in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetJob(pb.GetJobRequest(job_id="nope"), timeout=5)
    assert (
        caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and error_reason(caught.value) == "NOT_FOUND"
    )
    with TrainerClient(server.address) as client, pytest.raises(NotFoundError, match="ghost"):
        client.start_job("ghost", "dataset")
    assert stub.ListJobs(pb.ListJobsRequest(), timeout=5).jobs == []


def test_checkpoints_are_listed_from_their_manifests(client: TrainerClient, store_path: Path) -> None:
    checkpoints = store_path.parent / "checkpoints"
    manifest = {"base_model": "tiny", "job_id": "j1", "run_id": "r1", "metrics": {"loss": 0.5, "note": "x"},
                "created_at": 123.0, "other": [1, 2]}  # fmt: skip
    (checkpoints / "good").mkdir()
    (checkpoints / "good" / MANIFEST_FILE).write_text(json.dumps(manifest))
    (checkpoints / "garbled").mkdir()
    (checkpoints / "garbled" / MANIFEST_FILE).write_text("{not json")
    (checkpoints / "half-written").mkdir()
    (found,) = client.list_checkpoints()
    assert (found.path, found.job_id, found.run_id, found.base_model) == (
        str(checkpoints / "good"), "j1", "r1", "tiny")  # fmt: skip
    assert dict(found.metrics) == {"loss": 0.5} and found.created_at == 123.0
    assert [c.job_id for c in client.list_checkpoints("r1")] == ["j1"]
    assert client.list_checkpoints("r2") == []


def test_a_restarted_trainer_requeues_the_job_a_killed_one_left_running(
    store_path: Path, run_id: str
) -> None:
    with SQLiteStore(store_path) as store:  # what a trainer killed mid-job leaves behind
        store.create_job(job_id="left", run_id=run_id, kind="dataset", model="m", config_json="{}")
        store.update_job("left", status=JobStatus.RUNNING, progress=0.5, message="writing")
    running = start(store_path)
    try:
        with TrainerClient(running.address) as client:
            events = list(client.watch_job("left"))
    finally:
        running.stop(grace_s=5)
    assert events[-1].status == "SUCCEEDED" and events[-1].metrics["train"] > 0
    assert (Path(events[-1].checkpoint) / TRAIN_FILE).is_file()


def slow_job(context: JobContext, config: object) -> dict[str, float]:
    """Reports progress until the trainer closes (report raises then)."""
    while True:
        context.report(0.5, "still going")
        time.sleep(0.02)


def failing_job(context: JobContext, config: object) -> dict[str, float]:
    raise RuntimeError("boom")


def test_kinds_plug_in_and_close_requeues_a_job_that_does_not_finish(
    store_path: Path, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(KINDS, "slow", JobKind(lambda settings: None, slow_job))
    monkeypatch.setitem(KINDS, "failing", JobKind(lambda settings: None, failing_job))
    running = start(store_path, finish_grace_s=0.2)
    with TrainerClient(running.address) as client:
        failed = list(client.watch_job(client.start_job(run_id, "failing").job_id))[-1]
        assert (failed.status, failed.message) == ("FAILED", "RuntimeError: boom")
        slow = client.start_job(run_id, "slow")
        watch = client.watch_job(slow.job_id)
        assert next(e for e in watch if e.status == "RUNNING").job_id == slow.job_id
        running.stop(grace_s=5)
        assert all(e.status == "RUNNING" for e in watch)  # the drain ended the watch
    with SQLiteStore(store_path) as store:
        job = store.get_job(slow.job_id)
    assert (job.status, job.progress) == (JobStatus.QUEUED, 0.0) and "re-queued" in job.message


def test_health_and_reflection_answer(server: RunningServer) -> None:
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    channel = grpc.insecure_channel(server.address)
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE_NAME):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert SERVICE_NAME == "elm.v1.TrainerService" and SERVICE_NAME in services
    assert "grpc.health.v1.Health" in services
