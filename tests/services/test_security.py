"""Who may talk to the services: mutual TLS between them, bearer tokens with roles on the coordinator's API,
plaintext on loopback only. Real servers on loopback, real certificates from `elm certs`."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from typer.testing import CliRunner

from elm_core.errors import BackendUnavailableError, ConfigError
from elm_core.sodarace import seed_source
from protos.elm.v1 import coordinator_pb2 as pb
from protos.elm.v1 import coordinator_pb2_grpc, evaluator_pb2, evaluator_pb2_grpc
from services import healthcheck
from services.cli.main import app
from services.client import CoordinatorClient, EvaluatorFleet, TrainerClient
from services.common import (
    Credentials,
    RemoteError,
    RunningServer,
    TLSIdentity,
    TokenAuthority,
    error_reason,
    start_server,
)
from services.coordinator import CoordinatorServerConfig
from services.coordinator import serve as serve_coordinator
from services.evaluator import EvaluatorServerConfig
from services.evaluator import serve as serve_evaluator
from services.trainer import TrainerServerConfig
from services.trainer import serve as serve_trainer
from tests.e2e.services_harness import free_port

GP = {"mutation": {"operator": "gp"}, "loop": {"batch_size": 4, "pipeline_depth": 1, "max_evaluations": 8}}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    result = CliRunner().invoke(app, ["certs", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Certificates of another authority: valid-looking, not trusted by the services."""
    out = tmp_path_factory.mktemp("stranger")
    assert CliRunner().invoke(app, ["certs", "--out", str(out)]).exit_code == 0
    return out


def identity(certs: Path, party: str) -> TLSIdentity:
    return TLSIdentity.load(certs / party, party)


def token(certs: Path, role: str) -> str:
    return (certs / "client" / f"{role}.token").read_text().strip()


def dashboard_token(certs: Path) -> str:
    return (certs / "dashboard" / "admin.token").read_text().strip()


@pytest.fixture(scope="module")
def evaluator(certs: Path) -> Iterator[RunningServer]:
    running = serve_evaluator(EvaluatorServerConfig(workers=1), port=0, tls=identity(certs, "evaluator"))
    yield running
    running.stop(grace_s=5)


@pytest.fixture(scope="module")
def coordinator(
    certs: Path, evaluator: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A coordinator serving TLS with tokens, evaluating on the mutual-TLS evaluator."""
    config = CoordinatorServerConfig(
        data_dir=tmp_path_factory.mktemp("coordinator"),
        evaluators=(f"localhost:{evaluator.port}",),
        tls=identity(certs, "coordinator"),
        tokens=TokenAuthority.load(certs / "coordinator" / "tokens.json"),
    )
    running = serve_coordinator(config, port=0)
    yield f"localhost:{running.port}"
    running.stop(grace_s=5)


def client(address: str, certs: Path, role: str | None) -> CoordinatorClient:
    credentials = Credentials(identity(certs, "client"), token(certs, role) if role else None)
    return CoordinatorClient(address, credentials=credentials)


def raw_stub(address: str, certs: Path) -> coordinator_pb2_grpc.CoordinatorServiceStub:
    channel = grpc.secure_channel(address, identity(certs, "client").channel_credentials())
    return coordinator_pb2_grpc.CoordinatorServiceStub(channel)


def test_elm_certs_writes_each_party_only_its_own_keys(certs: Path) -> None:
    assert sorted(p.name for p in (certs / "evaluator").iterdir()) == [
        "ca.pem",
        "evaluator.key",
        "evaluator.pem",
    ]
    assert sorted(p.name for p in (certs / "client").iterdir()) == [
        "admin.token", "ca.pem", "client.key", "client.pem", "read.token"
    ]  # fmt: skip
    assert sorted(p.name for p in (certs / "dashboard").iterdir()) == [
        "admin.token", "ca.pem", "dashboard.key", "dashboard.pem"
    ]  # fmt: skip
    assert not list(certs.rglob("ca.key"))  # the authority's key is not kept
    for private in [*certs.rglob("*.key"), *certs.rglob("*.token")]:
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    digests = json.loads((certs / "coordinator" / "tokens.json").read_text())["tokens"]
    assert {d["role"] for d in digests} == {"admin", "read"}
    # the dashboard's admin token is its own, named in the coordinator's log, revocable alone
    assert {d["name"]: d["role"] for d in digests}["dashboard"] == "admin"
    assert len({d["sha256"] for d in digests}) == len(digests) == 3
    for held in (token(certs, "admin"), dashboard_token(certs)):
        assert held not in (certs / "coordinator" / "tokens.json").read_text()


@pytest.mark.parametrize("presented", [None, "not-a-token"], ids=["no-token", "wrong-token"])
def test_a_caller_without_a_known_token_is_unauthenticated_and_changes_nothing(
    coordinator: str, certs: Path, presented: str | None
) -> None:
    stub = raw_stub(coordinator, certs)
    metadata = (("authorization", f"Bearer {presented}"),) if presented else ()
    for call, request in ((stub.ListRuns, pb.ListRunsRequest()),
                          (stub.CreateRun, pb.CreateRunRequest(config_json=json.dumps(GP)))):  # fmt: skip
        with pytest.raises(grpc.RpcError) as caught:
            call(request, timeout=10, metadata=metadata)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert error_reason(caught.value) == "UNAUTHENTICATED"
    with client(coordinator, certs, "read") as reader:
        assert reader.list_runs() == []


def test_a_read_token_watches_and_reads_but_may_not_create_or_stop(coordinator: str, certs: Path) -> None:
    with client(coordinator, certs, "admin") as admin:
        run = admin.create_run([seed_source("square")], config=GP, paused=True)
    stub = raw_stub(coordinator, certs)
    metadata = (("authorization", f"Bearer {token(certs, 'read')}"),)
    refused = [(stub.CreateRun, pb.CreateRunRequest(config_json=json.dumps(GP))),
               (stub.StopRun, pb.RunRequest(run_id=run.run_id)),
               (stub.ResumeRun, pb.ResumeRunRequest(run_id=run.run_id)),
               (stub.SubmitSeed, pb.SubmitSeedRequest(run_id=run.run_id, program=b"x = 1"))]  # fmt: skip
    for call, request in refused:
        with pytest.raises(grpc.RpcError) as caught:
            call(request, timeout=10, metadata=metadata)
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED and "admin" in caught.value.details()
    with client(coordinator, certs, "read") as reader:
        assert [r.run_id for r in reader.list_runs()] == [run.run_id]
        assert reader.get_run(run.run_id).status == "CREATED"  # not stopped, not resumed


def test_an_admin_token_runs_a_run_through_the_mutual_tls_fleet(coordinator: str, certs: Path) -> None:
    with client(coordinator, certs, "admin") as admin:
        run = admin.create_run([seed_source("square"), seed_source("radial")], config=GP)
    with client(coordinator, certs, "read") as reader:
        events = list(reader.watch_run(run.run_id))
        assert events[-1].run.status == "FINISHED" and events[-1].run.progress.evaluations == 8
        assert reader.get_archive(run.run_id)


def test_a_plaintext_client_cannot_reach_a_tls_coordinator(coordinator: str, certs: Path) -> None:
    plain = CoordinatorClient(coordinator, credentials=Credentials(None, token(certs, "admin")))
    with plain, pytest.raises(BackendUnavailableError):
        plain.list_runs()


def test_an_evaluator_refuses_callers_without_a_certificate_of_its_authority(
    evaluator: RunningServer, certs: Path, stranger: Path
) -> None:
    address = f"localhost:{evaluator.port}"
    trusting_only = grpc.ssl_channel_credentials(root_certificates=identity(certs, "client").ca)
    stub = evaluator_pb2_grpc.EvaluatorServiceStub(grpc.secure_channel(address, trusting_only))
    with pytest.raises(grpc.RpcError) as caught:  # TLS, but no certificate of its own
        stub.Evaluate(evaluator_pb2.EvaluateRequest(programs=[b"x = 1"]), timeout=30)
    # the handshake fails; on a loaded machine the channel may still be retrying it at the deadline
    assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    for credentials in (Credentials(None), Credentials(identity(stranger, "coordinator"))):
        fleet = EvaluatorFleet([address], give_up_s=1.0, credentials=credentials)
        with fleet, pytest.raises(BackendUnavailableError):
            fleet.evaluate([seed_source("square")])
    with EvaluatorFleet([address], credentials=Credentials(identity(certs, "coordinator"))) as fleet:
        (result,) = fleet.evaluate([seed_source("square")])
        assert result.ok


def test_plaintext_is_for_loopback_only(tmp_path: Path, certs: Path) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        start_server([], port=0, host="[::]")
    config = CoordinatorServerConfig(data_dir=tmp_path, local_workers=1, tls=identity(certs, "coordinator"))
    with pytest.raises(ConfigError, match="tokens"):
        serve_coordinator(config, port=0, host="[::]")


def test_the_container_health_probe_speaks_tls(
    evaluator: RunningServer, certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not healthcheck.check(f"localhost:{evaluator.port}", 3.0)  # plaintext: refused
    monkeypatch.setenv("ELM_TLS_DIR", str(certs / "evaluator"))
    monkeypatch.setenv("ELM_TLS_NAME", "evaluator")
    assert healthcheck.check(f"localhost:{evaluator.port}", 3.0)


def test_no_service_but_the_evaluators_takes_an_evaluator_s_certificate(certs: Path, tmp_path: Path) -> None:
    """The programs an evaluator runs share its uid, so they could read its key: it opens nothing else."""
    config = TrainerServerConfig(
        store_path=tmp_path / "store.sqlite", checkpoints_dir=tmp_path / "checkpoints"
    )
    running = serve_trainer(config, port=0, tls=identity(certs, "trainer"))
    try:
        address = f"localhost:{running.port}"
        with TrainerClient(address, credentials=Credentials(identity(certs, "evaluator"))) as trainer:
            with pytest.raises(RemoteError) as caught:
                trainer.list_jobs()
            assert caught.value.code is grpc.StatusCode.PERMISSION_DENIED and "evaluator" in str(caught.value)
        for party in ("coordinator", "client"):
            with TrainerClient(address, credentials=Credentials(identity(certs, party))) as trainer:
                assert trainer.list_jobs() == []
    finally:
        running.stop(grace_s=5)


def test_a_health_port_tells_probes_the_status_in_plaintext_and_nothing_else(certs: Path) -> None:
    port = free_port()
    config = EvaluatorServerConfig(workers=1)
    running = serve_evaluator(config, port=0, tls=identity(certs, "evaluator"), health_port=port)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as caught:
            stub = evaluator_pb2_grpc.EvaluatorServiceStub(channel)
            stub.Evaluate(evaluator_pb2.EvaluateRequest(programs=[b"x = 1"]), timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        running.stop(grace_s=5)


def test_the_dashboards_certificate_and_token_are_an_admins_on_the_coordinator_and_open_nothing_else(
    coordinator: str, certs: Path, tmp_path: Path
) -> None:
    """What `elm dashboard` holds in compose and Kubernetes: its own certificate and admin token."""
    dashboard = Credentials(identity(certs, "dashboard"), dashboard_token(certs))
    with CoordinatorClient(coordinator, credentials=dashboard) as client:
        run = client.create_run([seed_source("square")], config=GP, paused=True)
        assert run.run_id in [r.run_id for r in client.list_runs()]
        assert client.stop_run(run.run_id).status in ("STOPPING", "STOPPED")
    # a client certificate: the backends, which trust only the coordinator's and clients', refuse it
    config = TrainerServerConfig(
        store_path=tmp_path / "store.sqlite", checkpoints_dir=tmp_path / "checkpoints"
    )
    running = serve_trainer(config, port=0, tls=identity(certs, "trainer"))
    try:
        with TrainerClient(f"localhost:{running.port}", credentials=dashboard) as trainer:
            with pytest.raises(RemoteError) as caught:
                trainer.list_jobs()
            assert caught.value.code is grpc.StatusCode.PERMISSION_DENIED
    finally:
        running.stop(grace_s=5)
