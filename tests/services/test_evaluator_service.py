"""The evaluator service over real gRPC on loopback: results in order, typed refusals with the reason and the
offending program, admission control, capabilities, health and reflection."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from prometheus_client import REGISTRY

from elm_core.sandbox import Layer, SandboxConfig
from elm_core.sodarace import SEED_NAMES, SimConfig, Terrain, Walker, seed_source, simulate
from protos.elm.v1 import evaluator_pb2 as pb
from protos.elm.v1 import evaluator_pb2_grpc
from services.common import RunningServer
from services.evaluator import EvaluatorServerConfig, serve
from services.evaluator.convert import result_from_proto, world_to_proto

SIM_SECONDS = 2.0
SIM = SimConfig(seconds=SIM_SECONDS)
SLOW = "import time\ndef make_walker():\n    time.sleep(0.5)\n"


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    config = EvaluatorServerConfig(
        workers=2,
        sim=SIM,
        max_in_flight=4,
        sandbox=SandboxConfig(source_limit_bytes=4096),
    )
    running = serve(config, port=0)
    yield running
    running.stop(grace_s=5)


@pytest.fixture(scope="module")
def stub(server: RunningServer) -> evaluator_pb2_grpc.EvaluatorServiceStub:
    return evaluator_pb2_grpc.EvaluatorServiceStub(grpc.insecure_channel(server.address))


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    (detail,) = rpc_status.from_call(error).details
    info = error_details_pb2.ErrorInfo()
    assert detail.Unpack(info)
    return info


def evaluations(status: str) -> float:
    return REGISTRY.get_sample_value("elm_evaluations_total", {"status": status}) or 0.0


def test_seeds_walk_as_far_as_simulating_them_directly(stub, server, seed_walkers) -> None:
    counted = evaluations("OK")
    request = pb.EvaluateRequest(programs=[seed_source(name).encode() for name in SEED_NAMES])
    response = stub.Evaluate(request, timeout=30)
    assert response.replica.endswith(f":{server.port}")
    for name, message in zip(SEED_NAMES, response.results, strict=True):
        result = result_from_proto(message)
        assert result.ok and message.status == "OK", (name, message.status, message.message)
        direct = simulate(seed_walkers[name], SIM)
        assert (result.fitness, result.descriptors) == (direct.fitness, direct.descriptors)
        assert result.walker == seed_walkers[name]
        assert result.reused == ("simulate_ms" not in message.timings_ms)
    # the two CPPN seeds build one walker: this replica simulated it once
    assert sorted(name for name, m in zip(SEED_NAMES, response.results, strict=True) if m.reused) in (
        ["cppn_fixed"], ["cppn_mutable"]
    )  # fmt: skip
    assert evaluations("OK") == counted + len(SEED_NAMES)


def test_a_walker_this_replica_has_simulated_in_that_world_is_not_simulated_again(stub) -> None:
    square = seed_source("square")
    programs = [square.replace("    centre =", f"    spare = {k}\n    centre =").encode() for k in range(2)]
    tunnel = world_to_proto(SimConfig(seconds=3.0), Terrain.named("tunnel"))
    (first,) = stub.Evaluate(pb.EvaluateRequest(programs=programs[:1], simulator=tunnel), timeout=30).results
    reused = REGISTRY.get_sample_value("elm_reused_simulations_total")
    (again,) = stub.Evaluate(pb.EvaluateRequest(programs=programs[1:], simulator=tunnel), timeout=30).results
    assert REGISTRY.get_sample_value("elm_reused_simulations_total") == reused + 1
    (flat,) = stub.Evaluate(pb.EvaluateRequest(programs=programs[1:]), timeout=30).results
    assert not first.reused and again.reused
    assert "simulate_ms" not in again.timings_ms and again.timings_ms["run_ms"] > 0
    assert (again.fitness, again.walker_json) == (first.fitness, first.walker_json)
    assert flat.fitness != first.fitness


def test_a_failing_program_is_a_result_not_an_error(stub) -> None:
    (message,) = stub.Evaluate(pb.EvaluateRequest(programs=[b"def make_walker(:\n"]), timeout=30).results
    assert (message.status, message.execution, message.simulation) == ("SYNTAX_ERROR", "SYNTAX_ERROR", "")
    assert not message.HasField("fitness") and not message.HasField("descriptors") and not message.walker_json


@pytest.mark.parametrize(
    ("program", "why"),
    [(b"x = 1\x00\n", "NUL bytes"), (b"x = '\xff\xfe'\n", "not UTF-8"), (b"#" * 5000, "over the limit")],
    ids=["nul-bytes", "not-utf8", "oversized"],
)
def test_an_unusable_program_gets_its_own_outcome_and_the_batch_goes_on(
    stub, program: bytes, why: str
) -> None:
    square = seed_source("square")
    good, bad = stub.Evaluate(pb.EvaluateRequest(programs=[square.encode(), program]), timeout=30).results
    assert good.status == "OK"
    assert good.fitness == simulate(Walker.from_dict(json.loads(good.walker_json)), SIM).fitness
    assert (bad.status, bad.simulation) == ("SYNTAX_ERROR", "") and why in bad.message


def test_the_world_a_request_names_is_the_one_simulated(stub) -> None:
    world = world_to_proto(SimConfig(seconds=3.0), Terrain.named("tunnel"))
    programs = [seed_source(name).encode() for name in ("square", "radial")]
    results = stub.Evaluate(pb.EvaluateRequest(programs=programs, simulator=world), timeout=30).results
    for message in results:
        walker = Walker.from_dict(json.loads(message.walker_json))
        assert message.fitness == simulate(walker, SimConfig(seconds=3.0), Terrain.named("tunnel")).fitness
        assert message.fitness != simulate(walker, SIM).fitness


@pytest.mark.parametrize(
    "world",
    [
        pb.SimulatorSettings(config_json='{"seconds": -1}'),
        pb.SimulatorSettings(config_json='{"warp": 9}'),
        pb.SimulatorSettings(config_json="[1]"),
        pb.SimulatorSettings(terrain_json='{"kind": "lava"}'),
        pb.SimulatorSettings(terrain_json='{"wall_gap": "far"}'),
    ],
    ids=["negative-seconds", "unknown-setting", "not-an-object", "unknown-terrain", "bad-type"],
)
def test_simulator_settings_that_do_not_decode_are_refused(stub, world: pb.SimulatorSettings) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Evaluate(pb.EvaluateRequest(programs=[b"x = 1\n"], simulator=world), timeout=30)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).reason == "BAD_SIMULATOR_SETTINGS"


def test_a_batch_over_max_batch_is_refused(stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Evaluate(pb.EvaluateRequest(programs=[b"x = 1\n"] * 5), timeout=30)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(caught.value)
    assert (info.reason, info.metadata["max_batch"]) == ("BATCH_TOO_LARGE", "4")


def test_a_full_replica_refuses_at_once_and_a_draining_one_sends_clients_elsewhere() -> None:
    running = serve(EvaluatorServerConfig(workers=1, max_in_flight=1, sim=SIM), port=0)
    stub = evaluator_pb2_grpc.EvaluatorServiceStub(grpc.insecure_channel(running.address))
    servicer = running.services[0].servicer
    slow = threading.Thread(target=stub.Evaluate, args=(pb.EvaluateRequest(programs=[SLOW.encode()]),))
    try:
        slow.start()
        while servicer.admission.in_flight == 0:
            time.sleep(0.01)
        started = time.perf_counter()
        with pytest.raises(grpc.RpcError) as caught:
            stub.Evaluate(pb.EvaluateRequest(programs=[b"x = 1\n"]), timeout=30)
        assert time.perf_counter() - started < 0.3
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info(caught.value).reason == "EVALUATOR_FULL"
        slow.join()
        servicer.drain()
        with pytest.raises(grpc.RpcError) as caught:
            stub.Evaluate(pb.EvaluateRequest(programs=[b"x = 1\n"]), timeout=30)
        assert (caught.value.code(), error_info(caught.value).reason) == (
            grpc.StatusCode.UNAVAILABLE,
            "DRAINING",
        )
    finally:
        running.stop(grace_s=5)


def test_capabilities_describe_the_sandbox_the_simulator_and_the_limits(stub, server) -> None:
    capabilities = stub.GetCapabilities(pb.GetCapabilitiesRequest(), timeout=5)
    assert {layer.name for layer in capabilities.layers} == {layer.value for layer in Layer}
    assert any(layer.active for layer in capabilities.layers)
    assert capabilities.limits.source_limit_bytes == 4096
    assert capabilities.limits.cpu_time_s == SandboxConfig().cpu_time_s
    simulator = capabilities.simulator
    assert (simulator.terrain, simulator.seconds, simulator.steps_per_second) == ("flat", SIM_SECONDS, 120)
    assert SimConfig(**json.loads(simulator.config_json)) == SIM
    assert (capabilities.workers, capabilities.max_batch) == (2, 4)
    assert capabilities.replica.endswith(f":{server.port}")


def test_health_and_reflection_answer(server) -> None:
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    channel = grpc.insecure_channel(server.address)
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "elm.v1.EvaluatorService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "elm.v1.EvaluatorService" in services and "grpc.health.v1.Health" in services
