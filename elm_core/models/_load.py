"""`load_generator(NAME)`: one function that turns any accepted model name into a ready CodeGenerator."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from elm_core.errors import ConfigError, NotFoundError
from elm_core.models._hf import HFConfig, HFGenerator
from elm_core.models._llamacpp import LlamaCppConfig, LlamaCppGenerator
from elm_core.models._openai import OpenAIConfig, OpenAIGenerator
from elm_core.models._registry import (
    DEFAULT_MODEL,
    GGUF_FILE,
    KNOWN_MODELS,
    TINY,
    cache_dir,
    cached_path,
    is_cached,
)
from elm_core.models._tiny import build_tiny_model
from elm_core.models._types import CodeGenerator

MODEL_ENV = "ELM_MODEL"
OPENAI_PREFIX = "openai:"
OPENAI_BASE_URL_ENV = "OPENAI_BASE_URL"
BACKENDS = ("auto", "hf", "llamacpp")


def model_name(explicit: str | None = None) -> str:
    """The model to use: the explicit name, else $ELM_MODEL, else the default."""
    return explicit or os.environ.get(MODEL_ENV) or DEFAULT_MODEL


def default_style(name: str) -> str:
    spec = KNOWN_MODELS.get(name)
    return spec.style if spec else "rewrite"


def available(name: str) -> bool:
    """Whether `name` can be loaded without fetching anything."""
    if name == TINY or name.startswith(OPENAI_PREFIX) or Path(name).exists():
        return True
    return is_cached(name)


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def gguf_path(name: str) -> Path | None:
    """The GGUF file a model name has: a .gguf path, or the one a registry model keeps in the cache."""
    if name in KNOWN_MODELS and is_cached(name):
        path = cached_path(name) / GGUF_FILE
        return path if path.is_file() else None
    path = Path(name).expanduser()
    try:
        return path if path.is_file() and path.suffix == ".gguf" else None
    except OSError:  # a name no file can have (too long, ...)
        return None


def choose_backend(name: str, backend: str = "auto") -> str:
    """`auto`: llama.cpp on CPU when the model has a GGUF (several times faster there), else transformers."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    if gguf_path(name) is None or importlib.util.find_spec("xllamacpp") is None:
        return "hf"
    import torch

    return "hf" if torch.cuda.is_available() else "llamacpp"


def tiny_model() -> Path:
    """The tiny model's directory in the cache, built there on first use (about a second)."""
    directory = cache_dir() / TINY
    if not (directory / "config.json").is_file():
        scratch = build_tiny_model(Path(tempfile.mkdtemp(dir=_made(cache_dir()), prefix=".tiny-")))
        shutil.rmtree(directory, ignore_errors=True)
        scratch.rename(directory)  # atomic: a concurrent reader never sees half a model
    return directory


def load_generator(
    name: str, config: HFConfig | None = None, *, backend: str = "auto", parallel: int = 8
) -> CodeGenerator:
    """Loads a registry name, `tiny`, a local directory or GGUF file, or a hub id with the hf backend (or a
    GGUF with llama.cpp, see `choose_backend`); `openai:MODEL` talks to the OpenAI-compatible server at
    $OPENAI_BASE_URL (a vLLM or llama.cpp server)."""
    if not name.startswith(OPENAI_PREFIX) and choose_backend(name, backend) == "llamacpp":
        gguf = gguf_path(name)
        if gguf is None:
            raise ConfigError(f"the llamacpp backend needs a GGUF model; {name!r} has none: use backend hf")
        return LlamaCppGenerator(gguf, name=name, config=LlamaCppConfig(parallel=parallel))
    if name.startswith(OPENAI_PREFIX):
        base_url = os.environ.get(OPENAI_BASE_URL_ENV)
        if not base_url:
            raise ConfigError(
                f"{name}: set {OPENAI_BASE_URL_ENV} to the server's URL, e.g. http://127.0.0.1:8000/v1"
            )
        return OpenAIGenerator(OpenAIConfig(base_url=base_url, model=name.removeprefix(OPENAI_PREFIX)))
    if name == TINY:
        return HFGenerator(tiny_model(), name=TINY, config=config)
    if name in KNOWN_MODELS:
        return HFGenerator(cached_path(name), name=name, config=config)
    path = Path(name).expanduser()
    try:
        is_gguf, directory, exists = path.is_file() and path.suffix == ".gguf", path.is_dir(), path.exists()
    except OSError:  # a name no file can have (too long, ...)
        is_gguf = directory = exists = False
    if is_gguf:
        return HFGenerator(path.parent, name=name, gguf_file=path.name, config=config)
    if directory:
        if not (path / "config.json").is_file():
            raise NotFoundError(f"{path} holds no model: a model directory has a config.json")
        return HFGenerator(path, name=name, config=config)
    if "/" in name and not exists:
        return HFGenerator(name, name=name, config=config)  # a hub id
    raise NotFoundError(
        f"unknown model {name[:200]!r}: give one of {', '.join([TINY, *KNOWN_MODELS])}, a model directory, "
        "a .gguf file, or a hub id (owner/name)"
    )
