"""The model server with the tiny real model over real gRPC: batching, back-pressure, validation, reloads."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from elm_core.errors import ElmError
from elm_core.models import CodeGenerator, Generation, HFConfig, Prompt, SamplingConfig, load_generator
from elm_core.mutation import SODARACE_MESSAGES, Child, ChildRequest, MutationOutcome
from elm_core.sodarace import seed_source
from protos.elm.v1 import mutation_pb2, mutation_pb2_grpc
from services.client._mutation import RemoteMutator
from services.common import RunningServer, channel, error_reason
from services.model_server import SERVICE_NAME, ModelServerConfig, serve

SQUARE, RADIAL = seed_source("square"), seed_source("radial")
OUTCOMES = {outcome.value for outcome in MutationOutcome}


class Recording:
    """A thin wrapper around the real generator: records the prompts of every model call, and can hold
    calls at a gate (to keep the model busy while a test fills the queue)."""

    def __init__(self, inner: CodeGenerator) -> None:
        self.inner, self.name = inner, inner.name
        self.calls: list[list[Prompt]] = []
        self.entered, self.gate = threading.Event(), threading.Event()
        self.gate.set()

    def generate(
        self, prompts: Sequence[Prompt], sampling: SamplingConfig, *, seed: int | None = None
    ) -> list[Generation]:
        self.calls.append(list(prompts))
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        return self.inner.generate(prompts, sampling, seed=seed)


class Started:
    def __init__(self, server: RunningServer, loaded: list[Recording]) -> None:
        self.server, self.loaded = server, loaded
        self.channel = channel(server.address)
        self.stub = mutation_pb2_grpc.MutationServiceStub(self.channel)


@pytest.fixture
def start(model_cache: Path) -> Iterator[Callable[..., Started]]:
    """Starts model servers on the tiny model (8 new tokens by default); stops them after the test."""
    started: list[Started] = []

    def start_one(**config: object) -> Started:
        loaded: list[Recording] = []

        def loader(name: str, backend: str) -> Recording:
            loaded.append(Recording(load_generator(name, HFConfig(threads=1), backend=backend)))
            return loaded[-1]

        options = {"model": "tiny", "sampling": SamplingConfig(max_new_tokens=8), **config}
        started.append(Started(serve(ModelServerConfig(**options), host="127.0.0.1", loader=loader), loaded))
        return started[-1]

    yield start_one
    for one in started:
        for generator in one.loaded:
            generator.gate.set()
        one.channel.close()
        one.server.stop(grace_s=0)


def request(*parents: str, **fields: object) -> mutation_pb2.MutateRequest:
    return mutation_pb2.MutateRequest(
        parents=[mutation_pb2.Parent(source=p.encode()) for p in parents],
        **fields,
    )


def call_together(calls: list[Callable[[], object]]) -> list[object]:
    """Runs the calls in threads that start at the same moment; returns their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> object:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_mutate_returns_n_children_per_parent_with_raw_output_and_typed_outcomes(
    start: Callable[..., Started],
) -> None:
    stub = start().stub
    parents = [mutation_pb2.Parent(source=SQUARE.encode(), message="Make it taller."),
               mutation_pb2.Parent(source=RADIAL.encode())]  # fmt: skip
    ask = mutation_pb2.MutateRequest(parents=parents, style="diff", n=3, seed=7, max_new_tokens=16)
    response = stub.Mutate(ask, timeout=30)
    assert (response.model, response.model_version) == ("tiny", 1)
    assert [c.parent_index for c in response.children] == [0, 0, 0, 1, 1, 1]
    for child in response.children:
        assert child.outcome in OUTCOMES and child.raw_output and child.style == "diff"
        assert child.HasField("source") == (child.outcome == "OK")
    assert {c.message for c in response.children[:3]} == {"Make it taller."}
    assert {c.message for c in response.children[3:]} <= {text for text, _ in SODARACE_MESSAGES}
    again = stub.Mutate(ask)  # alone in its batch, a seeded request is reproducible (even with no deadline)
    assert [c.raw_output for c in again.children] == [c.raw_output for c in response.children]


def test_concurrent_callers_share_model_calls(start: Callable[..., Started]) -> None:
    server = start(max_wait_ms=300)
    responses = call_together([lambda: server.stub.Mutate(request(SQUARE), timeout=30)] * 8)
    assert all(len(r.children) == 1 for r in responses)
    calls = server.loaded[0].calls
    assert len(calls) < 8 and sum(map(len, calls)) == 8


def test_requests_with_different_styles_never_share_a_model_call(start: Callable[..., Started]) -> None:
    server = start(max_wait_ms=300)
    styles = ["diff", "rewrite", "instruct", "diff", "rewrite", "instruct"]
    responses = call_together(
        [lambda s=style: server.stub.Mutate(request(SQUARE, style=s), timeout=30) for style in styles]
    )
    assert [r.children[0].style for r in responses] == styles
    calls = server.loaded[0].calls
    assert len(calls) >= 3 and sum(map(len, calls)) == 6
    for prompts in calls:
        assert len({_style(prompt) for prompt in prompts}) == 1


def _style(prompt: Prompt) -> str:
    if prompt.text is not None:
        return "diff"
    return "instruct" if "```diff" in prompt.messages[-1][1] else "rewrite"


def test_a_full_queue_is_resource_exhausted(start: Callable[..., Started]) -> None:
    server = start(max_queued_parents=2, max_wait_ms=0)
    model = server.loaded[0]
    model.gate.clear()
    running = server.stub.Mutate.future(request(SQUARE), timeout=30)
    assert model.entered.wait(10)  # the model is busy with the first call; the queue is empty
    # 2 + 1 prompts do not fit a queue of 2: whichever call comes second is refused at once
    calls = [server.stub.Mutate.future(request(SQUARE, n=n), timeout=30) for n in (2, 1)]
    assert wait_for(lambda: any(call.done() for call in calls))
    refused = next(call for call in calls if call.done())
    assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED and error_reason(refused) == "BACKPRESSURE"
    model.gate.set()
    queued = next(call for call in calls if call is not refused)
    assert running.result().children and queued.result().children


def test_a_caller_that_gives_up_leaves_the_queue_without_breaking_the_others(
    start: Callable[..., Started],
) -> None:
    server = start(max_wait_ms=0)
    model = server.loaded[0]
    model.gate.clear()
    running = server.stub.Mutate.future(request(SQUARE), timeout=30)
    assert model.entered.wait(10)
    impatient = server.stub.Mutate.future(request(SQUARE, n=4), timeout=0.3)
    patient = server.stub.Mutate.future(request(RADIAL), timeout=30)
    assert impatient.exception(timeout=10).code() is grpc.StatusCode.DEADLINE_EXCEEDED
    model.gate.set()
    assert len(running.result().children) == 1 and len(patient.result().children) == 1
    assert [len(prompts) for prompts in model.calls] == [1, 1]  # the impatient call never reached the model


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


BAD_REQUESTS = {
    "not UTF-8": mutation_pb2.MutateRequest(parents=[mutation_pb2.Parent(source=b"def f():\xff\xfe")]),
    "a NUL byte": mutation_pb2.MutateRequest(parents=[mutation_pb2.Parent(source=b"def f():\0 pass")]),
    "an unknown style": request(SQUARE, style="sonnet"),
    "NaN temperature": request(SQUARE, temperature=math.nan),
    "negative temperature": request(SQUARE, temperature=-0.5),
    "n over 16": request(SQUARE, n=17),
    "too many parents": request(*[SQUARE] * 65),
    "no tokens": request(SQUARE, max_new_tokens=0),
}


def test_bad_requests_are_invalid_argument_with_a_reason(start: Callable[..., Started]) -> None:
    stub = start().stub
    for name, bad in BAD_REQUESTS.items():
        with pytest.raises(grpc.RpcError) as raised:
            stub.Mutate(bad, timeout=30)
        assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT, name
        assert error_reason(raised.value) == "INVALID_REQUEST", name


def test_reload_under_load_fails_no_call_and_later_calls_see_the_new_model(
    start: Callable[..., Started], model_cache: Path
) -> None:
    server = start(max_wait_ms=20)
    stop, seen, errors = threading.Event(), [], []  # seen: (call started, model, version)

    def loop() -> None:
        while not stop.is_set():
            began = time.monotonic()
            try:
                response = server.stub.Mutate(request(SQUARE), timeout=30)
            except grpc.RpcError as e:  # recorded, so the test can say which call failed and why
                errors.append(e)
                return
            seen.append((began, response.model, response.model_version))

    with ThreadPoolExecutor(8) as pool:
        for _ in range(8):
            pool.submit(loop)
        assert wait_for(lambda: len(seen) >= 8)
        checkpoint = str(model_cache / "tiny")  # the same weights, named as a checkpoint directory
        reply = server.stub.ReloadModel(mutation_pb2.ReloadModelRequest(model=checkpoint), timeout=60)
        swapped = time.monotonic()
        assert wait_for(lambda: sum(began > swapped for began, _, _ in seen) >= 8)
        stop.set()
    assert not errors and reply.info.version == 2 and reply.info.name == checkpoint
    assert {version for _, _, version in seen} == {1, 2}
    assert all((model, version) == (checkpoint, 2) for began, model, version in seen if began > swapped)
    assert len(server.loaded) == 2 and server.loaded[1].calls  # the new model served calls


def test_a_failed_reload_keeps_the_old_model_and_reloads_are_serialised(
    start: Callable[..., Started], tmp_path: Path
) -> None:
    stub = start().stub
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    for model, code, reason in [
        ("no-such-model", grpc.StatusCode.INVALID_ARGUMENT, "NOT_FOUND"),
        (str(tmp_path), grpc.StatusCode.INVALID_ARGUMENT, "NOT_FOUND"),  # a directory with no model
        (
            str(tmp_path / "broken"),
            grpc.StatusCode.UNAVAILABLE,
            "BACKEND_UNAVAILABLE",
        ),  # one that fails to load
    ]:
        with pytest.raises(grpc.RpcError) as raised:
            stub.ReloadModel(mutation_pb2.ReloadModelRequest(model=model), timeout=60)
        assert raised.value.code() is code and error_reason(raised.value) == reason
    response = stub.Mutate(request(SQUARE), timeout=30)
    assert (response.model, response.model_version, len(response.children)) == ("tiny", 1, 1)
    reload = mutation_pb2.ReloadModelRequest(model="tiny")
    replies = call_together([lambda: stub.ReloadModel(reload, timeout=60)] * 2)
    assert sorted(r.info.version for r in replies) == [2, 3]
    assert stub.GetModelInfo(mutation_pb2.GetModelInfoRequest(), timeout=10).version == 3


def test_model_info_health_and_reflection(start: Callable[..., Started]) -> None:
    server = start()
    server.stub.Mutate(request(SQUARE), timeout=30)
    info = server.stub.GetModelInfo(mutation_pb2.GetModelInfoRequest(), timeout=10)
    assert (info.name, info.backend, info.default_style, info.version) == ("tiny", "hf", "rewrite", 1)
    assert set(info.styles) == {"diff", "instruct", "rewrite"} and info.generated_tokens > 0
    assert (info.max_batch_size, info.max_wait_ms) == (8, 5.0)
    health = health_pb2_grpc.HealthStub(server.channel).Check(
        health_pb2.HealthCheckRequest(service=SERVICE_NAME)
    )
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    ask = reflection_pb2.ServerReflectionRequest(list_services="")
    answer = next(reflection_pb2_grpc.ServerReflectionStub(server.channel).ServerReflectionInfo(iter([ask])))
    assert SERVICE_NAME in {s.name for s in answer.list_services_response.service}


def test_remote_mutator_is_a_mutator(start: Callable[..., Started], model_cache: Path) -> None:
    server = start()
    mutator = RemoteMutator(
        server.server.address, style="instruct", sampling=SamplingConfig(max_new_tokens=8)
    )
    try:
        parents = [SQUARE, RADIAL, SQUARE]
        children = mutator.mutate(parents, np.random.default_rng(3))
        assert [c.parent for c in children] == parents and mutator.name == "llm"
        for child in children:
            assert isinstance(child, Child) and isinstance(child.outcome, MutationOutcome)
            assert (child.operator, child.style) == ("paper", "instruct") and (
                child.source is not None
            ) == child.ok
        assert mutator.mutate([], np.random.default_rng(3)) == []
        assert mutator.reload(str(model_cache / "tiny")).info.version == 2
        assert mutator.model_info().version == 2
        with pytest.raises(ElmError, match="unknown model"):
            mutator.reload("no-such-model")
    finally:
        mutator.close()


def test_instructions_and_other_programs_cross_the_wire(start: Callable[..., Started]) -> None:
    server = start()
    asked = ChildRequest(parent=SQUARE, instruction="Make the walker about 3 m taller.", others=(RADIAL,),
                         operator="crossover")  # fmt: skip
    with RemoteMutator(server.server.address, sampling=SamplingConfig(max_new_tokens=8)) as mutator:
        (child,) = mutator.mutate([asked], np.random.default_rng(0))
    (prompt,) = server.loaded[0].calls[-1]
    user = prompt.messages[-1][1]
    assert RADIAL.rstrip() in user and SQUARE.rstrip() in user and asked.instruction in user
    assert (child.operator, child.message, child.parent) == ("crossover", asked.instruction, SQUARE)
    assert child.generated_tokens > 0
