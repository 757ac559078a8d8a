"""`docker compose up` on real containers: the images built from deploy/docker/Dockerfile, the stack from
docker-compose.yml, driven from this machine through the coordinator's published loopback port.

Needs a Docker engine and the compose plugin (deploy/scripts/bootstrap.sh provides both; CI runs it and sets
ELM_REQUIRE_DOCKER=1 so that a missing engine fails instead of skipping).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import grpc
import pytest

from elm_core.errors import BackendUnavailableError
from elm_core.sodarace import seed_source
from services.client import CoordinatorClient
from services.common import Credentials, RemoteError
from tests.core.sandbox.test_hostile import HOSTILE

from .compose_harness import ComposeStack, require_docker

pytestmark = pytest.mark.containers

UID = 10001  # the images' user


@pytest.fixture(scope="module")
def stack() -> Iterator[ComposeStack]:
    require_docker()
    stack = ComposeStack(project=f"elm-test-{uuid.uuid4().hex[:8]}")
    stack.compose("build", timeout=1800)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def gp_config(budget: int) -> dict:
    return {"mutation": {"operator": "gp"}, "loop": {"batch_size": 8, "max_evaluations": budget}}


def finish(client: CoordinatorClient, run_id: str) -> None:
    for event in client.watch_run(run_id):
        if event.run.status in ("FINISHED", "FAILED", "STOPPED"):
            assert event.run.status == "FINISHED", event.run.message
            return


def wait_for(client: CoordinatorClient, run_id: str, evaluations: int) -> None:
    for event in client.watch_run(run_id):
        if event.run.evaluations >= evaluations:
            assert event.run.status == "RUNNING", "the run ended before the fault was injected"
            return


COUNT_RUN = """
from collections import Counter
from elm_core.store import SQLiteStore
with SQLiteStore("/data/coordinator.sqlite") as store:
    individuals = store.individuals(PAYLOAD)
    mutations = store.mutations(PAYLOAD)
print(json.dumps({
    "ids": [i.individual_id for i in individuals],
    "statuses": Counter(i.status for i in individuals),
    "mutations": len(mutations),
    "raw_outputs": sum(bool(m.raw_output) for m in mutations),
    "operators": sorted({m.operator for m in mutations}),
}))
"""


def stored(stack: ComposeStack, run_id: str) -> dict:
    """What the coordinator's volume holds for a run (read inside its container)."""
    return stack.python("coordinator", COUNT_RUN, run_id)  # type: ignore[return-value]


def assert_nothing_lost(stack: ComposeStack, run_id: str, budget: int) -> None:
    run = stored(stack, run_id)
    assert run["ids"] == list(range(budget)), "individuals lost or committed twice"
    assert "SANDBOX_ERROR" not in run["statuses"], run["statuses"]


def test_the_published_api_takes_tls_and_a_token_with_the_right_role(stack: ComposeStack) -> None:
    with stack.client(role=None) as anonymous, pytest.raises(RemoteError) as caught:
        anonymous.list_runs()
    assert caught.value.code is grpc.StatusCode.UNAUTHENTICATED
    with stack.client("read") as reader:
        assert reader.list_runs() is not None
        with pytest.raises(RemoteError) as caught:
            reader.create_run([seed_source("square")], config=gp_config(8))
        assert caught.value.code is grpc.StatusCode.PERMISSION_DENIED
    plaintext = Credentials(None, stack.credentials().token)
    with (
        CoordinatorClient(stack.coordinator, credentials=plaintext) as plain,
        pytest.raises(BackendUnavailableError),
    ):
        plain.list_runs()


def test_a_short_evolution_through_the_published_port(stack: ComposeStack) -> None:
    with stack.client() as client:
        gp = client.create_run([seed_source("square")], name="gp", config=gp_config(96))
        # the tiny model writes noise; this run shows the model server's container in the loop
        loop = {"batch_size": 4, "max_evaluations": None, "max_seconds": 8, "max_barren_batches": 1000}
        config = {"mutation": {"operator": "llm", "sampling": {"max_new_tokens": 24}}, "loop": loop}
        llm = client.create_run([seed_source("radial")], name="llm", config=config)
        finish(client, gp.run_id)
        finish(client, llm.run_id)
        assert len(client.get_archive(gp.run_id)) > 1, "the archive did not grow beyond the seed"
    assert_nothing_lost(stack, gp.run_id, 96)
    gp_log, llm_log = stored(stack, gp.run_id), stored(stack, llm.run_id)
    assert gp_log["mutations"] > 0 and gp_log["operators"] == ["gp"]
    assert llm_log["mutations"] > 0 and llm_log["raw_outputs"] == llm_log["mutations"]
    assert set(llm_log["operators"]) <= {"paper", "directed", "crossover"}

    # the trainer's container reads the same store from the shared volume
    job = stack.python("coordinator", TRAINER_DATASET, gp.run_id)
    assert job["status"] == "SUCCEEDED", job
    assert job["metrics"]["selected"] > 0


TRAINER_DATASET = """
from services.client import TrainerClient
with TrainerClient("trainer:50054") as trainer:
    job = trainer.start_job(PAYLOAD, kind="dataset")
    final = list(trainer.watch_job(job.job_id))[-1]
print(json.dumps({"status": final.status, "message": final.message, "metrics": dict(final.metrics)}))
"""

EVALUATE_HERE = """
from services.client import EvaluatorFleet
with EvaluatorFleet(["localhost:50052"]) as fleet:
    results = fleet.evaluate(PAYLOAD)
print(json.dumps([[r.execution.value, r.message] for r in results]))
"""


# Inside a non-root container, programs run under the evaluator's uid, which PID 1 (docker's init) shares:
# its environment is readable there (the host's PID 1 is root's). So evaluators are given no secrets: see
# test_an_evaluator_container_is_locked_down.
SAME_UID_AS_PID_1 = {"read-proc-1-environ"}
# What an evaluator's environment may hold: the image's and the compose file's settings, none secret.
ENVIRONMENT = {"PATH", "HOSTNAME", "HOME", "LANG", "GPG_KEY", "PYTHON_VERSION", "PYTHON_SHA256",
               "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}  # fmt: skip


def test_hostile_programs_get_their_typed_outcomes_inside_an_evaluator(stack: ComposeStack) -> None:
    # programs relying on a dedicated uid are out: the container's non-root user cannot switch uid
    cases = [c for c in HOSTILE if not c.needs_uid and c.id not in SAME_UID_AS_PID_1]
    results = stack.python("evaluator", EVALUATE_HERE, [c.source for c in cases])
    wrong = {
        c.id: (status, message[:200])
        for c, (status, message) in zip(cases, results, strict=True)  # type: ignore[arg-type]
        if status not in {o.value for o in c.expected}
    }
    assert not wrong, wrong
    # and the replica still serves a well-formed program afterwards
    [[status, _]] = stack.python("evaluator", EVALUATE_HERE, [seed_source("square")])  # type: ignore[misc]
    assert status == "OK"


LOCKDOWN = """
import os, socket
lines = open("/proc/self/status").read().splitlines()
status = dict(line.split(":\\t", 1) for line in lines if ":\\t" in line)
pid_1_environ = open("/proc/1/environ", "rb").read()
pid_1_environment = [v.split(b"=")[0].decode() for v in pid_1_environ.split(b"\\0") if v]
def writable(path):
    try:
        with open(path, "w") as f:
            f.write("x")
    except OSError as e:
        return e.strerror
    os.unlink(path)
    return "written"
def connect(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as e:
        return type(e).__name__
    return "connected"
def resolves(name):
    try:
        socket.getaddrinfo(name, 80)
    except OSError:
        return False
    return True
print(json.dumps({
    "uid": os.getuid(), "euid": os.geteuid(),
    "caps": {k: int(status[k].strip(), 16) for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb")},
    "no_new_privs": status["NoNewPrivs"].strip(), "seccomp": status["Seccomp"].strip(),
    "root_fs": [writable("/probe"), writable("/home/elm/probe"), writable("/opt/elm/probe")],
    "tmp": writable("/tmp/probe"),
    "connects": {host: connect(host, port) for host, port in PAYLOAD["targets"]},
    "resolves": {name: resolves(name) for name in ("model-server", "trainer")},
    "pid_1_environment": pid_1_environment,
}))
"""


@pytest.fixture
def host_listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP listener on every interface of this machine, and whether anything connected to it."""
    server = socket.create_server(("0.0.0.0", 0))
    server.settimeout(0.2)
    connected: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, address = server.accept()
            except TimeoutError:
                continue
            connected.append(address[0])
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], connected
    stop.set()
    thread.join()
    server.close()


def host_addresses() -> list[str]:
    """This machine's IPv4 addresses, docker bridges' gateways included."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines() if " lo " not in line]


def test_an_evaluator_container_is_locked_down(stack: ComposeStack, host_listener) -> None:  # noqa: ANN001
    port, connected = host_listener
    # this machine on each of its addresses, and a documentation address (TEST-NET-1) that no packet to
    # which may leave the machine: the fleet network has no route out
    targets = [[address, port] for address in host_addresses()] + [["192.0.2.1", 80]]
    seen = stack.python("evaluator", LOCKDOWN, {"targets": targets})
    assert seen["uid"] == seen["euid"] == UID  # type: ignore[index]
    assert seen["caps"] == {"CapEff": 0, "CapPrm": 0, "CapBnd": 0, "CapAmb": 0}  # type: ignore[index]
    assert seen["no_new_privs"] == "1" and seen["seccomp"] == "2"  # type: ignore[index]
    assert seen["root_fs"] == ["Read-only file system"] * 3  # type: ignore[index]
    assert seen["tmp"] == "written"  # type: ignore[index]
    assert "connected" not in seen["connects"].values(), seen["connects"]  # type: ignore[index]
    assert not connected, f"an evaluator reached this machine from {connected}"
    assert seen["resolves"] == {"model-server": False, "trainer": False}  # type: ignore[index]
    unexpected = [k for k in seen["pid_1_environment"] if k not in ENVIRONMENT and not k.startswith("ELM_")]  # type: ignore[index]
    assert not unexpected, f"an evaluator's environment holds {unexpected}"

    container = stack.containers("evaluator")[0]
    config = stack.inspect(container)["HostConfig"]
    assert config["ReadonlyRootfs"] and config["CapDrop"] == ["ALL"] and config["Init"]
    assert config["PidsLimit"] > 0 and config["Memory"] > 0 and config["NanoCpus"] > 0
    assert "no-new-privileges:true" in config["SecurityOpt"]
    assert any(opt.startswith("seccomp=") and '"defaultAction"' in opt for opt in config["SecurityOpt"])
    assert not any("docker.sock" in m for m in config.get("Binds") or [])

    # its own certificate and key, nothing of another party's (no token, no coordinator key)
    held = sorted(stack.exec("evaluator", "find", "/certs", "-type", "f").split())
    assert held == ["/certs/ca.pem", "/certs/evaluator.key", "/certs/evaluator.pem"]

    doctor = stack.exec("evaluator", "elm", "sandbox", "--doctor")
    assert "seccomp" in doctor and "network_namespace" in doctor


DASHBOARD_REACHES = """
import socket
from services.client import CoordinatorClient
from services.common import Credentials
def resolves(name):
    try:
        socket.getaddrinfo(name, 80)
    except OSError:
        return False
    return True
with CoordinatorClient("coordinator:50051", credentials=Credentials.from_env()) as client:
    runs = [r.name for r in client.list_runs()]
names = ("evaluator", "model-server", "trainer")
print(json.dumps({"runs": runs, "resolves": {n: resolves(n) for n in names}}))
"""


def http_get(port: int, path: str, host: str | None = None) -> tuple[int, str]:
    """A GET to this machine's loopback (never through a proxy), and the status and body it got."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host} if host else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_the_dashboard_answers_on_loopback_and_is_locked_down(stack: ComposeStack) -> None:
    # optional: its profile starts it next to the running stack
    stack.compose("--profile", "dashboard", "up", "--detach", "--wait", "--wait-timeout", "300", "dashboard")
    assert http_get(stack.dashboard_port, "/healthz") == (200, "ok")
    # a page asked for under a name it was not given (DNS rebinding) is refused, although it binds 0.0.0.0
    status, _ = http_get(stack.dashboard_port, "/healthz", host="attacker.example")
    assert status >= 400

    [container] = stack.containers("dashboard")
    attrs = stack.inspect(container)
    config = attrs["HostConfig"]
    assert config["ReadonlyRootfs"] and config["CapDrop"] == ["ALL"] and config["Init"]
    assert "no-new-privileges:true" in config["SecurityOpt"] and not config["Privileged"]
    assert config["PortBindings"] == {
        "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(stack.dashboard_port)}]
    }
    assert attrs["Config"]["User"] == "elm" and attrs["State"]["Health"]["Status"] == "healthy"
    assert list(attrs["NetworkSettings"]["Networks"]) == [f"{stack.project}_dashboard"]
    # its own certificate and its own admin token, nothing of another party's
    held = sorted(stack.exec("dashboard", "find", "/certs", "-type", "f").split())
    assert held == ["/certs/admin.token", "/certs/ca.pem", "/certs/dashboard.key", "/certs/dashboard.pem"]
    # which open the coordinator's API, and only the coordinator is on its network
    seen = stack.python("dashboard", DASHBOARD_REACHES)
    assert isinstance(seen["runs"], list)  # type: ignore[index]
    assert seen["resolves"] == {"evaluator": False, "model-server": False, "trainer": False}  # type: ignore[index]


def test_a_killed_evaluator_is_restarted_and_the_run_loses_nothing(stack: ComposeStack) -> None:
    budget = 320
    killed, crashed = stack.containers("evaluator")[:2]
    with stack.client() as client:
        # `docker kill` mid-run: the run goes on with the other replica; compose brings the killed one back
        run = client.create_run([seed_source("square")], name="kill-evaluator", config=gp_config(budget))
        wait_for(client, run.run_id, 64)
        stack.kill(killed)
        finish(client, run.run_id)
        assert_nothing_lost(stack, run.run_id, budget)
        assert not stack.inspect(killed)["State"]["Running"]
        stack.up()
        stack.wait_running(killed)

        # a crash (the container's processes die, as on a segfault or the kernel's OOM killer): the restart
        # policy brings the replica back by itself
        restarts = stack.inspect(crashed)["RestartCount"]
        run = client.create_run([seed_source("square")], name="crash-evaluator", config=gp_config(budget))
        wait_for(client, run.run_id, 64)
        os.kill(stack.inspect(crashed)["State"]["Pid"], signal.SIGKILL)
        finish(client, run.run_id)
        assert_nothing_lost(stack, run.run_id, budget)
    stack.wait_running(crashed)
    assert stack.inspect(crashed)["RestartCount"] > restarts


def test_a_restarted_coordinator_resumes_the_run_from_its_volume(stack: ComposeStack) -> None:
    budget = 320
    with stack.client() as client:
        run = client.create_run([seed_source("square")], name="restart-coordinator", config=gp_config(budget))
        wait_for(client, run.run_id, 64)
    stack.compose("restart", "coordinator")
    stack.wait_running(stack.containers("coordinator")[0])
    with stack.client() as client:
        finish(client, run.run_id)
        assert client.get_run(run.run_id).evaluations == budget
    assert_nothing_lost(stack, run.run_id, budget)
