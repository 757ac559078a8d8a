"""elm.v1.TrainerService: each method converts the request, makes one runner call, converts back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc

from elm_core.store import JobRecord
from protos.elm.v1 import trainer_pb2 as pb
from protos.elm.v1 import trainer_pb2_grpc
from services.trainer.checkpoints import CheckpointInfo, list_checkpoints
from services.trainer.jobs import JobRunner


class TrainerServicer(trainer_pb2_grpc.TrainerServiceServicer):
    """Jobs over the runner's store; checkpoints from the checkpoints directory."""

    def __init__(self, runner: JobRunner, *, default_model: str, checkpoints_dir: Path) -> None:
        self.runner, self.default_model, self.checkpoints_dir = runner, default_model, checkpoints_dir

    def StartJob(self, request: pb.StartJobRequest, context: grpc.ServicerContext) -> pb.Job:
        job = self.runner.submit(
            run_id=request.run_id,
            kind=request.kind,
            model=request.model or self.default_model,
            config_json=request.config_json,
        )
        return job_message(job)

    def GetJob(self, request: pb.GetJobRequest, context: grpc.ServicerContext) -> pb.Job:
        return job_message(self.runner.store.get_job(request.job_id))

    def WatchJob(self, request: pb.GetJobRequest, context: grpc.ServicerContext) -> Iterator[pb.Job]:
        for job in self.runner.watch(request.job_id, context.is_active):
            yield job_message(job)

    def ListJobs(self, request: pb.ListJobsRequest, context: grpc.ServicerContext) -> pb.ListJobsResponse:
        jobs = self.runner.store.list_jobs(request.run_id or None)
        return pb.ListJobsResponse(jobs=[job_message(job) for job in jobs])

    def ListCheckpoints(
        self, request: pb.ListCheckpointsRequest, context: grpc.ServicerContext
    ) -> pb.ListCheckpointsResponse:
        found = list_checkpoints(self.checkpoints_dir, request.run_id)
        return pb.ListCheckpointsResponse(checkpoints=[checkpoint_message(c) for c in found])


def job_message(job: JobRecord) -> pb.Job:
    return pb.Job(
        job_id=job.job_id,
        run_id=job.run_id,
        kind=job.kind,
        status=job.status.value,
        message=job.message,
        model=job.model,
        progress=job.progress,
        metrics=json.loads(job.metrics_json),
        checkpoint=job.checkpoint,
        created_at=job.created_at,
        updated_at=job.updated_at,
        config_json=job.config_json,
    )


def checkpoint_message(checkpoint: CheckpointInfo) -> pb.Checkpoint:
    return pb.Checkpoint(
        path=str(checkpoint.path),
        job_id=checkpoint.job_id,
        run_id=checkpoint.run_id,
        base_model=checkpoint.base_model,
        metrics=checkpoint.metrics,
        created_at=checkpoint.created_at,
    )
