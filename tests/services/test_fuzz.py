"""Bad input over the wire: random and hostile requests for every RPC of the four services, on live servers.

Each gets a typed status (never INTERNAL or UNKNOWN), the server keeps serving, and a run stored before the
storm is unchanged after it. Requests are drawn by hypothesis from the messages' descriptors: every field,
with extreme numbers, odd text, large bytes, nesting up to the messages' own depth."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elm_core.sodarace import seed_source
from protos.elm.v1 import coordinator_pb2, evaluator_pb2, mutation_pb2, trainer_pb2
from services.client import CoordinatorClient
from services.common import MAX_MESSAGE_BYTES, RunningServer
from services.coordinator import CoordinatorServerConfig
from services.coordinator import serve as serve_coordinator
from services.evaluator import EvaluatorServerConfig
from services.evaluator import serve as serve_evaluator
from services.model_server import ModelServerConfig
from services.model_server import serve as serve_model
from services.trainer import TrainerServerConfig
from services.trainer import serve as serve_trainer

# A typed answer: the call was refused for a reason the caller can act on (or it succeeded).
TYPED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
         grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED,
         grpc.StatusCode.DEADLINE_EXCEEDED}  # fmt: skip
GP = {"mutation": {"operator": "gp"}, "loop": {"batch_size": 4, "pipeline_depth": 1, "max_evaluations": 8}}
EDGE_INTS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
}
ODD_TEXT = ["", "..", "../../etc/passwd", "run-1", "tiny", "{}", "[" * 5000, "é" * 1000, "x" * 100_000,
            '{"mutation": {"operator": "gp"}, "loop": {"max_evaluations": -5}}',
            '{"loop": {"batch_size": 1e308}}', '{"evaluation": {"sim": {"seconds": 1e9}}}']  # fmt: skip


def scalars(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in EDGE_INTS:
        low, high = EDGE_INTS[kind]
        return st.one_of(st.integers(low, high), st.sampled_from([low, high, 0, 1]))
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(
            allow_nan=True, allow_infinity=True, width=32 if kind == FieldDescriptor.TYPE_FLOAT else 64
        )
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_BYTES:
        odd = [b"", b"\xff\xfe\x00", b"#" * 300_000, seed_source("square").encode()]
        return st.one_of(st.binary(max_size=64), st.sampled_from(odd))
    if kind == FieldDescriptor.TYPE_STRING:
        return st.one_of(
            st.text(st.characters(blacklist_categories=("Cs",)), max_size=40), st.sampled_from(ODD_TEXT)
        )
    raise AssertionError(f"no strategy for field type {kind} of {field.full_name}")


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """Any message of `descriptor`'s type: each field set or not, to anything its type allows."""
    cls = message_factory.GetMessageClass(descriptor)
    optional = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            optional[field.name] = st.dictionaries(scalars(key), scalars(value), max_size=4)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            inner = messages(field.message_type, depth + 1) if depth < 3 else st.just(None)
            optional[field.name] = st.lists(inner, max_size=3) if _repeated(field) else inner
        else:
            optional[field.name] = (
                st.lists(scalars(field), max_size=6) if _repeated(field) else scalars(field)
            )
    return st.fixed_dictionaries({}, optional=optional).map(lambda values: _build(cls, descriptor, values))


def _repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _build(cls: type, descriptor: Descriptor, values: dict[str, Any]) -> Any:
    message = cls()
    for name, value in values.items():
        field = descriptor.fields_by_name[name]
        target = getattr(message, name)
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            target.update(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and _repeated(field):
            for item in value:
                target.add().CopyFrom(item) if item is not None else target.add()
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            target.CopyFrom(value) if value is not None else target.SetInParent()
        elif _repeated(field):
            target.extend(value)
        else:
            setattr(message, name, value)
    return message


@dataclass
class Stack:
    coordinator: RunningServer
    evaluator: RunningServer
    model: RunningServer
    trainer: RunningServer
    run_id: str
    data: Path

    def server_for(self, service: str) -> RunningServer:
        return {"CoordinatorService": self.coordinator, "EvaluatorService": self.evaluator,
                "MutationService": self.model, "TrainerService": self.trainer}[service]  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")  # a model name the fuzzer makes up is never fetched
    data = tmp_path_factory.mktemp("fuzz")
    evaluator = serve_evaluator(EvaluatorServerConfig(workers=1), port=0)
    model = serve_model(ModelServerConfig(model="tiny", threads=1, max_queued_parents=2))
    trainer = serve_trainer(TrainerServerConfig(store_path=data / "coordinator.sqlite",
                                                checkpoints_dir=data / "checkpoints"), port=0)  # fmt: skip
    # no model server: a run the fuzzer creates can only be a (cheap) GP run
    config = CoordinatorServerConfig(data_dir=data, evaluators=(evaluator.address,), trainer=trainer.address)
    coordinator = serve_coordinator(config, port=0)
    with CoordinatorClient(coordinator.address) as client:
        run = client.create_run([seed_source("square"), seed_source("radial")], name="kept", config=GP)
        list(client.watch_run(run.run_id))
    yield Stack(coordinator, evaluator, model, trainer, run.run_id, data)
    for server in (coordinator, trainer, model, evaluator):
        server.stop(grace_s=5)
    mp.undo()


def methods() -> list[MethodDescriptor]:
    modules = (coordinator_pb2, evaluator_pb2, mutation_pb2, trainer_pb2)
    services = [service for module in modules for service in module.DESCRIPTOR.services_by_name.values()]
    return [method for service in services for method in service.methods]


def call(
    server: RunningServer, method: MethodDescriptor, request: bytes, timeout: float = 30.0
) -> grpc.StatusCode:
    """Sends raw request bytes; the status the server answered with (a stream is read to its end)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    with grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", -1)]) as channel:
        try:
            if method.server_streaming:
                stream = channel.unary_stream(path, request_serializer=None, response_deserializer=None)
                for _ in stream(request, timeout=timeout):
                    pass
            else:
                channel.unary_unary(path, request_serializer=None, response_deserializer=None)(
                    request, timeout=timeout
                )
        except grpc.RpcError as e:
            return e.code()
    return grpc.StatusCode.OK


def assert_serving(server: RunningServer) -> None:
    with grpc.insecure_channel(server.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def stored(stack: Stack) -> dict:
    with CoordinatorClient(stack.coordinator.address) as client:
        run = client.get_run(stack.run_id)
        archive = [(e.cell, e.individual_id, e.fitness) for e in client.get_archive(stack.run_id)]
    return {"evaluations": run.evaluations, "status": run.status, "archive": archive}


@pytest.mark.parametrize("method", methods(), ids=lambda m: f"{m.containing_service.name}.{m.name}")
def test_every_rpc_answers_random_requests_with_a_typed_status(
    stack: Stack, method: MethodDescriptor
) -> None:
    before = stored(stack)
    server = stack.server_for(method.containing_service.name)
    examples = 8 if method.name in ("Mutate", "ReloadModel", "CreateRun", "StartJob") else 25

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    @given(messages(method.input_type))
    def check(request: Any) -> None:
        code = call(server, method, request.SerializeToString(), timeout=60)
        assert code in TYPED, f"{method.name}({request!s:.300}) answered {code}"

    check()
    assert_serving(server)
    if method.name not in (
        "StopRun",
        "PauseRun",
        "ResumeRun",
        "SubmitSeed",
    ):  # those may change it, by design
        assert stored(stack) == before


def string_fields(descriptor: Descriptor) -> list[FieldDescriptor]:
    return [f for f in descriptor.fields if f.type == FieldDescriptor.TYPE_STRING]


@pytest.mark.parametrize("method", [m for m in methods() if string_fields(m.input_type)],
                         ids=lambda m: f"{m.containing_service.name}.{m.name}")  # fmt: skip
def test_text_that_is_not_utf8_is_invalid_argument(stack: Stack, method: MethodDescriptor) -> None:
    server = stack.server_for(method.containing_service.name)
    for field in string_fields(method.input_type):
        raw = bytes([field.number << 3 | 2, 3]) + b"\xff\xfe\xfd"  # the field, length 3, not UTF-8
        assert call(server, method, raw) is grpc.StatusCode.INVALID_ARGUMENT, field.name
    assert_serving(server)


def test_a_message_over_the_size_limit_is_refused_and_the_server_goes_on(stack: Stack) -> None:
    method = coordinator_pb2.DESCRIPTOR.services_by_name["CoordinatorService"].methods_by_name["CreateRun"]
    huge = coordinator_pb2.CreateRunRequest(seed_programs=[b"#" * (MAX_MESSAGE_BYTES + 1024)])
    assert call(stack.coordinator, method, huge.SerializeToString()) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_serving(stack.coordinator)


def test_a_50_mb_seed_and_a_deeply_nested_config_are_invalid_arguments(stack: Stack) -> None:
    method = coordinator_pb2.DESCRIPTOR.services_by_name["CoordinatorService"].methods_by_name["CreateRun"]
    seed = coordinator_pb2.CreateRunRequest(seed_programs=[b"#" * (50 << 20)], config_json=json.dumps(GP))
    deep = coordinator_pb2.CreateRunRequest(config_json="[" * 200_000 + "]" * 200_000)
    with CoordinatorClient(stack.coordinator.address) as client:
        runs = [r.run_id for r in client.list_runs()]
        for request in (seed, deep):
            code = call(stack.coordinator, method, request.SerializeToString())
            assert code is grpc.StatusCode.INVALID_ARGUMENT
        assert [r.run_id for r in client.list_runs()] == runs


def test_a_flood_of_watchers_is_turned_away_and_other_calls_still_answer(stack: Stack) -> None:
    with CoordinatorClient(stack.coordinator.address) as client:
        paused = client.create_run([seed_source("square")], name="watched", config=GP, paused=True)
    channel = grpc.insecure_channel(stack.coordinator.address)
    watch = channel.unary_stream("/elm.v1.CoordinatorService/WatchRun",
                                 request_serializer=coordinator_pb2.WatchRunRequest.SerializeToString,
                                 response_deserializer=coordinator_pb2.RunEvent.FromString)  # fmt: skip
    streams = [watch(coordinator_pb2.WatchRunRequest(run_id=paused.run_id), timeout=60) for _ in range(2000)]
    codes: list[grpc.StatusCode] = []
    lock = threading.Lock()

    def first_answer(stream: Any) -> None:
        try:
            next(stream)
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            code = e.code()
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=first_answer, args=(s,)) for s in streams]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(codes) == len(streams)
    # Calls arriving all at once faster than gRPC's core queues them are shed before any servicer sees them:
    # those end CANCELLED. The rest reach the server, which lets 16 watch and turns the others away.
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED}
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) > len(streams) // 2
    assert 0 < codes.count(grpc.StatusCode.OK) <= 16  # at most half the server's threads watch
    with CoordinatorClient(stack.coordinator.address) as client:  # while the watchers hold their streams
        assert client.get_run(stack.run_id).status == "FINISHED"
    for stream in streams:
        stream.cancel()
    channel.close()
    assert_serving(stack.coordinator)
