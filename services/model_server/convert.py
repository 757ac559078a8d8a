"""Children to and from the wire, in one place for the server and the client."""

from __future__ import annotations

from collections.abc import Sequence

from elm_core.errors import StateError
from elm_core.mutation import Child, MutationOutcome
from protos.elm.v1 import mutation_pb2


def child_to_proto(child: Child, parent_index: int) -> mutation_pb2.Child:
    return mutation_pb2.Child(
        parent_index=parent_index,
        source=child.source,
        outcome=child.outcome.value,
        operator=child.operator,
        style=child.style,
        message=child.message,
        raw_output=child.raw_output,
        detail=child.detail,
        generated_tokens=child.generated_tokens,
    )


def child_from_proto(message: mutation_pb2.Child, parents: Sequence[str]) -> Child:
    """The core's record of a child; `parents` are the request's, which the wire does not repeat."""
    if message.parent_index >= len(parents):
        raise StateError(f"the server named parent {message.parent_index} of a request with {len(parents)}")
    if message.outcome not in MutationOutcome.__members__:
        raise StateError(f"the server reported an unknown outcome {message.outcome!r}")
    return Child(
        parent=parents[message.parent_index],
        source=message.source if message.HasField("source") else None,
        outcome=MutationOutcome(message.outcome),
        operator=message.operator,
        style=message.style,
        message=message.message,
        raw_output=message.raw_output,
        detail=message.detail,
        generated_tokens=message.generated_tokens,
    )


def mutate_response(
    children: Sequence[Child], n: int, model: str, version: int
) -> mutation_pb2.MutateResponse:
    """The response to a request whose parents were mutated n times each, children in parent order."""
    return mutation_pb2.MutateResponse(
        children=[child_to_proto(child, index // n) for index, child in enumerate(children)],
        model=model,
        model_version=version,
    )
