"""Model backends behind one small port, `CodeGenerator`: prompts in, generations out.

`hf` (transformers on torch, CPU or GPU), `llamacpp` (a GGUF model in-process, fast on CPUs) and
`openai` (any OpenAI-compatible server).
`load_generator(NAME)` resolves a model name: a registry name (`elm model list`), a hub id, a local
directory or GGUF file, `tiny`, or `openai:MODEL`.
torch and transformers are imported only when a model is loaded.
"""

from elm_core.models._hf import HFConfig, HFGenerator, prompt_text
from elm_core.models._llamacpp import LlamaCppConfig, LlamaCppGenerator
from elm_core.models._load import (
    BACKENDS,
    MODEL_ENV,
    available,
    choose_backend,
    default_style,
    gguf_path,
    load_generator,
    model_name,
    tiny_model,
)
from elm_core.models._openai import OpenAIConfig, OpenAIGenerator
from elm_core.models._registry import (
    DEFAULT_MODEL,
    KNOWN_MODELS,
    TINY,
    CachedModel,
    ModelSpec,
    cache_dir,
    cached_models,
    cached_path,
    pull,
)
from elm_core.models._types import CodeGenerator, Generation, Prompt, SamplingConfig

__all__ = [
    "BACKENDS",
    "LlamaCppConfig",
    "LlamaCppGenerator",
    "choose_backend",
    "gguf_path",
    "DEFAULT_MODEL",
    "KNOWN_MODELS",
    "MODEL_ENV",
    "TINY",
    "tiny_model",
    "CachedModel",
    "CodeGenerator",
    "Generation",
    "HFConfig",
    "HFGenerator",
    "ModelSpec",
    "OpenAIConfig",
    "OpenAIGenerator",
    "Prompt",
    "SamplingConfig",
    "available",
    "cache_dir",
    "cached_models",
    "cached_path",
    "default_style",
    "load_generator",
    "model_name",
    "prompt_text",
    "pull",
]
