"""A run's history over the coordinator's API: its progress batch by batch (GetMetrics), an individual's
ancestry (GetLineage) and the mutation behind each individual, read by a caller holding a read token.
One GP run on a real coordinator on loopback, shared by the module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

import grpc
import pytest

from elm_core.errors import NotFoundError
from elm_core.sodarace import seed_source
from protos.elm.v1 import coordinator_pb2 as pb
from protos.elm.v1 import coordinator_pb2_grpc
from services.client import CoordinatorClient
from services.common import Credentials, TokenAuthority, error_reason, token_digest
from services.coordinator import CoordinatorServerConfig, serve
from services.coordinator import servicer as coordinator_servicer

GP = {
    "mutation": {"operator": "gp"},
    "evaluation": {"sim": {"seconds": 2.0}},
    "loop": {"batch_size": 4, "pipeline_depth": 1, "max_evaluations": 18},
}
TOKENS = {"admin": "admin-token", "read": "read-token"}
READ_METADATA = (("authorization", f"Bearer {TOKENS['read']}"),)


@dataclass(frozen=True)
class Finished:
    address: str
    run: pb.Run  # as it ended


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Finished]:
    """A coordinator with API tokens, and a GP run an admin started and a reader watched to its end."""
    tokens = TokenAuthority({token_digest(t): (role, role) for role, t in TOKENS.items()})
    config = CoordinatorServerConfig(data_dir=tmp_path_factory.mktemp("data"), local_workers=2, tokens=tokens)
    running = serve(config, port=0, host="127.0.0.1")
    try:
        with client(running.address, "admin") as admin:
            run = admin.create_run([seed_source("square"), seed_source("radial")], name="history", config=GP)
        with client(running.address, "read") as reader:
            *_, last = reader.watch_run(run.run_id)
        assert last.run.status == "FINISHED"
        yield Finished(running.address, last.run)
    finally:
        running.stop(grace_s=5)


def client(address: str, role: str) -> CoordinatorClient:
    return CoordinatorClient(address, credentials=Credentials(None, TOKENS[role]))


@pytest.fixture
def stub(finished: Finished) -> Iterator[coordinator_pb2_grpc.CoordinatorServiceStub]:
    """A bare stub: the caller chooses its metadata."""
    with grpc.insecure_channel(finished.address) as channel:
        yield coordinator_pb2_grpc.CoordinatorServiceStub(channel)


@pytest.fixture
def reader(finished: Finished) -> Iterator[CoordinatorClient]:
    with client(finished.address, "read") as c:
        yield c


def test_metrics_hold_every_committed_batch_in_order(finished: Finished, reader: CoordinatorClient) -> None:
    points = reader.get_metrics("history")
    assert [p.batch for p in points] == list(range(finished.run.batches))
    assert points[-1] == finished.run.progress
    evaluations = [p.evaluations for p in points]
    assert evaluations == sorted(evaluations) and evaluations[-1] == finished.run.evaluations


def test_metrics_after_a_batch_are_only_the_later_ones(finished: Finished, reader: CoordinatorClient) -> None:
    everything = reader.get_metrics("history")
    for k in (0, 2, finished.run.batches - 1):
        assert reader.get_metrics("history", after_batch=k) == everything[k + 1 :]
    # the proto default (0) skips batch 0: clients send -1 for all
    raw = reader.caller.call(reader.stub.GetMetrics, pb.GetMetricsRequest(run_id="history"))
    assert [p.batch for p in raw.points] == [p.batch for p in everything[1:]]


def test_the_client_pages_past_the_server_s_cap(
    finished: Finished, reader: CoordinatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = reader.get_metrics("history")
    monkeypatch.setattr(coordinator_servicer, "MAX_METRICS_POINTS", 2)
    one_reply = reader.caller.call(
        reader.stub.GetMetrics, pb.GetMetricsRequest(run_id="history", after_batch=-1)
    )
    assert list(one_reply.points) == everything[:2]  # the oldest first
    assert reader.get_metrics("history") == everything


def test_the_best_elite_s_lineage_runs_from_a_seed_to_it(reader: CoordinatorClient) -> None:
    best = reader.get_archive("history", top=1)[0]
    steps = reader.get_lineage("history", best.individual_id)
    assert not steps[0].HasField("parent_id") and not steps[0].HasField("mutation")
    assert steps[-1].individual_id == best.individual_id and steps[-1].fitness == best.fitness
    for parent, child in pairwise(steps):
        assert child.parent_id == parent.individual_id
        assert child.mutation.operator == "gp" and child.mutation.parent_id == parent.individual_id
    assert steps[-1] == reader.get_individual("history", best.individual_id)


def test_every_lineage_goes_back_to_a_seed_program(finished: Finished, reader: CoordinatorClient) -> None:
    seeds = {seed_source("square"), seed_source("radial")}
    lineages = [reader.get_lineage("history", i) for i in range(finished.run.evaluations)]
    assert all(steps[0].source in seeds and not steps[0].HasField("parent_id") for steps in lineages)
    assert [steps[-1].individual_id for steps in lineages] == list(range(finished.run.evaluations))
    assert max(len(steps) for steps in lineages) > 2  # GP children of children


def test_a_child_carries_its_mutation_and_a_seed_none(finished: Finished, reader: CoordinatorClient) -> None:
    seed = reader.get_individual("history", 0)
    assert not seed.HasField("parent_id") and not seed.HasField("mutation")
    child = reader.get_individual("history", finished.run.evaluations - 1)
    assert child.HasField("parent_id") and child.HasField("mutation")
    mutation = child.mutation
    assert mutation.operator == "gp" and mutation.parent_id == child.parent_id
    assert mutation.outcome == "OK"  # only a mutation that gave a program makes an individual
    assert mutation.raw_output and mutation.generated_tokens == 0  # GP describes its edit, writes no tokens


def test_an_unknown_run_or_individual_is_not_found(
    finished: Finished, reader: CoordinatorClient, stub: coordinator_pb2_grpc.CoordinatorServiceStub
) -> None:
    with pytest.raises(NotFoundError):
        reader.get_metrics("nope")
    with pytest.raises(NotFoundError):
        reader.get_lineage("nope", 0)
    for absent in (finished.run.evaluations + 100, 2**64 - 1):  # the latter beyond any SQLite integer
        with pytest.raises(NotFoundError):
            reader.get_lineage("history", absent)
        with pytest.raises(NotFoundError):
            reader.get_individual("history", absent)
    calls = [(stub.GetMetrics, pb.GetMetricsRequest(run_id="nope", after_batch=-1)),
             (stub.GetLineage, pb.GetIndividualRequest(run_id="nope"))]  # fmt: skip
    for call, request in calls:
        with pytest.raises(grpc.RpcError) as caught:
            call(request, timeout=10, metadata=READ_METADATA)
        assert error_reason(caught.value) == "NOT_FOUND"


def test_the_history_takes_a_token_and_a_read_token_is_enough(
    stub: coordinator_pb2_grpc.CoordinatorServiceStub,
) -> None:
    calls = [(stub.GetMetrics, pb.GetMetricsRequest(run_id="history", after_batch=-1)),
             (stub.GetLineage, pb.GetIndividualRequest(run_id="history", individual_id=1)),
             (stub.GetIndividual, pb.GetIndividualRequest(run_id="history", individual_id=1))]  # fmt: skip
    for call, request in calls:
        with pytest.raises(grpc.RpcError) as caught:
            call(request, timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert call(request, timeout=10, metadata=READ_METADATA).ByteSize() > 0
