"""docker-compose.yml as compose reads it (`docker compose config`): what is published where, and each
service's lockdown, the optional dashboard's in particular. Needs only the compose plugin, no engine and no
images, so it runs wherever `docker compose version` does.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess

import pytest

from services.common import PARTIES

from .compose_harness import REQUIRE_ENV, ROOT

DASHBOARD_PORT = 18080  # any port: checks that ELM_DASHBOARD_PORT is the one published


@functools.cache
def config(*profiles: str) -> dict:
    """The compose model with these profiles on; the environment's own ELM_* settings left out."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True,
                                        timeout=60).returncode != 0:  # fmt: skip
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but `docker compose` is not usable")
        pytest.skip("no `docker compose` (deploy/scripts/bootstrap.sh installs it)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELM_", "COMPOSE_"))}
    env["ELM_DASHBOARD_PORT"] = str(DASHBOARD_PORT)
    flags = [f for p in profiles for f in ("--profile", p)]
    command = [docker, "compose", "--project-name", "elm-config", *flags, "config", "--format", "json"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def dashboard() -> dict:
    return config("dashboard")["services"]["dashboard"]


def test_the_dashboard_is_optional_behind_its_profile() -> None:
    assert "dashboard" not in config()["services"]
    assert "dashboard" in config("dashboard")["services"]
    assert dashboard()["profiles"] == ["dashboard"]
    # the rest of the stack is the same with the profile on
    without, with_it = config()["services"], config("dashboard")["services"]
    assert {name: s for name, s in with_it.items() if name != "dashboard"} == without


def test_every_published_port_is_on_loopback_only() -> None:
    published = {}
    for name, service in config("dashboard")["services"].items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", (name, port)
            published[name] = (int(port["published"]), port["target"], port["protocol"])
    assert published == {"coordinator": (50051, 50051, "tcp"), "dashboard": (DASHBOARD_PORT, 8080, "tcp")}


def test_the_dashboard_is_locked_down_like_the_other_services() -> None:
    d = dashboard()
    assert d["read_only"] is True and d["cap_drop"] == ["ALL"] and d["init"] is True
    assert "no-new-privileges:true" in d["security_opt"]
    assert not d.get("privileged") and not d.get("cap_add") and "user" not in d  # the image's user, uid 10001
    assert d["pids_limit"] > 0 and int(d["mem_limit"]) > 0
    assert d["tmpfs"] == ["/tmp:size=16m,mode=1777"]
    assert d["restart"] == "always"
    # the coordinator's image: the same dependencies; never pulled from a registry
    assert d["image"] == config("dashboard")["services"]["coordinator"]["image"]
    assert d["pull_policy"] == "never"


def test_the_dashboard_serves_on_all_of_its_containers_interfaces_and_is_probed_on_healthz() -> None:
    d = dashboard()
    assert d["command"] == ["dashboard", "--coordinator", "coordinator:50051", "--host", "0.0.0.0",
                            "--port", "8080"]  # fmt: skip
    test = d["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1:5] == ["python3", "-m", "services.healthcheck", "--http"]
    assert test[5] == "http://127.0.0.1:8080/healthz"
    assert d["depends_on"]["coordinator"]["condition"] == "service_healthy"
    assert d["depends_on"]["certs"]["condition"] == "service_completed_successfully"


def test_the_dashboard_holds_its_own_certificate_and_token_only() -> None:
    d = dashboard()
    env = d["environment"]
    assert env["ELM_TLS_NAME"] == "dashboard" and env["ELM_TLS_DIR"] == "/certs"
    assert env["ELM_TOKEN_FILE"] == "/certs/admin.token" and "ELM_TOKEN" not in env
    assert [(v["type"], v["source"], v["target"], v.get("read_only")) for v in d["volumes"]] == [
        ("volume", "certs-dashboard", "/certs", True)
    ]


def test_the_dashboard_shares_a_network_with_the_coordinator_alone() -> None:
    services = config("dashboard")["services"]
    networks = set(dashboard()["networks"])
    assert networks, "no network"
    for network in networks:
        members = {name for name, s in services.items() if network in s.get("networks", {})}
        assert members == {"dashboard", "coordinator"}, (network, members)


def test_the_certs_service_writes_a_volume_for_every_party() -> None:
    """`elm certs` writes one directory per party (services.common.PARTIES); each must be a volume of its own,
    and a directory of the image's user in the image (a new volume takes its owner from there)."""
    certs = config()["services"]["certs"]
    mounted = {v["target"]: v["source"] for v in certs["volumes"]}
    assert mounted == {f"/certs/{party}": f"certs-{party}" for party in PARTIES}
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    made = set(re.findall(r"/certs/([a-z-]+)", dockerfile))
    assert set(PARTIES) <= made, f"the Dockerfile makes no /certs/ directory for {set(PARTIES) - made}"
    assert "dashboard" in PARTIES
