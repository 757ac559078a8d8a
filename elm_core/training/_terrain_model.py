"""The terrain-conditioned model of stage 3: a causal LM with a learned soft prompt per terrain (the paper's
terrain embedding) prepended to its token embeddings.

This module imports torch: it is imported only where a model is in use (`invent`, `TerrainSampler`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from elm_core.errors import ConfigError

PROMPT_FILE = "terrain_prompt.pt"  # the terrains' vectors, saved next to the LM's weights


class TerrainPrompt(nn.Module):
    """`tokens` learned vectors per terrain, in the LM's embedding space."""

    def __init__(self, terrains: Sequence[str], tokens: int, hidden: int) -> None:
        super().__init__()
        self.terrains = tuple(terrains)
        self.vectors = nn.Parameter(torch.zeros(len(self.terrains), tokens, hidden))

    @classmethod
    def initialised(
        cls, terrains: Sequence[str], tokens: int, embeddings: torch.Tensor, generator: torch.Generator
    ) -> TerrainPrompt:
        """Each terrain's vectors start as the embeddings of random vocabulary tokens (the usual start of a
        soft prompt: in the space the LM reads, and different for each terrain)."""
        prompt = cls(terrains, tokens, embeddings.shape[1])
        ids = torch.randint(embeddings.shape[0], (len(prompt.terrains), tokens), generator=generator)
        with torch.no_grad():
            prompt.vectors.copy_(embeddings[ids].float())
        return prompt

    @property
    def tokens(self) -> int:
        return int(self.vectors.shape[1])

    def ids(self, terrains: Sequence[str]) -> torch.Tensor:
        unknown = sorted(set(terrains) - set(self.terrains))
        if unknown:
            raise ConfigError(f"the model was not conditioned on {', '.join(unknown)}; "
                              f"it knows {', '.join(self.terrains)}")  # fmt: skip
        return torch.tensor([self.terrains.index(t) for t in terrains], device=self.vectors.device)

    def forward(self, terrain_ids: torch.Tensor) -> torch.Tensor:
        return self.vectors[terrain_ids]

    def save(self, out: Path) -> None:
        torch.save(
            {"terrains": list(self.terrains), "vectors": self.vectors.detach().cpu()}, out / PROMPT_FILE
        )

    @classmethod
    def load(cls, checkpoint: Path) -> TerrainPrompt | None:
        """The checkpoint's terrain prompt; None for a checkpoint without one (an unconditioned model)."""
        path = checkpoint / PROMPT_FILE
        if not path.is_file():
            return None
        saved = torch.load(path, map_location="cpu", weights_only=True)
        prompt = cls(saved["terrains"], saved["vectors"].shape[1], saved["vectors"].shape[2])
        with torch.no_grad():
            prompt.vectors.copy_(saved["vectors"])
        return prompt


class ConditionedLM(nn.Module):
    """The LM, reading a terrain's soft prompt (when it has one) before the text's tokens."""

    def __init__(self, lm: Any, prompt: TerrainPrompt | None) -> None:
        super().__init__()
        self.lm, self.prompt = lm, prompt

    def _inputs(self, terrain_ids: torch.Tensor | None, input_ids: torch.Tensor) -> torch.Tensor:
        tokens = self.lm.get_input_embeddings()(input_ids)
        if self.prompt is None or terrain_ids is None:
            return tokens
        return torch.cat([self.prompt(terrain_ids).to(tokens.dtype), tokens], dim=1)

    def token_logprobs(
        self, terrain_ids: torch.Tensor | None, start: torch.Tensor, sample: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """log p(sample token | soft prompt, start, earlier sample tokens) for each sample token, 0 where
        `mask` is 0. `start`: (S,) token ids every sample follows; `sample`, `mask`: (B, L)."""
        rows = sample.shape[0]
        embeds = self._inputs(terrain_ids, torch.cat([start.expand(rows, -1), sample], dim=1))
        before = embeds.shape[1] - sample.shape[1]  # soft prompt and start
        attention = torch.cat([torch.ones(rows, before, dtype=mask.dtype, device=mask.device), mask], dim=1)
        logits = self.lm(inputs_embeds=embeds, attention_mask=attention).logits
        predicting = logits[:, before - 1 : before - 1 + sample.shape[1]].float().log_softmax(-1)
        return predicting.gather(-1, sample.unsqueeze(-1)).squeeze(-1) * mask

    @torch.no_grad()
    def sample(
        self, terrain_ids: torch.Tensor | None, start: torch.Tensor, rows: int, *, max_new_tokens: int,
        temperature: float, pad_id: int,
    ) -> torch.Tensor:  # fmt: skip
        """`rows` continuations of `start` (new tokens only, padded with `pad_id` after the end)."""
        embeds = self._inputs(terrain_ids, start.expand(rows, -1))
        attention = torch.ones(rows, embeds.shape[1], dtype=torch.long, device=embeds.device)
        sampling: dict[str, Any] = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
        if temperature <= 0:
            sampling = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        return self.lm.generate(inputs_embeds=embeds, attention_mask=attention, max_new_tokens=max_new_tokens,
                                pad_token_id=pad_id, **sampling)  # fmt: skip


def end_ids(lm: Any, tokenizer: Any) -> set[int]:
    ends = lm.generation_config.eos_token_id
    ids = set(ends if isinstance(ends, list) else [ends]) | {tokenizer.eos_token_id}
    return {i for i in ids if i is not None}


def sample_mask(sample: torch.Tensor, ends: set[int]) -> torch.Tensor:
    """1 for each token up to and including the first end token, 0 after it (the padding)."""
    is_end = torch.zeros_like(sample, dtype=torch.bool)
    for end in ends:
        is_end |= sample == end
    ended_before = (is_end.long().cumsum(dim=1) - is_end.long()) > 0
    return (~ended_before).long()


def decode(tokenizer: Any, sample: torch.Tensor, mask: torch.Tensor) -> list[str]:
    return [
        tokenizer.decode(row[: int(m.sum())].tolist(), skip_special_tokens=True)
        for row, m in zip(sample, mask, strict=True)
    ]


def manifest(checkpoint: Path, name: str) -> dict[str, Any]:
    path = checkpoint / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
