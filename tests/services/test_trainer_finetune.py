"""finetune jobs: through a real trainer on loopback to a listed checkpoint the model loader loads; an
interrupted job resumes from the step it saved."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from elm_core.models import load_generator
from elm_core.store import SQLiteStore
from elm_core.training import DATASET_DIR, STATE_DIR
from protos.elm.v1 import trainer_pb2 as pb
from protos.elm.v1 import trainer_pb2_grpc
from services.client._trainer import TrainerClient
from services.common import RunningServer, error_reason
from services.trainer import KINDS, JobContext, JobInterrupted

SETTINGS = {"include_ran": True, "style": "diff", "method": "lora", "lora_r": 4, "max_steps": 4,
            "batch_size": 2, "grad_accumulation_steps": 1, "eval_every_steps": 2,
            "checkpoint_every_steps": 2, "threads": 1}  # fmt: skip


def test_a_finetune_job_succeeds_with_a_listed_checkpoint(
    trainer_server: RunningServer, gp_run: tuple[Path, str]
) -> None:
    run_id = gp_run[1]
    with TrainerClient(trainer_server.address) as client:
        job = client.start_job(run_id, "finetune", model="tiny", config=SETTINGS)
        events = list(client.watch_job(job.job_id))
        (checkpoint,) = client.list_checkpoints(run_id)
    done = events[-1]
    assert (done.status, done.progress, done.model) == ("SUCCEEDED", 1.0, "tiny"), done.message
    assert any(e.message.startswith("step 4/4: loss") for e in events)
    assert done.metrics["steps"] == 4 and done.metrics["train_loss_last"] > 0
    assert (checkpoint.path, checkpoint.job_id, checkpoint.run_id, checkpoint.base_model) == (
        done.checkpoint, job.job_id, run_id, "tiny")  # fmt: skip
    assert dict(checkpoint.metrics) == dict(done.metrics)
    directory = Path(checkpoint.path)
    assert (directory / DATASET_DIR / "train.jsonl").is_file() and not (directory / STATE_DIR).exists()
    load_generator(str(directory))  # a plain checkpoint: the model trainer_server can load it


def test_bad_finetune_settings_are_refused_before_queueing(
    trainer_server: RunningServer, gp_run: tuple[Path, str]
) -> None:
    stub = trainer_pb2_grpc.TrainerServiceStub(grpc.insecure_channel(trainer_server.address))
    cases = [
        ({"base_model": "tiny"}, "unknown settings base_model; known: batch_size"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"method": "prefix"}, "method must be full or lora"),
        ({"validation_fraction": 1}, "validation_fraction"),
    ]
    for settings, words in cases:
        request = pb.StartJobRequest(run_id=gp_run[1], kind="finetune", config_json=json.dumps(settings))
        with pytest.raises(grpc.RpcError) as caught:
            stub.StartJob(request, timeout=5)
        assert error_reason(caught.value) == "INVALID_CONFIG" and words in caught.value.details()


def test_an_interrupted_job_resumes_from_the_step_it_saved(
    gp_run: tuple[Path, str], gp_store_copy: Path, model_cache: Path, tmp_path: Path
) -> None:
    kind = KINDS["finetune"]
    settings = kind.settings(json.dumps(SETTINGS | {"checkpoint_every_steps": 100}))
    with SQLiteStore(gp_store_copy) as store:
        job = store.create_job(job_id="j", run_id=gp_run[1], kind="finetune", model="tiny", config_json="{}")

        def closing_at_step_3(progress: float, message: str) -> None:
            if message.startswith("step 3/"):
                raise JobInterrupted("the trainer is closing")

        context = JobContext(job=job, store=store, directory=tmp_path / "j", report=closing_at_step_3)
        with pytest.raises(JobInterrupted):
            kind.run(context, settings)
        assert [p.name for p in (tmp_path / "j" / STATE_DIR).iterdir()] == ["step-00000003"]
        context = JobContext(job=job, store=store, directory=tmp_path / "j", report=lambda *_: None)
        metrics = kind.run(context, settings)
    assert (metrics["resumed_from_step"], metrics["steps"]) == (3, 4)
