"""elm.v1.EvaluatorService: admission control, then one call into the core EvaluatorPool per request."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import grpc

from elm_core.errors import ConfigError, StateError
from elm_core.evaluation import EvaluatorPool
from elm_core.sodarace import SimConfig, Terrain
from protos.elm.v1 import evaluator_pb2, evaluator_pb2_grpc
from services.common import abort
from services.common.metrics import EVALUATIONS, REUSED_SIMULATIONS
from services.evaluator.convert import result_to_proto, world_from_proto


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
    """Evaluates batches on this replica's EvaluatorPool; never queues more than `max_in_flight` programs."""

    def __init__(
        self, evaluator: EvaluatorPool, capabilities: evaluator_pb2.Capabilities, *, replica: str = ""
    ) -> None:
        self.evaluator = evaluator
        self.capabilities = capabilities
        self.admission = Admission(capabilities.max_batch)
        self.replica = replica  # set by `serve` once the port is known, unless configured
        self._draining = threading.Event()

    def Evaluate(
        self, request: evaluator_pb2.EvaluateRequest, context: grpc.ServicerContext
    ) -> evaluator_pb2.EvaluateResponse:
        self._check_batch(request, context)
        sim_config, terrain = self._world(request, context)
        sources = list(request.programs)
        if not self.admission.try_admit(len(sources)):
            abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED,
                  f"{self.admission.in_flight} of {self.admission.limit} programs in flight; retry elsewhere",
                  "EVALUATOR_FULL", in_flight=str(self.admission.in_flight))  # fmt: skip
        try:  # a program that is no text (not UTF-8, NUL bytes, too long) gets its own SYNTAX_ERROR result
            results = self.evaluator.evaluate(sources, sim_config=sim_config, terrain=terrain)
        except (CancelledError, StateError):  # the EvaluatorPool was closed under the call: the server stops
            abort(context, grpc.StatusCode.UNAVAILABLE, "the replica is shutting down", "SHUTTING_DOWN")
        finally:
            self.admission.release(len(sources))
        for result in results:
            EVALUATIONS.labels(status=result.status).inc()
        REUSED_SIMULATIONS.inc(sum(r.reused for r in results))
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

    def _check_batch(self, request: evaluator_pb2.EvaluateRequest, context: grpc.ServicerContext) -> None:
        """Aborts for a draining replica or an oversized batch."""
        if self._draining.is_set():
            abort(context, grpc.StatusCode.UNAVAILABLE, "the replica is shutting down", "DRAINING")
        limit = self.admission.limit
        if len(request.programs) > limit:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                  f"{len(request.programs)} programs, over this replica's max_batch of {limit}",
                  "BATCH_TOO_LARGE", max_batch=str(limit))  # fmt: skip

    def _world(
        self, request: evaluator_pb2.EvaluateRequest, context: grpc.ServicerContext
    ) -> tuple[SimConfig | None, Terrain | None]:
        """The world the request names, or (None, None) for the replica's own."""
        if not request.HasField("simulator"):
            return None, None
        try:
            return world_from_proto(request.simulator)
        except ConfigError as e:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(e), "BAD_SIMULATOR_SETTINGS")
