"""One model in memory: loaded by name, metered, and swapped atomically between batches by ReloadModel."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import structlog

from elm_core.errors import BackendUnavailableError, InvalidRequestError
from elm_core.models import CodeGenerator, Generation, Prompt, SamplingConfig, choose_backend, default_style
from elm_core.mutation import LLMMutator, MutationConfig, PromptStyle
from services.common.metrics import GENERATED_TOKENS, MODEL_BATCH, TOKENS_PER_SECOND
from services.model_server.batcher import BatchKey, Served, Work

log = structlog.get_logger()

Loader = Callable[[str, str], CodeGenerator]  # (model name or directory, backend) -> a loaded generator
_OPENAI_PREFIX = "openai:"


class MeteredGenerator:
    """A generator whose calls update the model metrics and report the tokens they generated."""

    def __init__(self, inner: CodeGenerator, on_generated: Callable[[int], None]) -> None:
        self.inner, self.name, self._on_generated = inner, inner.name, on_generated

    def generate(
        self, prompts: Sequence[Prompt], sampling: SamplingConfig, *, seed: int | None = None
    ) -> list[Generation]:
        started = time.perf_counter()
        generations = self.inner.generate(prompts, sampling, seed=seed)
        tokens = sum(generation.completion_tokens for generation in generations)
        MODEL_BATCH.observe(len(prompts))
        GENERATED_TOKENS.inc(tokens)
        TOKENS_PER_SECOND.set(tokens / max(time.perf_counter() - started, 1e-9))
        self._on_generated(tokens)
        return generations

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


@dataclass(frozen=True)
class LoadedModel:
    generator: MeteredGenerator
    name: str  # as asked for
    backend: str  # hf, llamacpp or openai
    default_style: PromptStyle
    version: int
    load_seconds: float


class ModelSlot:
    """Holds the current model. Batches run on the model current when they start; a reload loads the next
    model while batches go on, then swaps it in between two batches and closes the old one."""

    def __init__(self, loader: Loader, name: str, backend: str) -> None:
        self._loader = loader
        self._reloading = threading.Lock()  # one reload at a time
        self._in_use = threading.Lock()  # held by a batch while it runs, and by the swap
        self.generated_tokens = 0  # over every model this slot has held; written by the batch worker only
        self._current = self._load(name, backend, version=1)

    @property
    def current(self) -> LoadedModel:
        return self._current

    def reload(self, name: str, backend: str) -> LoadedModel:
        """Loads `name` and swaps it in; if it does not load, the current model stays and the error rises."""
        with self._reloading:
            loaded = self._load(name, backend, version=self._current.version + 1)
            with self._in_use:
                old, self._current = self._current, loaded
            old.generator.close()
        log.info("model reloaded", model=name, backend=loaded.backend, version=loaded.version,
                 load_s=round(loaded.load_seconds, 2))  # fmt: skip
        return loaded

    def mutate(self, key: BatchKey, works: list[Work], sampling: SamplingConfig) -> list[Served]:
        """Runs a batch of calls as one mutate over all their parents (each repeated n times)."""
        requests = [request for work in works for request in work.requests for _ in range(work.n)]
        sampling = dataclasses.replace(
            sampling, temperature=key.temperature, max_new_tokens=key.max_new_tokens
        )
        config = MutationConfig(style=key.style, sampling=sampling)
        rng = np.random.default_rng([work.seed for work in works])  # one call alone is reproducible
        with self._in_use:
            model = self._current
            children = LLMMutator(model.generator, config).mutate(requests, rng)
        served, start = [], 0
        for work in works:
            served.append(Served(children[start : start + work.size], model.name, model.version))
            start += work.size
        return served

    def close(self) -> None:
        with self._in_use:
            self._current.generator.close()

    def _load(self, name: str, backend: str, *, version: int) -> LoadedModel:
        if not name:
            raise InvalidRequestError("give a model name or a checkpoint directory")
        resolved = "openai" if name.startswith(_OPENAI_PREFIX) else choose_backend(name, backend)
        started = time.perf_counter()
        try:
            generator = self._loader(name, backend)
        except (OSError, RuntimeError) as e:
            raise BackendUnavailableError(f"could not load the model {name!r}: {e}") from e
        return LoadedModel(
            generator=MeteredGenerator(generator, self._count),
            name=name,
            backend=resolved,
            default_style=PromptStyle(default_style(name)),
            version=version,
            load_seconds=time.perf_counter() - started,
        )

    def _count(self, tokens: int) -> None:
        self.generated_tokens += tokens
