"""Fine-tuning rounds during a run: the coordinator asks the trainer to fine-tune the model server's model on
the run's mutation log every K batches, and the model server reloads the checkpoint while serving."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from elm_core.errors import InvalidRequestError
from elm_core.sodarace import seed_source
from services.client import CoordinatorClient, RemoteMutator, TrainerClient
from services.coordinator import CoordinatorServerConfig
from services.coordinator import serve as serve_coordinator
from services.model_server import ModelServerConfig
from services.model_server import serve as serve_model
from services.trainer import TrainerServerConfig
from services.trainer import serve as serve_trainer


def test_a_round_fine_tunes_on_the_run_and_the_model_server_reloads_it(
    tmp_path: Path, model_cache: Path
) -> None:
    data = tmp_path / "data"
    model = serve_model(ModelServerConfig(model="tiny", threads=1), host="127.0.0.1")
    jobs_config = TrainerServerConfig(
        store_path=data / "coordinator.sqlite", checkpoints_dir=tmp_path / "ckpt"
    )
    trainer = serve_trainer(jobs_config, port=0, host="127.0.0.1")
    config = CoordinatorServerConfig(data_dir=data, local_workers=2, model_server=model.address,
                                     trainer=trainer.address)  # fmt: skip
    coordinator = serve_coordinator(config, port=0, host="127.0.0.1")
    try:
        config = {"mutation": {"operator": "gp"}, "evaluation": {"sim": {"seconds": 4.0}},
                  "loop": {"batch_size": 8, "max_evaluations": 64},
                  "finetune": {"every_batches": 3, "method": "full", "max_steps": 2}}  # fmt: skip
        with CoordinatorClient(coordinator.address) as client:
            run = client.create_run(
                [seed_source("square"), seed_source("radial")], name="rounds", config=config
            )
            assert list(client.watch_run(run.run_id))[-1].run.status == "FINISHED"
        with TrainerClient(trainer.address) as jobs, RemoteMutator(model.address) as served:
            deadline = time.monotonic() + 180
            while served.model_info().version < 2 and time.monotonic() < deadline:
                time.sleep(0.5)
            (job, *_) = jobs.list_jobs("rounds")
            assert job.kind == "finetune" and job.status == "SUCCEEDED", job.message
            info = served.model_info()
            assert info.version >= 2 and info.name == job.checkpoint
            manifest = json.loads((Path(job.checkpoint) / "manifest.json").read_text())
            assert manifest["base_model"] == "tiny" and manifest["metrics"]["steps"] == 2
            assert [c.path for c in jobs.list_checkpoints("rounds")] == [job.checkpoint]
    finally:
        coordinator.stop(grace_s=5)
        trainer.stop(grace_s=5)
        model.stop(grace_s=5)


def test_rounds_without_a_trainer_are_refused_at_creation(tmp_path: Path) -> None:
    coordinator = serve_coordinator(CoordinatorServerConfig(data_dir=tmp_path, local_workers=1), port=0)
    try:
        with (
            CoordinatorClient(coordinator.address) as client,
            pytest.raises(InvalidRequestError, match="trainer"),
        ):
            client.create_run(
                [seed_source("square")],
                config={"mutation": {"operator": "gp"}, "finetune": {"every_batches": 2}},
            )
    finally:
        coordinator.stop(grace_s=5)
