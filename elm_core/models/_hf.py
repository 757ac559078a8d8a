"""The Hugging Face transformers backend: batched sampling on CPU or GPU.

torch and transformers are imported when a model is loaded, so the rest of elm_core works without them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elm_core.errors import BackendUnavailableError, ConfigError
from elm_core.models._types import Generation, Prompt, SamplingConfig

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True, kw_only=True)
class HFConfig:
    device: str = "auto"  # "auto" = CUDA when present, else CPU
    dtype: str = "auto"  # "auto" = float32 on CPU, bfloat16 on GPU
    threads: int | None = None  # torch intra-op threads on CPU; None = torch's default
    batch_size: int = 16  # prompts per forward pass; larger batches are split

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")


class HFGenerator:
    """A causal LM loaded with transformers. `path` is a model directory, or a directory plus `gguf_file`."""

    def __init__(self, path: str | Path, *, name: str = "", gguf_file: str | None = None,
                 config: HFConfig | None = None) -> None:  # fmt: skip
        self.config = config or HFConfig()
        self.name = name or str(path)
        self._lock = threading.Lock()  # one generate() at a time: torch's threads are already all busy
        started = time.perf_counter()
        self.model, self.tokenizer = _load(str(path), gguf_file, self.config)
        self.load_seconds = time.perf_counter() - started
        self.device = self.model.device

    def generate(
        self, prompts: Sequence[Prompt], sampling: SamplingConfig, *, seed: int | None = None
    ) -> list[Generation]:
        texts = [prompt_text(self.tokenizer, p) for p in prompts]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
        results: dict[int, Generation] = {}
        with self._lock:
            for start in range(0, len(order), self.config.batch_size):
                chunk = order[start : start + self.config.batch_size]
                batch_seed = None if seed is None else seed + start
                generations = self._generate([texts[i] for i in chunk], sampling, batch_seed)
                results.update(zip(chunk, generations, strict=True))
        return [results[i] for i in range(len(texts))]

    def _generate(self, texts: list[str], sampling: SamplingConfig, seed: int | None) -> list[Generation]:
        import torch

        if seed is not None:
            torch.manual_seed(seed)
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True).to(self.device)
        kwargs: dict[str, Any] = dict(max_new_tokens=sampling.max_new_tokens, pad_token_id=self._pad_id)
        if sampling.temperature > 0:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            output = self.model.generate(**encoded, **kwargs)
        prompt_length = encoded["input_ids"].shape[1]
        prompt_tokens = encoded["attention_mask"].sum(dim=1).tolist()
        return [
            self._decode(row[prompt_length:].tolist(), sampling, int(prompt_tokens[i]))
            for i, row in enumerate(output)
        ]

    def _decode(self, tokens: list[int], sampling: SamplingConfig, prompt_tokens: int) -> Generation:
        ends = {self._pad_id, *self._eos_ids}
        length = next((k for k, t in enumerate(tokens) if t in ends), None)
        finish = "stop" if length is not None else "length"
        tokens = tokens[: len(tokens) if length is None else length]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        for stop in sampling.stop:
            cut = text.find(stop)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        if finish == "length" and len(tokens) < sampling.max_new_tokens:
            finish = "stop"
        return Generation(text=text, finish_reason=finish, prompt_tokens=prompt_tokens,
                          completion_tokens=len(tokens))  # fmt: skip

    @property
    def _pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    @property
    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = eos if isinstance(eos, list) else [eos]
        return {int(i) for i in ids if i is not None} | {int(self.tokenizer.eos_token_id)}


def quiet_transformers() -> None:
    """No progress bars or advice from transformers: elm shows its own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _load(path: str, gguf_file: str | None, config: HFConfig) -> tuple[Any, Any]:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise BackendUnavailableError(
            f"the hf backend needs torch and transformers ({e}); install the project's `model` extra"
        ) from e
    quiet_transformers()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = "cuda" if config.device == "auto" and torch.cuda.is_available() else config.device
    device = "cpu" if device == "auto" else device
    dtype_name = config.dtype if config.dtype != "auto" else ("float32" if device == "cpu" else "bfloat16")
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **extra)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype_name), **extra)
    except (OSError, ValueError) as e:
        raise BackendUnavailableError(f"could not load the model at {path}: {e}") from e
    model.to(device).eval()  # type: ignore[arg-type]
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def prompt_text(tokenizer: Any, prompt: Prompt) -> str:
    """The text the model is given for `prompt` (its chat template when it has one); training uses it too."""
    if prompt.text is not None:
        return prompt.text
    assert prompt.messages is not None
    if not getattr(tokenizer, "chat_template", None):
        return "".join(f"{role}: {content}\n" for role, content in prompt.messages) + "assistant: "
    messages = [{"role": role, "content": content} for role, content in prompt.messages]
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
