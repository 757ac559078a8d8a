"""Shared fixtures: the four seed walkers, built once through the sandbox as users build them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from elm_core.models import DEFAULT_MODEL, HFConfig, HFGenerator, load_generator, pull
from elm_core.qd import LoopConfig
from elm_core.run import STORE_FILE, create_run, execute_run
from elm_core.sandbox import Sandbox
from elm_core.sodarace import SEED_NAMES, SimConfig, Walker, seed_source
from elm_core.spec import EmbeddedSpec, EvaluationSpec, MutationSpec, RunSpec
from elm_core.store import SQLiteStore
from services.common import RunningServer
from services.trainer import TrainerServerConfig
from services.trainer import serve as serve_trainer


@pytest.fixture(scope="session")
def seed_walkers() -> dict[str, Walker]:
    walkers = {}
    with Sandbox() as sandbox:
        for name in SEED_NAMES:
            result = sandbox.run(seed_source(name))
            assert result.ok, f"{name}: {result.status} {result.message}"
            walkers[name] = result.walker
    return walkers


_USER_MODEL_CACHE = os.environ.get("ELM_MODEL_CACHE")  # read before any fixture points it elsewhere


@pytest.fixture(scope="session")
def real_model_dir() -> Path:
    """The real offline code model, pulled once into the user's cache (as `elm model pull` would)."""
    with pytest.MonkeyPatch.context() as patch:
        if _USER_MODEL_CACHE:
            patch.setenv("ELM_MODEL_CACHE", _USER_MODEL_CACHE)
        else:
            patch.delenv("ELM_MODEL_CACHE", raising=False)
        return pull(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private model cache for the session, so tests never write into the user's cache."""
    path = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ELM_MODEL_CACHE", str(path))
        yield path


@pytest.fixture(scope="session")
def tiny_generator(model_cache: Path) -> HFGenerator:
    """The `tiny` model: a randomly initialised Qwen2-family transformer, built in seconds."""
    return load_generator("tiny", HFConfig(threads=1))


@pytest.fixture(scope="session")
def gp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A short real GP run (32 evaluations from Square and Radial), made once: its store file and run id.
    Tests only read it; a test that writes works on a copy."""
    run_dir = tmp_path_factory.mktemp("gp") / "run"
    loop = LoopConfig(batch_size=6, pipeline_depth=1, max_evaluations=32)
    spec = RunSpec(
        mutation=MutationSpec(operator="gp"),
        seeds=("square", "radial"),
        loop=loop,
        evaluation=EvaluationSpec(sim=SimConfig(seconds=4.0)),
        embedded=EmbeddedSpec(workers=2),
    )
    create_run(run_dir, spec)
    execute_run(run_dir)
    with SQLiteStore(run_dir / STORE_FILE) as store:
        return run_dir / STORE_FILE, store.list_runs()[0].run_id


@pytest.fixture(scope="session")
def gp_store(gp_run: tuple[Path, str]) -> Iterator[tuple[SQLiteStore, str]]:
    with SQLiteStore(gp_run[0]) as store:
        yield store, gp_run[1]


@pytest.fixture
def gp_store_copy(gp_run: tuple[Path, str], tmp_path: Path) -> Path:
    """This test's own copy of the GP run's store (the coordinator's file, as the trainer shares it)."""
    return Path(shutil.copy(gp_run[0], tmp_path / "coordinator.sqlite"))


@pytest.fixture
def trainer_server(gp_store_copy: Path, model_cache: Path, tmp_path: Path) -> Iterator[RunningServer]:
    """A trainer service on loopback over `gp_store_copy`, with checkpoints in this test's directory."""
    config = TrainerServerConfig(
        store_path=gp_store_copy, checkpoints_dir=tmp_path / "checkpoints", poll_s=0.05
    )
    running = serve_trainer(config, port=0, host="127.0.0.1")
    yield running
    running.stop(grace_s=5)
