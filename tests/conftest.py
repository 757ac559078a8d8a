"""Shared fixtures: the four seed walkers, built once through the sandbox as users build them."""

from __future__ import annotations

import pytest

from elm_core.sandbox import Sandbox
from elm_core.sodarace import SEED_NAMES, Walker, seed_source


@pytest.fixture(scope="session")
def seed_walkers() -> dict[str, Walker]:
    walkers = {}
    with Sandbox() as sandbox:
        for name in SEED_NAMES:
            result = sandbox.run(seed_source(name))
            assert result.ok, f"{name}: {result.status} {result.message}"
            walkers[name] = result.walker
    return walkers
