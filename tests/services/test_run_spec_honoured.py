"""A run submitted to the coordinator gets every setting of its spec, or CreateRun refuses it by name."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from elm_core.errors import ConfigError
from elm_core.sodarace import SimConfig, Terrain, Walker, seed_source, simulate
from elm_core.store import SQLiteStore
from protos.elm.v1 import coordinator_pb2 as pb
from protos.elm.v1 import coordinator_pb2_grpc
from services.client import CoordinatorClient
from services.common import RunningServer, error_reason
from services.coordinator import CoordinatorServerConfig, serve
from services.evaluator import EvaluatorServerConfig
from services.evaluator import serve as serve_evaluator
from services.model_server import ModelServerConfig
from services.model_server import serve as serve_model

LOOP = {"batch_size": 6, "pipeline_depth": 1, "max_evaluations": 12}
TUNNEL = {"terrain": "tunnel", "sim": {"seconds": 3.0}}


@pytest.fixture(scope="module")
def replica() -> Iterator[RunningServer]:
    """An evaluator replica whose own world (flat, 10 s) differs from the runs'."""
    running = serve_evaluator(EvaluatorServerConfig(workers=2), port=0, host="127.0.0.1")
    yield running
    running.stop(grace_s=5)


@pytest.fixture(scope="module")
def model_server() -> Iterator[RunningServer]:
    running = serve_model(ModelServerConfig(model="tiny", threads=1), host="127.0.0.1")
    yield running
    running.stop(grace_s=5)


@contextlib.contextmanager
def coordinator(data: Path, **options: object) -> Iterator[RunningServer]:
    """A coordinator on loopback for the length of the block."""
    running = serve(
        CoordinatorServerConfig(data_dir=data, local_workers=2, **options), port=0, host="127.0.0.1"
    )
    try:
        yield running
    finally:
        running.stop(grace_s=5)


def individuals(client: CoordinatorClient, run_id: str) -> list[pb.Individual]:
    list(client.watch_run(run_id))  # to the end of the run
    elites = client.get_archive(run_id)
    return [client.get_individual(run_id, e.individual_id) for e in elites]


@pytest.mark.parametrize("fleet", [False, True], ids=["local-pool", "evaluator-fleet"])
def test_a_tunnel_run_is_simulated_on_the_tunnel_for_its_seconds(
    tmp_path: Path, replica: RunningServer, fleet: bool
) -> None:
    options = {"evaluators": (replica.address,)} if fleet else {}
    with coordinator(tmp_path, **options) as running, CoordinatorClient(running.address) as client:
        config = {"mutation": {"operator": "gp"}, "evaluation": TUNNEL, "loop": LOOP}
        run = client.create_run([seed_source("square"), seed_source("radial")], config=config)
        walked = individuals(client, run.run_id)
    world = SimConfig(seconds=3.0), Terrain.named("tunnel")
    assert len(walked) >= 2
    for individual in walked:  # the same fitness as `elm simulate --terrain tunnel --sim-seconds 3`
        walker = Walker.from_dict(json.loads(individual.walker_json))
        assert individual.fitness == simulate(walker, *world).fitness
    flat = [simulate(Walker.from_dict(json.loads(i.walker_json)), SimConfig()).fitness for i in walked]
    assert flat != [i.fitness for i in walked]


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"embedded": {"workers": 8}}, "[embedded] workers"),
        ({"embedded": {"backend": "llamacpp"}}, "[embedded] backend"),
        ({"mutation": {"sampling": {"top_p": 0.5}}}, "[mutation.sampling] top_p"),
        ({"mutation": {"model": "qwen2.5-coder-0.5b"}}, "[mutation] model"),
        ({"mutation": {"style": "poetry"}}, "[mutation] style"),
        ({"evaluation": {"terrain": "lava"}}, "lava"),
        ({"evaluation": {"sim": {"warp": 9}}}, "[evaluation.sim]"),
    ],
)
def test_a_setting_the_coordinator_cannot_honour_is_refused_by_name(
    tmp_path: Path, model_server: RunningServer, config: dict, named: str
) -> None:
    with coordinator(tmp_path, model_server=model_server.address) as running:
        stub = coordinator_pb2_grpc.CoordinatorServiceStub(grpc.insecure_channel(running.address))
        request = pb.CreateRunRequest(
            seed_programs=[seed_source("square").encode()], config_json=json.dumps(config)
        )
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateRun(request, timeout=30)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(caught.value) == "INVALID_CONFIG" and named in caught.value.details()
        assert list(stub.ListRuns(pb.ListRunsRequest(), timeout=30).runs) == []  # nothing was created


def test_the_model_server_s_own_model_and_style_are_accepted(
    tmp_path: Path, model_server: RunningServer
) -> None:
    with (
        coordinator(tmp_path, model_server=model_server.address) as running,
        CoordinatorClient(running.address) as client,
    ):
        config = {"mutation": {"model": "tiny", "style": "rewrite", "sampling": {"max_new_tokens": 8}},
                  "loop": {**LOOP, "max_evaluations": 4}}  # fmt: skip
        run = client.create_run([seed_source("square")], config=config, paused=True)
        assert run.status == "CREATED"


def test_an_embedded_run_refuses_fine_tuning_rounds(tmp_path: Path) -> None:
    from elm_core.run import create_run
    from elm_core.spec import FinetuneRoundsSpec, RunSpec

    with pytest.raises(ConfigError, match=r"\[finetune\] every_batches"):
        create_run(tmp_path / "r", RunSpec(finetune=FinetuneRoundsSpec(every_batches=2)))
    assert not (tmp_path / "r").exists()


def test_an_llm_run_s_style_and_token_limit_reach_the_model_server(
    tmp_path: Path, model_server: RunningServer
) -> None:
    with (
        coordinator(tmp_path, model_server=model_server.address) as running,
        CoordinatorClient(running.address) as client,
    ):
        config = {"mutation": {"style": "diff", "sampling": {"max_new_tokens": 6, "temperature": 0.0}},
                  "loop": {"batch_size": 4, "pipeline_depth": 1, "max_evaluations": None,
                           "max_mutations": 4}}  # fmt: skip
        run = client.create_run([seed_source("square")], config=config)
        list(client.watch_run(run.run_id))
    with SQLiteStore(tmp_path / "coordinator.sqlite") as store:
        mutations = store.mutations(run.run_id)
    assert len(mutations) == 4
    assert all(m.style == "diff" and 0 < m.generated_tokens <= 6 for m in mutations)


def test_a_run_s_archive_cells_are_its_own(tmp_path: Path) -> None:
    with coordinator(tmp_path) as running, CoordinatorClient(running.address) as client:
        config = {"mutation": {"operator": "gp"}, "archive": {"dims": [2, 2, 2]}, "loop": LOOP}
        run = client.create_run([seed_source("square"), seed_source("radial")], config=config)
        list(client.watch_run(run.run_id))
        cells = [e.cell for e in client.get_archive(run.run_id)]
    assert cells and all(0 <= cell < 8 for cell in cells)
