"""The MutationService: each method converts the request, makes one call into the batcher or the model slot,
and converts the answer back. Project exceptions become status codes in services.common's interceptor."""

from __future__ import annotations

import math
import secrets
import threading
from concurrent.futures import CancelledError, Future

import grpc

from elm_core.errors import InvalidRequestError
from elm_core.models import SamplingConfig
from elm_core.mutation import PAPER, ChildRequest, PromptStyle
from elm_core.sandbox import SandboxConfig, check_source
from protos.elm.v1 import mutation_pb2, mutation_pb2_grpc
from services.common import abort
from services.common.metrics import MUTATIONS
from services.model_server.batcher import Batcher, BatchKey, Served, Work
from services.model_server.config import (
    MAX_CHILDREN_PER_PARENT,
    MAX_NEW_TOKENS,
    MAX_PARENTS,
    MAX_TEMPERATURE,
    ModelServerConfig,
)
from services.model_server.convert import mutate_response
from services.model_server.model import LoadedModel, ModelSlot

_SOURCE_LIMITS = SandboxConfig()  # a parent must be a program the sandbox would accept


class MutationServicer(mutation_pb2_grpc.MutationServiceServicer):
    def __init__(self, slot: ModelSlot, batcher: Batcher, config: ModelServerConfig) -> None:
        self.slot, self.batcher, self.config = slot, batcher, config

    def Mutate(
        self, request: mutation_pb2.MutateRequest, context: grpc.ServicerContext
    ) -> mutation_pb2.MutateResponse:
        work = parse_request(request, self.slot.current.default_style, self.config)
        served = _wait(self.batcher.submit(work), context) if work.requests else _nothing(self.slot)
        for child in served.children:
            MUTATIONS.labels(child.outcome.value).inc()
        return mutate_response(served.children, work.n, served.model, served.version)

    def GetModelInfo(
        self, request: mutation_pb2.GetModelInfoRequest, context: grpc.ServicerContext
    ) -> mutation_pb2.ModelInfo:
        return self.model_info()

    def ReloadModel(
        self, request: mutation_pb2.ReloadModelRequest, context: grpc.ServicerContext
    ) -> mutation_pb2.ReloadModelResponse:
        loaded = self.slot.reload(request.model, request.backend or "auto")
        return mutation_pb2.ReloadModelResponse(
            info=self.model_info(loaded), load_seconds=loaded.load_seconds
        )

    def model_info(self, model: LoadedModel | None = None) -> mutation_pb2.ModelInfo:
        """What the model server holds: `model`, or the current one."""
        model = model or self.slot.current
        return mutation_pb2.ModelInfo(
            name=model.name,
            backend=model.backend,
            default_style=model.default_style.value,
            styles=[style.value for style in PromptStyle],
            version=model.version,
            max_batch_size=self.config.max_batch_size,
            max_wait_ms=self.config.max_wait_ms,
            generated_tokens=self.slot.generated_tokens,
        )


def parse_request(
    request: mutation_pb2.MutateRequest, default_style: PromptStyle, config: ModelServerConfig
) -> Work:
    """The batcher's work for a request, or InvalidRequestError saying what is wrong with it."""
    n = request.n or 1
    if n > MAX_CHILDREN_PER_PARENT:
        raise InvalidRequestError(f"n must be at most {MAX_CHILDREN_PER_PARENT}, got {n}")
    if len(request.parents) > MAX_PARENTS:
        raise InvalidRequestError(
            f"a request holds at most {MAX_PARENTS} parents, got {len(request.parents)}"
        )
    if len(request.parents) * n > config.max_queued_parents:
        raise InvalidRequestError(
            f"the request asks for {len(request.parents) * n} children; this server queues at most "
            f"{config.max_queued_parents}"
        )
    return Work(
        key=_batch_key(request, default_style, config.sampling),
        requests=tuple(_child_request(parent, index) for index, parent in enumerate(request.parents)),
        n=n,
        seed=request.seed if request.HasField("seed") else secrets.randbits(63),
    )


def _child_request(parent: mutation_pb2.Parent, index: int) -> ChildRequest:
    others = tuple(_source(other, index) for other in parent.others)
    return ChildRequest(parent=_source(parent.source, index), instruction=parent.message, others=others,
                        operator=parent.operator or PAPER)  # fmt: skip


def _batch_key(
    request: mutation_pb2.MutateRequest, default_style: PromptStyle, sampling: SamplingConfig
) -> BatchKey:
    if request.style and request.style not in set(PromptStyle):
        raise InvalidRequestError(
            f"style must be one of {[s.value for s in PromptStyle]}, got {request.style!r}"
        )
    temperature = round(request.temperature, 6) if request.HasField("temperature") else sampling.temperature
    if not (math.isfinite(temperature) and 0 <= temperature <= MAX_TEMPERATURE):
        raise InvalidRequestError(f"temperature must be in [0, {MAX_TEMPERATURE}], got {temperature}")
    tokens = request.max_new_tokens if request.HasField("max_new_tokens") else sampling.max_new_tokens
    if not 1 <= tokens <= MAX_NEW_TOKENS:
        raise InvalidRequestError(f"max_new_tokens must be in [1, {MAX_NEW_TOKENS}], got {tokens}")
    return BatchKey(PromptStyle(request.style or default_style), temperature, tokens)


def _source(source: bytes, index: int) -> str:
    try:
        text = check_source(source, _SOURCE_LIMITS)
    except InvalidRequestError as e:
        raise InvalidRequestError(f"parent {index}: {e}") from e
    return text


def _wait(future: Future[Served], context: grpc.ServicerContext) -> Served:
    """The batch's answer for this call; a call that ends early (deadline, cancel) leaves the queue."""
    context.add_callback(future.cancel)
    remaining = context.time_remaining()  # a call without a deadline has a huge one
    try:
        return future.result(timeout=remaining if remaining < threading.TIMEOUT_MAX else None)
    except TimeoutError:
        future.cancel()
        abort(context, grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed before the model answered",
              "DEADLINE_EXCEEDED")  # fmt: skip
    except CancelledError:
        abort(context, grpc.StatusCode.CANCELLED, "the call ended before the model answered", "CANCELLED")


def _nothing(slot: ModelSlot) -> Served:
    model = slot.current
    return Served([], model.name, model.version)
