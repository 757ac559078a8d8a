"""The dashboard of a real coordinator on loopback: what it shows comes over the coordinator's API, and its
pause / resume / stop controls act on the run (with an admin token; a read token is refused)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import fetch

from elm_core.sodarace import seed_source
from services.client import CoordinatorClient
from services.common import Credentials, TokenAuthority, token_digest
from services.coordinator import CoordinatorServerConfig, serve
from services.dashboard import CoordinatorSource, DashboardThread, create_app

TOKENS = {"admin": "admin-token", "read": "read-token"}
CONTROL = {"X-ELM-Dashboard": "1"}
LONG_GP = {
    "mutation": {"operator": "gp"},
    "evaluation": {"sim": {"seconds": 2.0}},
    "loop": {"batch_size": 4, "pipeline_depth": 1, "max_evaluations": 100_000},
}


@dataclass(frozen=True)
class Served:
    admin_url: str  # a dashboard holding the admin token
    read_url: str  # one holding a read token
    coordinator: CoordinatorClient
    run_id: str


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tokens = TokenAuthority({token_digest(t): (role, role) for role, t in TOKENS.items()})
    config = CoordinatorServerConfig(data_dir=tmp_path_factory.mktemp("data"), local_workers=2, tokens=tokens)
    running = serve(config, port=0, host="127.0.0.1")
    clients = {
        role: CoordinatorClient(running.address, credentials=Credentials(None, t))
        for role, t in TOKENS.items()
    }
    try:
        run = clients["admin"].create_run([seed_source("square")], name="served", config=LONG_GP)
        apps = {role: create_app(CoordinatorSource(c), source_name="coordinator", poll_s=0.05)
                for role, c in clients.items()}  # fmt: skip
        with DashboardThread(apps["admin"]) as admin, DashboardThread(apps["read"]) as read:
            yield Served(admin.url, read.url, clients["admin"], run.run_id)
    finally:
        clients["admin"].stop_run(run.run_id)
        for c in clients.values():
            c.close()
        running.stop(grace_s=5)


def wait_for(condition, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_dashboard_shows_the_coordinator_s_run(served: Served) -> None:
    wait_for(lambda: served.coordinator.get_run(served.run_id).batches >= 3)
    served.coordinator.stop_run(served.run_id)
    wait_for(lambda: served.coordinator.get_run(served.run_id).status == "STOPPED")
    run = served.coordinator.get_run(served.run_id)
    state = fetch(f"{served.read_url}/api/runs/{served.run_id}").json()
    assert state["run"]["controllable"] is True and state["run"]["status"] == "STOPPED"
    assert [p["batch"] for p in state["points"]] == list(range(run.batches))
    archive = served.coordinator.get_archive(served.run_id)
    assert sorted(e[1] for e in state["archive"]["elites"]) == sorted(e.individual_id for e in archive)
    assert state["operators"][0]["operator"] == "gp"
    assert state["operators"][0]["mutations"] == run.operators[0].mutations > 0

    child = next(e[1] for e in state["archive"]["elites"] if e[1] > 0)
    page = fetch(f"{served.read_url}/runs/{served.run_id}/individuals/{child}").text
    assert "The mutation that made it" in page and "<td>gp</td>" in page
    assert "mutations from the seed to this individual" in page


def test_pause_resume_and_stop_act_on_the_run(served: Served) -> None:
    url, run_id = served.admin_url, served.run_id
    wait_for(lambda: served.coordinator.get_run(run_id).status == "RUNNING")

    paused = fetch(f"{url}/api/runs/{run_id}/pause", method="POST", headers=CONTROL)
    assert paused.status == 200, paused.text
    wait_for(lambda: served.coordinator.get_run(run_id).status == "PAUSED")
    batches = served.coordinator.get_run(run_id).batches
    time.sleep(0.5)
    assert served.coordinator.get_run(run_id).batches == batches  # no batch while paused

    assert fetch(f"{url}/api/runs/{run_id}/resume", method="POST", headers=CONTROL).status == 200
    wait_for(lambda: served.coordinator.get_run(run_id).batches > batches)

    assert fetch(f"{url}/api/runs/{run_id}/stop", method="POST", headers=CONTROL).status == 200
    wait_for(lambda: served.coordinator.get_run(run_id).status == "STOPPED")


def test_a_read_token_cannot_control_runs(served: Served) -> None:
    refused = fetch(f"{served.read_url}/api/runs/{served.run_id}/pause", method="POST", headers=CONTROL)
    assert refused.status == 403 and "error" in refused.json()
    assert served.coordinator.get_run(served.run_id).status in ("CREATED", "RUNNING")
