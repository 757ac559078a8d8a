"""`RemoteMutator`: the core's `Mutator` port over a model server, so MAP-Elites runs unchanged against it."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from elm_core.errors import StateError
from elm_core.models import SamplingConfig
from elm_core.mutation import Child, ChildRequest, Request, as_request
from protos.elm.v1 import mutation_pb2, mutation_pb2_grpc
from services.common import Caller, Credentials
from services.model_server.config import MAX_PARENTS
from services.model_server.convert import child_from_proto


class RemoteMutator:
    """Implements `Mutator` with a model server's Mutate: one call per `MAX_PARENTS` parents (sent together).

    Each call's sampling seed is drawn from `rng`, so a run is reproducible given the server's model and
    batches (a call that shares a model call with others' calls samples differently). `style` None is the
    model's own; `sampling` sends its temperature and token limit (top_p and stops are the server's).
    """

    name = "llm"

    def __init__(
        self,
        target: str,
        *,
        style: str | None = None,
        sampling: SamplingConfig | None = None,
        deadline_s: float = 600.0,
        credentials: Credentials | None = None,
    ) -> None:
        self.style, self.sampling = style or "", sampling or SamplingConfig()
        self._caller = Caller(target, deadline_s=deadline_s, credentials=credentials)
        self._stub = mutation_pb2_grpc.MutationServiceStub(self._caller.channel)

    def mutate(self, requests: Sequence[Request], rng: np.random.Generator) -> list[Child]:
        """One child per request, in order; retries only calls that did not take effect."""
        asked = [as_request(r) for r in requests]
        chunks = [asked[start : start + MAX_PARENTS] for start in range(0, len(asked), MAX_PARENTS)]
        seeds = [int(rng.integers(2**63)) for _ in chunks]
        with ThreadPoolExecutor(max_workers=max(len(chunks), 1)) as pool:
            return [child for children in pool.map(self._mutate, chunks, seeds) for child in children]

    def model_info(self) -> mutation_pb2.ModelInfo:
        return self._caller.call(self._stub.GetModelInfo, mutation_pb2.GetModelInfoRequest())

    def reload(self, model: str, backend: str = "auto") -> mutation_pb2.ReloadModelResponse:
        """Swaps the server's model for `model` (a name or a checkpoint directory); not retried."""
        request = mutation_pb2.ReloadModelRequest(model=model, backend=backend)
        return self._caller.call(self._stub.ReloadModel, request, retry=False)

    def close(self) -> None:
        self._caller.close()

    def __enter__(self) -> RemoteMutator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _mutate(self, requests: list[ChildRequest], seed: int) -> list[Child]:
        parents = [r.parent for r in requests]
        request = mutation_pb2.MutateRequest(
            parents=[
                mutation_pb2.Parent(
                    source=r.parent.encode(),
                    message=r.instruction,
                    operator=r.operator,
                    others=[other.encode() for other in r.others],
                )
                for r in requests
            ],  # fmt: skip
            style=self.style,
            temperature=self.sampling.temperature,
            n=1,
            seed=seed,
            max_new_tokens=self.sampling.max_new_tokens,
        )
        response = self._caller.call(self._stub.Mutate, request)
        if len(response.children) != len(parents):
            raise StateError(
                f"the model server returned {len(response.children)} children for {len(parents)}"
            )
        return [child_from_proto(child, parents) for child in response.children]
