"""`CoordinatorClient`: runs on a coordinator, from Python. Replies are the `elm.v1` messages."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from protos.elm.v1 import coordinator_pb2 as pb
from protos.elm.v1 import coordinator_pb2_grpc
from services.common import Caller, Credentials


class CoordinatorClient:
    """Every call has a deadline; reads and idempotent commands retry on UNAVAILABLE, creating does not."""

    def __init__(
        self, target: str, *, deadline_s: float = 30.0, credentials: Credentials | None = None
    ) -> None:
        self.caller = Caller(target, deadline_s=deadline_s, credentials=credentials)
        self.stub = coordinator_pb2_grpc.CoordinatorServiceStub(self.caller.channel)

    def create_run(
        self,
        seeds: Sequence[str],
        *,
        name: str = "",
        config: Mapping[str, Any] | None = None,
        paused: bool = False,
    ) -> pb.Run:
        request = pb.CreateRunRequest(name=name, config_json=json.dumps(dict(config or {})), paused=paused,
                                      seed_programs=[s.encode() for s in seeds])  # fmt: skip
        return self.caller.call(self.stub.CreateRun, request, retry=False)

    def submit_seed(self, run_id: str, program: str, *, deadline_s: float = 120.0) -> pb.Run:
        request = pb.SubmitSeedRequest(run_id=run_id, program=program.encode())
        return self.caller.call(self.stub.SubmitSeed, request, deadline_s=deadline_s, retry=False)

    def get_run(self, run_id: str) -> pb.Run:
        return self.caller.call(self.stub.GetRun, pb.GetRunRequest(run_id=run_id))

    def list_runs(self) -> list[pb.Run]:
        return list(self.caller.call(self.stub.ListRuns, pb.ListRunsRequest()).runs)

    def watch_run(self, run_id: str) -> Iterator[pb.RunEvent]:
        """Events until the run ends (no deadline: a run may take days)."""
        return self.caller.stream(self.stub.WatchRun, pb.WatchRunRequest(run_id=run_id))

    def get_archive(self, run_id: str, *, top: int | None = None, page_size: int = 500) -> list[pb.Elite]:
        """The elites, fittest first: all of them, or the `top` fittest."""
        elites: list[pb.Elite] = []
        token = ""
        while top is None or len(elites) < top:
            size = page_size if top is None else min(page_size, top - len(elites))
            page = self.caller.call(
                self.stub.GetArchive, pb.GetArchiveRequest(run_id=run_id, page_size=size, page_token=token)
            )
            elites.extend(page.elites)
            token = page.next_page_token
            if not token:
                break
        return elites

    def get_individual(self, run_id: str, individual_id: int) -> pb.Individual:
        request = pb.GetIndividualRequest(run_id=run_id, individual_id=individual_id)
        return self.caller.call(self.stub.GetIndividual, request)

    def get_lineage(self, run_id: str, individual_id: int) -> list[pb.Individual]:
        """The individual's ancestry: its seed first, the individual last, each with its mutation."""
        request = pb.GetIndividualRequest(run_id=run_id, individual_id=individual_id)
        return list(self.caller.call(self.stub.GetLineage, request).steps)

    def get_metrics(self, run_id: str, *, after_batch: int = -1) -> list[pb.Progress]:
        """The progress after each committed batch numbered above `after_batch` (all by default), in order."""
        points: list[pb.Progress] = []
        while True:
            request = pb.GetMetricsRequest(run_id=run_id, after_batch=after_batch)
            page = self.caller.call(self.stub.GetMetrics, request).points
            if not page:
                return points
            points.extend(page)
            after_batch = page[-1].batch

    def pause_run(self, run_id: str) -> pb.Run:
        return self.caller.call(self.stub.PauseRun, pb.RunRequest(run_id=run_id), deadline_s=60.0)

    def resume_run(self, run_id: str, *, budget: int = 0) -> pb.Run:
        request = pb.ResumeRunRequest(run_id=run_id, budget=budget)
        return self.caller.call(self.stub.ResumeRun, request, retry=False)

    def stop_run(self, run_id: str) -> pb.Run:
        return self.caller.call(self.stub.StopRun, pb.RunRequest(run_id=run_id), deadline_s=60.0)

    def close(self) -> None:
        self.caller.close()

    def __enter__(self) -> CoordinatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
