"""The llama.cpp backend: a GGUF model run in-process by xllamacpp's server, with continuous batching.

Requests go straight into the server's OpenAI-style handlers, not over HTTP. (xllamacpp still starts an HTTP
listener on 127.0.0.1 at a random port; it is locked with a random API key nobody is told.) The prompts of one
`generate` call are submitted together, so llama.cpp decodes up to `parallel` of them in one batch.
xllamacpp is imported when a model is loaded, so the rest of elm_core works without it.
"""

from __future__ import annotations

import os
import secrets
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from elm_core.errors import BackendUnavailableError, ConfigError, StateError
from elm_core.models._types import Generation, Prompt, SamplingConfig

GGUF_MAGIC = b"GGUF"
_SEED_SPACE = 0xFFFFFFFF  # llama.cpp seeds are uint32, and 0xFFFFFFFF itself means "pick one at random"
_SILENT = -1  # llama.cpp log verbosity below every level: nothing reaches the terminal
SPECULATION = ("none", "ngram-mod", "ngram-simple")


@dataclass(frozen=True, kw_only=True)
class LlamaCppConfig:
    threads: int | None = None  # CPU threads for prompt processing and decoding; None = the usable cores
    parallel: int = 8  # sequences decoded together (llama.cpp slots); also the requests kept in flight
    context_per_sequence: int = 2048  # tokens per sequence, prompt plus completion; n_ctx = parallel * this
    # Self-speculative decoding from n-grams of the prompt and output (no draft model): "ngram-mod" or
    # "ngram-simple". A rewrite mostly copies its parent, so drafts are often right: 2.7x faster decoding
    # with one sequence here, but no faster with 8 in a batch on 2 CPU cores (docs/benchmarks.md), hence off.
    speculation: str = "none"
    draft_tokens: int = 16  # the most tokens one speculative step drafts

    def __post_init__(self) -> None:
        if self.speculation not in SPECULATION:
            raise ConfigError(f"speculation must be one of {SPECULATION}, got {self.speculation}")
        if self.draft_tokens < 1:
            raise ConfigError(f"draft_tokens must be >= 1, got {self.draft_tokens}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1 or None, got {self.threads}")
        if self.parallel < 1:
            raise ConfigError(f"parallel must be >= 1, got {self.parallel}")
        if self.context_per_sequence < 64:
            raise ConfigError(f"context_per_sequence must be >= 64 tokens, got {self.context_per_sequence}")

    @property
    def n_threads(self) -> int:
        return self.threads or _usable_cores()


class LlamaCppGenerator:
    """A GGUF model served in-process by llama.cpp. Chat prompts use the chat template stored in the GGUF."""

    def __init__(self, path: str | Path, *, name: str = "", config: LlamaCppConfig | None = None) -> None:
        self.config = config or LlamaCppConfig()
        self.path = Path(path)
        self.name = name or self.path.name
        started = time.perf_counter()
        self._server: Any = _start_server(self.path, self.config)
        self.load_seconds = time.perf_counter() - started

    def generate(
        self, prompts: Sequence[Prompt], sampling: SamplingConfig, *, seed: int | None = None
    ) -> list[Generation]:
        server = self._running()
        requests = [_request(p, sampling, None if seed is None else seed + i) for i, p in enumerate(prompts)]
        if not requests:
            return []
        with ThreadPoolExecutor(min(self.config.parallel, len(requests))) as pool:
            responses = list(pool.map(lambda request: _call(server, request), requests))
        return [_generation(response, sampling) for response in responses]

    def close(self) -> None:
        """Free the model and its context; later `generate` calls raise StateError."""
        server, self._server = self._server, None
        del server

    def __enter__(self) -> LlamaCppGenerator:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:  # fmt: skip
        self.close()

    def _running(self) -> Any:
        if self._server is None:
            raise StateError(f"the llama.cpp generator {self.name!r} is closed")
        return self._server


def _usable_cores() -> int:
    """os.cpu_count(), narrowed to the cores this process may run on (containers often pin fewer)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _start_server(path: Path, config: LlamaCppConfig) -> Any:
    try:
        import xllamacpp
    except ImportError as e:
        raise BackendUnavailableError(
            f"the llama.cpp backend needs the xllamacpp package ({e}): `pip install xllamacpp`"
        ) from e
    _check_gguf(path)
    try:
        server = xllamacpp.Server(_params(xllamacpp, path, config))
    except RuntimeError as e:  # xllamacpp says only "Failed to init server"; the logs that say why are off
        raise BackendUnavailableError(f"llama.cpp could not load the GGUF model at {path}: {e}") from e
    _wait_until_listening(server)
    return server


def _wait_until_listening(server: Any, timeout_s: float = 5.0) -> None:
    """Wait for one answer from the server's HTTP listener: freeing a server whose listener has not started
    accepting yet can hang forever (seen in about 1 of 6 loads closed at once). /health needs no API key."""
    url = f"{server.listening_address}/health"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    deadline = time.monotonic() + timeout_s
    while url.startswith("http://127.0.0.1:") and time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=1.0):
                return
        except OSError:  # not accepting yet; past the deadline, closing soon after loading may hang
            time.sleep(0.01)


def _check_gguf(path: Path) -> None:
    if not path.is_file():
        raise BackendUnavailableError(f"no GGUF model file at {path}")
    with path.open("rb") as file:
        if file.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
            raise BackendUnavailableError(f"{path} is not a GGUF file (no {GGUF_MAGIC!r} header)")


def _params(xllamacpp: Any, path: Path, config: LlamaCppConfig) -> Any:
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_parallel = config.parallel
    params.n_ctx = config.parallel * config.context_per_sequence
    params.cpuparams.n_threads = config.n_threads
    params.cpuparams_batch.n_threads = config.n_threads
    params.warmup = False
    params.verbosity = _SILENT
    params.api_keys = [secrets.token_urlsafe(32)]  # in-process calls need no key; the HTTP listener does
    if config.speculation != "none":
        kind = "COMMON_SPECULATIVE_TYPE_" + config.speculation.upper().replace("-", "_")
        params.speculative.types = [getattr(xllamacpp.common_speculative_type, kind)]
        params.speculative.draft.n_max = config.draft_tokens
        params.speculative.draft.n_min = 0
    return params


def _request(prompt: Prompt, sampling: SamplingConfig, seed: int | None) -> dict[str, Any]:
    """An OpenAI-style request; top_k and min_p are off so that temperature and top_p alone shape sampling."""
    request: dict[str, Any] = {
        "max_tokens": sampling.max_new_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": 0,
        "min_p": 0.0,
    }
    if any(sampling.stop):
        request["stop"] = [stop for stop in sampling.stop if stop]
    if seed is not None:
        request["seed"] = seed % _SEED_SPACE
    if prompt.messages is not None:
        request["messages"] = [{"role": role, "content": content} for role, content in prompt.messages]
    else:
        request["prompt"] = prompt.text
    return request


def _call(server: Any, request: dict[str, Any]) -> dict[str, Any]:
    handle = server.handle_chat_completions if "messages" in request else server.handle_completions
    try:
        response = handle(request)
    except (ValueError, RuntimeError) as e:  # xllamacpp checks some fields itself and raises
        raise BackendUnavailableError(f"llama.cpp rejected the request: {e}") from e
    if not isinstance(response, dict) or "error" in response:
        error = response.get("error", {}) if isinstance(response, dict) else {"message": repr(response)}
        raise BackendUnavailableError(
            f"llama.cpp rejected the request ({error.get('type', 'error')}): {error.get('message', error)}"
        )
    return response


def _generation(response: dict[str, Any], sampling: SamplingConfig) -> Generation:
    choice, usage = response["choices"][0], response["usage"]
    text = choice["message"]["content"] if "message" in choice else choice["text"]
    finish = "length" if choice["finish_reason"] == "length" else "stop"
    text, cut = _cut_at_stop(text or "", sampling.stop)
    return Generation(text=text, finish_reason="stop" if cut else finish,
                      prompt_tokens=int(usage["prompt_tokens"]),
                      completion_tokens=int(usage["completion_tokens"]))  # fmt: skip


def _cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """The text before the earliest stop sequence (llama.cpp cuts too; this is the guarantee)."""
    cuts = [i for i in (text.find(stop) for stop in stops if stop) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)
