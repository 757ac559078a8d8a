"""The committed gRPC stubs are exactly what the .proto files generate (CI fails otherwise)."""

from __future__ import annotations

from protos.generate import proto_files, stale_stubs


def test_every_contract_is_there() -> None:
    assert [p.name for p in proto_files()] == [
        "coordinator.proto",
        "evaluator.proto",
        "mutation.proto",
        "trainer.proto",
    ]


def test_committed_stubs_match_the_protos() -> None:
    assert stale_stubs() == [], "regenerate with: python -m protos.generate"
