"""Examples as token ids, laid out exactly as the generator feeds the model, with the loss on the answer only.

The prompt is rendered as `HFGenerator` renders it (the chat template with the assistant's turn opened, or
the text as is) and tokenised the way it tokenises it; the completion follows, tokenised on its own (the
model generates it after the prompt's last token), then the end-of-text token the generator stops on.
Labels are -100 (ignored by the loss) on every prompt token and on padding. An empty text prompt makes it
plain language modelling: the loss is on the whole text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from elm_core.errors import ConfigError
from elm_core.models import Prompt, prompt_text

IGNORE_INDEX = -100  # the label cross-entropy skips


class PromptCompletion(Protocol):
    """What training reads of an example (an `Example`, or a program with an empty prompt)."""

    @property
    def prompt(self) -> Prompt: ...

    @property
    def completion(self) -> str: ...


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]  # IGNORE_INDEX on the prompt; the completion's ids (and the end token) after

    @property
    def completion_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


@dataclass(frozen=True)
class TokenizedSet:
    examples: tuple[TokenizedExample, ...]
    skipped_overlong: int  # examples whose prompt and completion together exceed max_seq_tokens


def tokenize_example(tokenizer: Any, example: PromptCompletion) -> TokenizedExample:
    """Prompt ids (as generation encodes them) + completion ids + the end token; labels on the answer."""
    prompt_ids = list(tokenizer(prompt_text(tokenizer, example.prompt))["input_ids"])
    answer_ids = [*tokenizer(example.completion, add_special_tokens=False)["input_ids"], end_token(tokenizer)]
    return TokenizedExample(
        input_ids=tuple(prompt_ids + answer_ids),
        labels=tuple([IGNORE_INDEX] * len(prompt_ids) + answer_ids),
    )


def tokenize_examples(
    tokenizer: Any, examples: Sequence[PromptCompletion], max_seq_tokens: int
) -> TokenizedSet:
    """Every example that fits in `max_seq_tokens`; the others are skipped whole, never cut, and counted."""
    tokenized = [tokenize_example(tokenizer, example) for example in examples]
    kept = tuple(t for t in tokenized if len(t.input_ids) <= max_seq_tokens)
    return TokenizedSet(examples=kept, skipped_overlong=len(tokenized) - len(kept))


def end_token(tokenizer: Any) -> int:
    """The token that ends an answer: the tokenizer's end of text, one the generator stops on."""
    if tokenizer.eos_token_id is None:
        raise ConfigError("the base model's tokenizer has no end-of-text token to end completions with")
    return int(tokenizer.eos_token_id)


def collate(examples: Sequence[TokenizedExample], pad_id: int) -> dict[str, list[list[int]]]:
    """input_ids, attention_mask and labels of a batch, padded on the right to its longest example."""
    width = max(len(e.input_ids) for e in examples)
    return {
        "input_ids": [[*e.input_ids, *[pad_id] * (width - len(e.input_ids))] for e in examples],
        "attention_mask": [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in examples],
        "labels": [[*e.labels, *[IGNORE_INDEX] * (width - len(e.labels))] for e in examples],
    }


def batch_indices(examples: int, batch_size: int, seed: int, index: int) -> list[int]:
    """The examples of micro-batch `index`: each epoch is its own seeded shuffle, so the order depends on the
    index alone and a resumed run sees the same batches an uninterrupted one would."""
    per_epoch = -(-examples // batch_size)
    epoch, within = divmod(index, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(examples)
    return [int(i) for i in order[within * batch_size : (within + 1) * batch_size]]
