"""Training examples as tokens: the loss on the answer only, the prompt exactly as generation feeds it."""

from __future__ import annotations

from typing import Any

import pytest

from elm_core.models import HFGenerator, SamplingConfig, prompt_text
from elm_core.mutation._prompts import PromptStyle
from elm_core.sodarace import seed_source
from elm_core.training import IGNORE_INDEX, Example, tokenize_example, tokenize_examples
from elm_core.training._examples import example_for
from elm_core.training._tokenize import batch_indices, collate, end_token

SQUARE = seed_source("square")
CHANGED = SQUARE.replace("(5.0, 10.0, 2.0)", "(7.0, 10.0, 3.0)")


def example(style: PromptStyle, parent: str = SQUARE, child: str = CHANGED) -> Example:
    made = example_for(style=style, message="Changed make_walker function.", parent=parent, child=child,
                       raw_output=None, run_id="r", parent_id=0, child_id=1)  # fmt: skip
    assert made is not None
    return made


def model_inputs(generator: HFGenerator, example: Example, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The token ids `generate` hands the model for the example's prompt."""
    seen: list[Any] = []

    def spy(**kwargs: Any) -> Any:
        seen.append(kwargs["input_ids"][0].tolist())
        return kwargs["input_ids"]  # nothing generated: the test only looks at the input

    monkeypatch.setattr(generator.model, "generate", spy)
    generator.generate([example.prompt], SamplingConfig(max_new_tokens=1, temperature=0))
    monkeypatch.undo()
    return seen[0]


@pytest.mark.parametrize("style", list(PromptStyle))
def test_the_prompt_is_laid_out_as_generation_feeds_it(
    tiny_generator: HFGenerator, style: PromptStyle, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = example(style)
    tokenized = tokenize_example(tiny_generator.tokenizer, made)
    prompt_length = tokenized.labels.index(next(label for label in tokenized.labels if label != IGNORE_INDEX))
    assert list(tokenized.input_ids[:prompt_length]) == model_inputs(tiny_generator, made, monkeypatch)
    if style is not PromptStyle.DIFF:  # the chat template, with the assistant's turn opened
        assert prompt_text(tiny_generator.tokenizer, made.prompt).endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize("style", list(PromptStyle))
def test_only_the_completion_and_its_end_token_carry_labels(
    tiny_generator: HFGenerator, style: PromptStyle
) -> None:
    tokenizer, made = tiny_generator.tokenizer, example(style)
    tokenized = tokenize_example(tokenizer, made)
    prompt_ids = tokenizer(prompt_text(tokenizer, made.prompt))["input_ids"]
    labels, ids = tokenized.labels, tokenized.input_ids
    assert labels[: len(prompt_ids)] == (IGNORE_INDEX,) * len(prompt_ids)
    assert labels[len(prompt_ids) :] == ids[len(prompt_ids) :]
    assert IGNORE_INDEX not in labels[len(prompt_ids) :]
    assert tokenizer.decode(list(labels[len(prompt_ids) : -1])) == made.completion
    assert labels[-1] == end_token(tokenizer) and labels[-1] in tiny_generator._eos_ids  # where it stops
    assert tokenized.completion_tokens == len(ids) - len(prompt_ids)


def test_overlong_examples_are_skipped_whole_and_counted(tiny_generator: HFGenerator) -> None:
    tokenizer = tiny_generator.tokenizer
    short, long = example(PromptStyle.DIFF), example(PromptStyle.REWRITE)
    lengths = [len(tokenize_example(tokenizer, e).input_ids) for e in (short, long)]
    assert lengths[0] < lengths[1]
    kept = tokenize_examples(tokenizer, [short, long, short], max_seq_tokens=lengths[1] - 1)
    assert kept.skipped_overlong == 1 and len(kept.examples) == 2
    assert all(len(t.input_ids) == lengths[0] for t in kept.examples)  # never cut to fit
    everything = tokenize_examples(tokenizer, [short, long], max_seq_tokens=lengths[1])
    assert (everything.skipped_overlong, len(everything.examples)) == (0, 2)


def test_padding_is_on_the_right_masked_and_without_labels(tiny_generator: HFGenerator) -> None:
    tokenizer = tiny_generator.tokenizer
    short, long = (tokenize_example(tokenizer, example(s)) for s in (PromptStyle.DIFF, PromptStyle.REWRITE))
    batch = collate([short, long], pad_id=tokenizer.pad_token_id)
    width, pad = len(long.input_ids), len(long.input_ids) - len(short.input_ids)
    assert [len(row) for row in batch["input_ids"]] == [width, width]
    assert batch["input_ids"][0] == [*short.input_ids, *[tokenizer.pad_token_id] * pad]
    assert batch["attention_mask"][0] == [1] * len(short.input_ids) + [0] * pad
    assert batch["labels"][0] == [*short.labels, *[IGNORE_INDEX] * pad]
    assert batch["labels"][1] == list(long.labels)


def test_every_epoch_visits_every_example_once_in_a_seeded_order() -> None:
    batches = [batch_indices(10, 3, seed=7, index=i) for i in range(8)]  # 4 batches per epoch
    assert [len(b) for b in batches] == [3, 3, 3, 1, 3, 3, 3, 1]
    assert sorted(sum(batches[:4], [])) == sorted(sum(batches[4:], [])) == list(range(10))
    assert batches[:4] != batches[4:]  # each epoch its own shuffle
    assert batch_indices(10, 3, seed=7, index=5) == batches[5]  # the same batch, asked again
    assert batch_indices(10, 3, seed=8, index=0) != batches[0]
