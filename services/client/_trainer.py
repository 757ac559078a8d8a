"""`TrainerClient`: the trainer's jobs and checkpoints, from Python. Replies are the `elm.v1` messages."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from protos.elm.v1 import trainer_pb2 as pb
from protos.elm.v1 import trainer_pb2_grpc
from services.common import Caller, Credentials


class TrainerClient:
    """Every call has a deadline; reads retry on UNAVAILABLE, starting a job does not."""

    def __init__(
        self, target: str, *, deadline_s: float = 30.0, credentials: Credentials | None = None
    ) -> None:
        self.caller = Caller(target, deadline_s=deadline_s, credentials=credentials)
        self.stub = trainer_pb2_grpc.TrainerServiceStub(self.caller.channel)

    def start_job(
        self, run_id: str, kind: str, *, model: str = "", config: Mapping[str, Any] | None = None
    ) -> pb.Job:
        """Queues a job learning from `run_id`; `model` empty means the trainer's default."""
        request = pb.StartJobRequest(
            run_id=run_id, kind=kind, model=model, config_json=json.dumps(dict(config or {}))
        )
        return self.caller.call(self.stub.StartJob, request, retry=False)

    def get_job(self, job_id: str) -> pb.Job:
        return self.caller.call(self.stub.GetJob, pb.GetJobRequest(job_id=job_id))

    def watch_job(self, job_id: str) -> Iterator[pb.Job]:
        """The job now and on every change, until it ends (no deadline: training may take hours)."""
        return self.caller.stream(self.stub.WatchJob, pb.GetJobRequest(job_id=job_id))

    def list_jobs(self, run_id: str = "") -> list[pb.Job]:
        """Jobs oldest first, of one run or (empty) of every run."""
        return list(self.caller.call(self.stub.ListJobs, pb.ListJobsRequest(run_id=run_id)).jobs)

    def list_checkpoints(self, run_id: str = "") -> list[pb.Checkpoint]:
        request = pb.ListCheckpointsRequest(run_id=run_id)
        return list(self.caller.call(self.stub.ListCheckpoints, request).checkpoints)

    def close(self) -> None:
        self.caller.close()

    def __enter__(self) -> TrainerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
