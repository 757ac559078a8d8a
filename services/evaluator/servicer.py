"""elm.v1.EvaluatorService: admission control, then one call into the core Evaluator per request."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import grpc

from elm_core.errors import InvalidRequestError, StateError
from elm_core.evaluation import Evaluator
from elm_core.sandbox import SandboxConfig, check_source
from protos.elm.v1 import evaluator_pb2, evaluator_pb2_grpc
from services.common import abort
from services.common.metrics import EVALUATIONS
from services.evaluator.convert import result_to_proto


class Admission:
    """Counts programs in flight across concurrent calls; a batch that would exceed the limit is refused."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._lock = threading.Lock()

    def try_admit(self, programs: int) -> bool:
        with self._lock:
            if self.in_flight + programs > self.limit:
                return False
            self.in_flight += programs
            return True

    def release(self, programs: int) -> None:
        with self._lock:
            self.in_flight -= programs


class EvaluatorServicer(evaluator_pb2_grpc.EvaluatorServiceServicer):
    """Evaluates batches on this replica's Evaluator; never queues more than `max_in_flight` programs."""

    def __init__(
        self,
        evaluator: Evaluator,
        capabilities: evaluator_pb2.Capabilities,
        *,
        sandbox_config: SandboxConfig,
        replica: str = "",
    ) -> None:
        self.evaluator, self.sandbox_config = evaluator, sandbox_config
        self.capabilities = capabilities
        self.admission = Admission(capabilities.max_batch)
        self.replica = replica  # set by `serve` once the port is known, unless configured
        self._draining = threading.Event()

    def Evaluate(
        self, request: evaluator_pb2.EvaluateRequest, context: grpc.ServicerContext
    ) -> evaluator_pb2.EvaluateResponse:
        sources = self._admissible_sources(request, context)
        if not self.admission.try_admit(len(sources)):
            abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED,
                  f"{self.admission.in_flight} of {self.admission.limit} programs in flight; retry elsewhere",
                  "EVALUATOR_FULL", in_flight=str(self.admission.in_flight))  # fmt: skip
        try:
            results = self.evaluator.evaluate(sources)
        except (CancelledError, StateError):  # the Evaluator was closed under the call: the server stops
            abort(context, grpc.StatusCode.UNAVAILABLE, "the replica is shutting down", "SHUTTING_DOWN")
        finally:
            self.admission.release(len(sources))
        for result in results:
            EVALUATIONS.labels(status=result.status).inc()
        return evaluator_pb2.EvaluateResponse(
            results=[result_to_proto(r) for r in results], replica=self.replica
        )

    def GetCapabilities(
        self, request: evaluator_pb2.GetCapabilitiesRequest, context: grpc.ServicerContext
    ) -> evaluator_pb2.Capabilities:
        capabilities = evaluator_pb2.Capabilities()
        capabilities.CopyFrom(self.capabilities)
        capabilities.replica = self.replica
        return capabilities

    def drain(self) -> None:
        """Refuses new batches (UNAVAILABLE, so that clients go elsewhere) while calls in flight finish."""
        self._draining.set()

    def _admissible_sources(
        self, request: evaluator_pb2.EvaluateRequest, context: grpc.ServicerContext
    ) -> list[str]:
        """The batch's program texts; aborts for a draining replica, an oversized batch or unusable bytes."""
        if self._draining.is_set():
            abort(context, grpc.StatusCode.UNAVAILABLE, "the replica is shutting down", "DRAINING")
        limit = self.admission.limit
        if len(request.programs) > limit:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                  f"{len(request.programs)} programs, over this replica's max_batch of {limit}",
                  "BATCH_TOO_LARGE", max_batch=str(limit))  # fmt: skip
        sources = []
        for index, program in enumerate(request.programs):
            try:
                sources.append(check_source(program, self.sandbox_config))
            except InvalidRequestError as e:
                abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"program {index}: {e}", "INVALID_PROGRAM",
                      program_index=str(index))  # fmt: skip
        return sources
