"""`elm run --evaluators docker:N`: evaluator containers started with the docker SDK, locked down as in
compose, used as the run's fleet, and removed at the end, on an error, and after a crash (at the next
start)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from typer.testing import CliRunner

from elm_core.run import STORE_FILE
from elm_core.sodarace import SimConfig, Terrain, Walker, seed_source, simulate
from elm_core.store import RunStatus, SQLiteStore
from services.cli.main import app
from services.client import DockerEvaluators, sweep
from services.client._docker_evaluators import FLEET_LABEL

from .compose_harness import require_docker

pytestmark = pytest.mark.containers


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    require_docker()
    with contextlib.closing(docker.from_env()) as engine:
        yield engine


def ours(client: docker.DockerClient, pid: int | None = None) -> list:
    owner = f"{os.uname().nodename}:{pid or os.getpid()}"
    return client.containers.list(all=True, filters={"label": f"{FLEET_LABEL}={owner}"})


def test_the_containers_are_locked_down_serve_the_run_s_world_and_are_removed(
    client: docker.DockerClient,
) -> None:
    with DockerEvaluators(2) as fleet:
        containers = ours(client)
        assert len(containers) == 2
        for container in containers:
            config = container.attrs["HostConfig"]
            assert config["ReadonlyRootfs"] and config["CapDrop"] == ["ALL"] and config["Init"]
            assert config["PidsLimit"] > 0 and config["Memory"] > 0 and config["NanoCpus"] > 0
            assert "no-new-privileges:true" in config["SecurityOpt"]
            assert any(o.startswith("seccomp=") and '"defaultAction"' in o for o in config["SecurityOpt"])
            [network] = container.attrs["NetworkSettings"]["Networks"]
            assert client.networks.get(network).attrs["Internal"]  # no route out
        tunnel = SimConfig(seconds=3.0), Terrain.named("tunnel")
        results = fleet.evaluate([seed_source("square"), seed_source("radial"), "x = 1\n"],
                                 sim_config=tunnel[0], terrain=tunnel[1])  # fmt: skip
        assert [r.status for r in results] == ["OK", "OK", "NO_ENTRY_POINT"]
        for result in results[:2]:
            assert result.walker is not None and result.fitness == simulate(result.walker, *tunnel).fitness
        assert sum(fleet.programs_by_replica().values()) == 3  # over both containers
    assert ours(client) == []
    assert not client.networks.list(filters={"label": f"{FLEET_LABEL}={os.uname().nodename}:{os.getpid()}"})


def test_elm_run_with_docker_evaluators_finishes_and_leaves_nothing(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--evaluators", "docker:2", "--operator", "gp", "--budget", "16",
                                      "--batch-size", "4", "--out", str(run_dir)])  # fmt: skip
    assert result.exit_code == 0, result.output
    with SQLiteStore(run_dir / STORE_FILE) as store:
        (run,) = store.list_runs()
        walked = [i for i in store.individuals(run.run_id) if i.fitness is not None]
    assert run.status is RunStatus.FINISHED and run.evaluations == 16 and walked
    assert (
        walked[0].fitness
        == simulate(Walker.from_dict(json.loads(walked[0].walker_json)), SimConfig()).fitness
    )
    assert json.loads((run_dir / "config.json").read_text())["embedded"]["evaluators"] == "docker:2"
    assert ours(client) == []


def test_containers_of_a_killed_run_are_swept_at_the_next_start(client: docker.DockerClient) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "from services.client import DockerEvaluators\n"
         "fleet = DockerEvaluators(1).__enter__()\nprint('up', flush=True)\nimport time; time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert "up" in iter(lambda: holder.stdout.readline().strip(), "")  # its log lines come first
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # no chance to clean up
        holder.wait()
    assert len(ours(client, holder.pid)) == 1
    assert sweep(client) >= 1
    assert ours(client, holder.pid) == []


def test_no_engine_or_no_image_is_a_clear_error(client: docker.DockerClient) -> None:
    from elm_core.errors import ConfigError

    with (
        pytest.raises(ConfigError, match="docker compose build evaluator"),
        DockerEvaluators(1, image="elm-nope:none"),
    ):
        pass
    assert ours(client) == []
