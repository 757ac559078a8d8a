"""Prompt styles and the LLM operator: layouts, output parsing, and a real (tiny) model end to end."""

from __future__ import annotations

import difflib

import numpy as np
import pytest

from elm_core.errors import ConfigError
from elm_core.models import Generation, HFGenerator, Prompt, SamplingConfig
from elm_core.mutation import Child, MutationOutcome
from elm_core.mutation._llm import SODARACE_MESSAGES, LLMMutator, MutationConfig
from elm_core.mutation._prompts import PromptStyle, build_prompt, parse_output
from elm_core.sodarace import seed_source

SQUARE = seed_source("square")
CHANGED = SQUARE.replace("(5.0, 10.0, 2.0)", "(7.0, 10.0, 3.0)")
DIFF = "".join(difflib.unified_diff(SQUARE.splitlines(True), CHANGED.splitlines(True), "a", "b"))


def gen(text: str, finish: str = "stop") -> Generation:
    return Generation(text=text, finish_reason=finish)


def test_diff_layout_is_the_diff_models() -> None:
    prompt = build_prompt(PromptStyle.DIFF, SQUARE, "Changed make_walker function.")
    assert prompt.text == f"<NME> walker.py\n<BEF> {SQUARE}\n<MSG> Changed make_walker function.\n<DFF>"


@pytest.mark.parametrize("style", [PromptStyle.INSTRUCT, PromptStyle.REWRITE])
def test_chat_styles_carry_the_program_and_the_message(style: PromptStyle) -> None:
    prompt = build_prompt(style, SQUARE, "Small change to make_walker function.")
    assert prompt.messages is not None and prompt.messages[0][0] == "system"
    user = prompt.messages[1][1]
    assert SQUARE.strip() in user and "Small change to make_walker function." in user
    assert ("```diff" in user) == (style is PromptStyle.INSTRUCT)


@pytest.mark.parametrize(
    ("style", "output", "outcome"),
    [
        (PromptStyle.DIFF, DIFF, MutationOutcome.OK),
        (PromptStyle.DIFF, "", MutationOutcome.EMPTY_OUTPUT),
        (PromptStyle.DIFF, "I like this walker.", MutationOutcome.NO_DIFF),
        (PromptStyle.DIFF, "@@\n-    not_in_the_program()\n+    x = 1\n", MutationOutcome.DIFF_DID_NOT_APPLY),
        (PromptStyle.INSTRUCT, f"Here you go:\n```diff\n{DIFF}```\n", MutationOutcome.OK),
        (PromptStyle.INSTRUCT, f"```python\n{CHANGED}```", MutationOutcome.OK),
        (PromptStyle.INSTRUCT, "No change is needed.", MutationOutcome.NO_DIFF),
        (PromptStyle.REWRITE, f"```python\n{CHANGED}```", MutationOutcome.OK),
        (PromptStyle.REWRITE, f"```python\n{SQUARE}```", MutationOutcome.UNCHANGED),
        (PromptStyle.REWRITE, "   \n", MutationOutcome.EMPTY_OUTPUT),
    ],
)
def test_outputs_become_children_or_typed_outcomes(
    style: PromptStyle, output: str, outcome: MutationOutcome
) -> None:
    parsed = parse_output(style, SQUARE, gen(output))
    assert parsed.outcome is outcome, parsed.detail
    assert (parsed.source == CHANGED) == (outcome is MutationOutcome.OK)


def test_truncated_outputs() -> None:
    cut_program = f"```python\n{CHANGED[: len(CHANGED) // 2]}"
    assert (
        parse_output(PromptStyle.REWRITE, SQUARE, gen(cut_program, "length")).outcome
        is MutationOutcome.TRUNCATED
    )
    cut_diff = DIFF[: len(DIFF) // 2]
    assert (
        parse_output(PromptStyle.DIFF, SQUARE, gen(cut_diff, "length")).outcome is MutationOutcome.TRUNCATED
    )
    two_hunks = DIFF + "@@ -20,2 +20,2 @@\n-    return wc.get_wal"  # the second hunk was cut mid-way
    parsed = parse_output(PromptStyle.DIFF, SQUARE, gen(two_hunks, "length"))
    assert parsed.outcome is MutationOutcome.OK and parsed.source == CHANGED


class ScriptedModel:
    """A CodeGenerator that answers from a script; records the prompts it was given."""

    name = "scripted"

    def __init__(self, answers: list[str]) -> None:
        self.answers, self.prompts = answers, []

    def generate(self, prompts: list[Prompt], sampling: SamplingConfig, *, seed: int | None = None) -> list:
        self.prompts.extend(prompts)
        self.sampling = sampling
        return [gen(self.answers[i % len(self.answers)]) for i in range(len(prompts))]


def test_messages_follow_the_papers_probabilities() -> None:
    model = ScriptedModel([DIFF])
    children = LLMMutator(model, MutationConfig(style=PromptStyle.DIFF)).mutate(
        [SQUARE] * 3000, np.random.default_rng(0)
    )
    counts = {text: sum(c.message == text for c in children) / 3000 for text, _ in SODARACE_MESSAGES}
    for text, probability in SODARACE_MESSAGES:
        assert abs(counts[text] - probability) < 0.04
    assert all(c.outcome is MutationOutcome.OK and c.source == CHANGED for c in children[:5])
    assert "<NME>" in model.sampling.stop


def test_mutate_keeps_order_and_records_raw_output() -> None:
    model = ScriptedModel([f"```python\n{CHANGED}```", "nothing useful"])
    children = LLMMutator(model).mutate([SQUARE, SQUARE], np.random.default_rng(1))
    assert [c.outcome for c in children] == [MutationOutcome.OK, MutationOutcome.NO_DIFF]
    assert children[1].raw_output == "nothing useful" and children[1].source is None
    assert all(isinstance(c, Child) and c.operator == "paper" and c.style == "rewrite" for c in children)


def test_bad_message_table_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        MutationConfig(messages=(("a", 0.5), ("b", 0.4)))


@pytest.mark.parametrize("style", list(PromptStyle))
def test_tiny_model_end_to_end_gives_typed_children(tiny_generator: HFGenerator, style: PromptStyle) -> None:
    config = MutationConfig(style=style, sampling=SamplingConfig(max_new_tokens=24))
    children = LLMMutator(tiny_generator, config).mutate([SQUARE] * 3, np.random.default_rng(2))
    assert len(children) == 3
    for child in children:
        assert isinstance(child.outcome, MutationOutcome) and child.raw_output
        assert (child.source is not None) == child.ok
