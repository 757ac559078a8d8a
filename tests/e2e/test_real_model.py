"""The real offline code model (Qwen2.5-Coder-0.5B-Instruct) mutating the Square seed into programs that run.

Pulls the model into the user's cache on first use (verified, about 480 MB). Skip with `-m "not real_model"`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from elm_core.models import SamplingConfig
from elm_core.models._registry import GGUF_FILE
from elm_core.mutation import build_mutator
from elm_core.sandbox import Outcome, Sandbox
from elm_core.sodarace import seed_source

pytestmark = pytest.mark.real_model


@pytest.mark.parametrize("backend", ["llamacpp", "hf"])
def test_qwen_mutates_square_into_programs_that_run_in_the_sandbox(
    backend: str, real_model_dir: Path
) -> None:
    model = str(real_model_dir / GGUF_FILE if backend == "llamacpp" else real_model_dir)
    mutator = build_mutator("llm", model=model, style="rewrite", backend=backend,
                            sampling=SamplingConfig(max_new_tokens=384, temperature=0.7))  # fmt: skip
    parent = seed_source("square")
    children = mutator.mutate([parent] * 6, np.random.default_rng(0))
    assert len(children) == 6
    programs = [c.source for c in children if c.ok and c.source is not None]
    assert programs, [c.outcome for c in children]
    with Sandbox() as sandbox:
        results = [sandbox.run(p) for p in programs]
    ran = [r for r in results if r.status is Outcome.OK]
    assert ran, [(r.status, r.message) for r in results]
    assert all(r.walker is not None and r.walker.joints for r in ran)
