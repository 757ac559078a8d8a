"""invent jobs (stage 3): through a real trainer on loopback to a listed checkpoint with its reward history;
bad settings refused before queueing; an interrupted job resumes from the iteration it saved."""

from __future__ import annotations

import json
import re
from pathlib import Path

import grpc
import pytest

from elm_core.store import SQLiteStore
from elm_core.training import INVENT_MANIFEST, STATE_DIR, read_invent_manifest
from protos.elm.v1 import trainer_pb2 as pb
from protos.elm.v1 import trainer_pb2_grpc
from services.client._trainer import TrainerClient
from services.common import RunningServer, error_reason
from services.trainer import KINDS, JobContext, JobInterrupted

SETTINGS = {"terrains": ["flat", "tunnel"], "iterations": 2, "prompt_warmup_steps": 0,
            "samples_per_iteration": 4, "max_new_tokens": 16, "micro_batch": 2, "sim_seconds": 2.0,
            "threads": 1, "evaluator_workers": 1}  # fmt: skip


def test_an_invent_job_succeeds_with_a_listed_checkpoint(
    trainer_server: RunningServer, gp_run: tuple[Path, str]
) -> None:
    run_id = gp_run[1]
    with TrainerClient(trainer_server.address) as client:
        job = client.start_job(run_id, "invent", model="tiny", config=SETTINGS)
        events = list(client.watch_job(job.job_id))
        (checkpoint,) = client.list_checkpoints(run_id)
    done = events[-1]
    assert (done.status, done.progress, done.model) == ("SUCCEEDED", 1.0, "tiny"), done.message
    assert [e.progress for e in events] == sorted(e.progress for e in events)
    pattern = r"iteration [12]/2: mean reward flat [+-]\d+\.\d\d, tunnel [+-]\d+\.\d\d"
    assert any(re.fullmatch(pattern, e.message) for e in events), [e.message for e in events]
    history = read_invent_manifest(done.checkpoint)["history"]
    assert (done.metrics["iterations"], done.metrics["resumed_from"]) == (2, 0)
    last = {f"mean_reward_{terrain}": reward for terrain, reward in history[-1]["mean_reward"].items()}
    assert {k: v for k, v in done.metrics.items() if k.startswith("mean_reward_")} == pytest.approx(last)
    assert sorted(done.metrics) == ["iterations", "mean_reward_flat", "mean_reward_tunnel", "resumed_from"]
    assert (checkpoint.path, checkpoint.job_id, checkpoint.run_id, checkpoint.base_model) == (
        done.checkpoint, job.job_id, run_id, "tiny")  # fmt: skip
    assert dict(checkpoint.metrics) == dict(done.metrics)
    directory = Path(checkpoint.path)
    assert (directory / INVENT_MANIFEST).is_file() and not (directory / STATE_DIR).exists()


def test_bad_invent_settings_are_refused_before_queueing(
    trainer_server: RunningServer, gp_run: tuple[Path, str]
) -> None:
    stub = trainer_pb2_grpc.TrainerServiceStub(grpc.insecure_channel(trainer_server.address))
    cases = [
        ({"stage2": "tiny"}, "unknown settings stage2; known: device, evaluator_workers"),
        ({"terrains": ["flat", "moon"]}, "unknown terrain 'moon'; choose one of flat"),
        ({"terrains": "flat,moon"}, "unknown terrain 'moon'"),
        ({"terrains": ["flat", 3]}, "terrains must be terrain names"),
        ({"terrains": 3}, "terrains must be terrain names"),
        ({"terrains": ["flat", "flat"]}, "name each terrain once"),
        ({"samples_per_iteration": 5}, "must be a multiple of the 2 terrains"),
        ({"iterations": 0}, "iterations must be an integer >= 1"),
    ]
    for settings, words in cases:
        request = pb.StartJobRequest(run_id=gp_run[1], kind="invent", config_json=json.dumps(settings))
        with pytest.raises(grpc.RpcError) as caught:
            stub.StartJob(request, timeout=5)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT, settings
        assert error_reason(caught.value) == "INVALID_CONFIG" and words in caught.value.details(), settings
    assert stub.ListJobs(pb.ListJobsRequest(), timeout=5).jobs == []


def test_an_interrupted_invent_job_resumes_from_the_iteration_it_saved(
    gp_run: tuple[Path, str], gp_store_copy: Path, model_cache: Path, tmp_path: Path
) -> None:
    kind = KINDS["invent"]
    settings = kind.settings(json.dumps(SETTINGS))
    reports: list[str] = []
    with SQLiteStore(gp_store_copy) as store:
        job = store.create_job(job_id="j", run_id=gp_run[1], kind="invent", model="tiny", config_json="{}")

        def closing_after_iteration_1(progress: float, message: str) -> None:
            if message.startswith("iteration 1/"):
                raise JobInterrupted("the trainer is closing")

        context = JobContext(job=job, store=store, directory=tmp_path / "j", report=closing_after_iteration_1)
        with pytest.raises(JobInterrupted):
            kind.run(context, settings)
        assert (tmp_path / "j" / STATE_DIR).is_dir() and not (tmp_path / "j" / INVENT_MANIFEST).exists()
        context = JobContext(
            job=job, store=store, directory=tmp_path / "j", report=lambda *a: reports.append(a[1])
        )
        metrics = kind.run(context, settings)
    assert (metrics["resumed_from"], metrics["iterations"]) == (1, 2)
    assert [m.split(":")[0] for m in reports] == ["loading tiny", "iteration 2/2"]
    assert [row["iteration"] for row in read_invent_manifest(tmp_path / "j")["history"]] == [1, 2]
