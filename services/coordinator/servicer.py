"""`elm.v1.CoordinatorService`: each method converts the request, makes one call into the run manager, and
converts back. Project exceptions become status codes in services.common's interceptor."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from elm_core.errors import InvalidRequestError, NotFoundError
from elm_core.store import IndividualRecord
from protos.elm.v1 import coordinator_pb2 as pb
from protos.elm.v1 import coordinator_pb2_grpc
from services.coordinator.convert import elite_message, individual_message, progress_message, run_message
from services.coordinator.runs import RunManager

MAX_PAGE = 1000
MAX_METRICS_POINTS = 10_000  # per GetMetrics reply; a client pages on with the last batch it got
MAX_INDIVIDUAL_ID = 2**63 - 1  # the store's ids are SQLite integers: a larger one names no individual


class CoordinatorServicer(coordinator_pb2_grpc.CoordinatorServiceServicer):
    def __init__(self, runs: RunManager) -> None:
        self.runs = runs

    def CreateRun(self, request: pb.CreateRunRequest, context: grpc.ServicerContext) -> pb.Run:
        view = self.runs.create(request.name, request.config_json, list(request.seed_programs),
                                paused=request.paused)  # fmt: skip
        return run_message(view)

    def SubmitSeed(self, request: pb.SubmitSeedRequest, context: grpc.ServicerContext) -> pb.Run:
        wait_s = max(1.0, (context.time_remaining() or 60.0) - 1.0)
        return run_message(self.runs.submit_seed(request.run_id, request.program, wait_s=wait_s))

    def GetRun(self, request: pb.GetRunRequest, context: grpc.ServicerContext) -> pb.Run:
        return run_message(self.runs.view(request.run_id))

    def ListRuns(self, request: pb.ListRunsRequest, context: grpc.ServicerContext) -> pb.ListRunsResponse:
        return pb.ListRunsResponse(runs=[run_message(view) for view in self.runs.list()])

    def WatchRun(self, request: pb.WatchRunRequest, context: grpc.ServicerContext) -> Iterator[pb.RunEvent]:
        for kind, view in self.runs.watch(request.run_id, context.is_active):
            yield pb.RunEvent(run=run_message(view), kind=kind)

    def GetArchive(
        self, request: pb.GetArchiveRequest, context: grpc.ServicerContext
    ) -> pb.GetArchiveResponse:
        size = request.page_size or 100
        if size > MAX_PAGE:
            raise InvalidRequestError(f"page_size must be at most {MAX_PAGE}, got {size}")
        try:
            start = int(request.page_token or 0)
        except ValueError as e:
            raise InvalidRequestError(f"page_token {request.page_token!r} is not one this server gave") from e
        elites = self.runs.store.top_elites(request.run_id, 1 << 30)
        page = elites[start : start + size]
        token = str(start + size) if start + size < len(elites) else ""
        return pb.GetArchiveResponse(elites=[elite_message(e) for e in page], next_page_token=token,
                                     total=len(elites))  # fmt: skip

    def GetIndividual(self, request: pb.GetIndividualRequest, context: grpc.ServicerContext) -> pb.Individual:
        return self._with_mutation(self.runs.store.individual(request.run_id, _individual_id(request)))

    def GetLineage(
        self, request: pb.GetIndividualRequest, context: grpc.ServicerContext
    ) -> pb.GetLineageResponse:
        steps = self.runs.store.lineage(request.run_id, _individual_id(request))
        return pb.GetLineageResponse(steps=[self._with_mutation(i) for i in steps])

    def GetMetrics(
        self, request: pb.GetMetricsRequest, context: grpc.ServicerContext
    ) -> pb.GetMetricsResponse:
        points = self.runs.store.metrics(request.run_id, after_batch=request.after_batch)
        return pb.GetMetricsResponse(points=[progress_message(m) for m in points[:MAX_METRICS_POINTS]])

    def PauseRun(self, request: pb.RunRequest, context: grpc.ServicerContext) -> pb.Run:
        return run_message(self.runs.pause(request.run_id))

    def ResumeRun(self, request: pb.ResumeRunRequest, context: grpc.ServicerContext) -> pb.Run:
        return run_message(self.runs.resume(request.run_id, request.budget or None))

    def StopRun(self, request: pb.RunRequest, context: grpc.ServicerContext) -> pb.Run:
        return run_message(self.runs.stop(request.run_id))

    def _with_mutation(self, individual: IndividualRecord) -> pb.Individual:
        """The individual's message, with the mutation that produced it (none for a seed)."""
        mutation = self.runs.store.mutation_of(individual.run_id, individual.individual_id)
        return individual_message(individual, mutation)


def _individual_id(request: pb.GetIndividualRequest) -> int:
    if request.individual_id > MAX_INDIVIDUAL_ID:
        raise NotFoundError(f"individual {request.individual_id} not found in run {request.run_id!r}")
    return request.individual_id
