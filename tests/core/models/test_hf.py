"""The transformers backend, on the tiny randomly initialised model."""

from __future__ import annotations

import pytest

from elm_core.errors import ConfigError, NotFoundError
from elm_core.models import HFConfig, HFGenerator, Prompt, SamplingConfig, load_generator

CHAT = Prompt(messages=(("system", "You write Python."), ("user", "Write make_walker().")))
SHORT = Prompt(text="def make_walker():\n")
LONG = Prompt(text="def make_walker():\n    wc = walker_creator()\n" * 6)
GREEDY = SamplingConfig(max_new_tokens=12, temperature=0.0)


def test_one_generation_per_prompt_in_order(tiny_generator: HFGenerator) -> None:
    outputs = tiny_generator.generate([LONG, SHORT, CHAT], GREEDY)
    assert len(outputs) == 3
    assert [o.prompt_tokens for o in outputs][0] > outputs[1].prompt_tokens
    for output in outputs:
        assert 0 < output.completion_tokens <= 12
        assert output.finish_reason in ("stop", "length")
        assert output.truncated == (output.completion_tokens == 12 and output.finish_reason == "length")


def test_left_padding_does_not_change_greedy_output(tiny_generator: HFGenerator) -> None:
    alone = tiny_generator.generate([SHORT], GREEDY)[0]
    batched = tiny_generator.generate([LONG, SHORT], GREEDY)[1]
    assert batched.text == alone.text


def test_sampling_is_reproducible_with_a_seed(tiny_generator: HFGenerator) -> None:
    sampling = SamplingConfig(max_new_tokens=16, temperature=1.0, top_p=0.9)
    first = tiny_generator.generate([SHORT, SHORT], sampling, seed=7)
    again = tiny_generator.generate([SHORT, SHORT], sampling, seed=7)
    other = tiny_generator.generate([SHORT, SHORT], sampling, seed=8)
    assert [g.text for g in first] == [g.text for g in again]
    assert [g.text for g in first] != [g.text for g in other]


def test_stop_sequences_cut_the_text(tiny_generator: HFGenerator) -> None:
    free = tiny_generator.generate([SHORT], SamplingConfig(max_new_tokens=24, temperature=0.0))[0]
    assert len(free.text) > 3
    stop = free.text[2:4]
    cut = tiny_generator.generate([SHORT], SamplingConfig(max_new_tokens=24, temperature=0.0, stop=(stop,)))[
        0
    ]
    assert stop not in cut.text
    assert free.text.startswith(cut.text)
    assert cut.finish_reason == "stop"


def test_batches_larger_than_the_batch_size_are_split(model_cache: object) -> None:
    generator = load_generator("tiny", HFConfig(batch_size=2, threads=1))
    outputs = generator.generate([SHORT] * 5, GREEDY)
    assert len({o.text for o in outputs}) == 1 and len(outputs) == 5


@pytest.mark.parametrize(
    "kwargs", [{"dtype": "float8"}, {"batch_size": 0}, {"threads": 0}], ids=["dtype", "batch", "threads"]
)
def test_bad_backend_config_is_a_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        HFConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"max_new_tokens": 0}, {"temperature": -1.0}, {"top_p": 0.0}], ids=["tokens", "temp", "top_p"]
)
def test_bad_sampling_is_a_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        SamplingConfig(**kwargs)


def test_prompt_needs_exactly_one_form() -> None:
    with pytest.raises(ConfigError):
        Prompt()
    with pytest.raises(ConfigError):
        Prompt(text="a", messages=(("user", "b"),))


def test_unknown_model_name_says_what_is_accepted(model_cache: object) -> None:
    with pytest.raises(NotFoundError, match="tiny"):
        load_generator("no-such-model")
