"""The fine-tuning effect on a real GP run: the base and the fine-tuned tiny model mutate the same parents
with the same messages, and every figure is consistent with the children behind it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from elm_core.errors import ConfigError, NotFoundError
from elm_core.models import Generation, Prompt, SamplingConfig, cache_dir
from elm_core.sodarace import seed_source
from elm_core.store import SQLiteStore
from elm_core.training import (
    EffectReport,
    FinetuneMethod,
    ModelEffect,
    TrainConfig,
    build_dataset,
    finetune,
    measure_finetune_effect,
)

QUICK = TrainConfig(base_model="tiny", method=FinetuneMethod.FULL, learning_rate=3e-3, batch_size=2,
                    grad_accumulation_steps=1, max_steps=4, eval_every_steps=4, checkpoint_every_steps=100,
                    early_stopping_patience=None, threads=1)  # fmt: skip
SHORT = SamplingConfig(max_new_tokens=48)


@pytest.fixture(scope="module")
def checkpoint(
    gp_store: tuple[SQLiteStore, str], tmp_path_factory: pytest.TempPathFactory, model_cache: Path
) -> Path:
    """The tiny model fine-tuned a few steps on the run's mutations that ran."""
    store, run_id = gp_store
    dataset = build_dataset(store, run_id, include_ran=True, validation_fraction=0)
    return finetune(QUICK, dataset, tmp_path_factory.mktemp("finetuned")).path


def consistent(effect: ModelEffect, parents: int) -> None:
    counts, fractions = effect.counts, effect.fractions
    assert counts["mutations"] == len(effect.children) == parents
    assert counts["inserted"] <= counts["ran"] <= counts["applied"] <= parents
    for name in ("applied", "ran", "inserted"):
        assert counts[name] == sum(getattr(child, name) for child in effect.children)
        assert 0 <= fractions[name] <= 1 and fractions[name] == counts[name] / parents
    for child in effect.children:
        assert child.applied >= child.ran >= child.inserted  # inserted -> ran -> applied
        assert child.applied == (child.outcome == "OK")


def test_both_models_mutate_the_same_parents_with_the_same_messages(
    gp_store: tuple[SQLiteStore, str], checkpoint: Path
) -> None:
    store, run_id = gp_store
    report = measure_finetune_effect(store, run_id, checkpoint, parents=5, seed=3, sampling=SHORT)
    assert isinstance(report, EffectReport) and report.style == "rewrite"
    assert (report.base.model, report.finetuned.model) == ("tiny", str(checkpoint))  # base from the manifest
    elites = {e.individual_id for e in store.elites(run_id)}
    assert len(report.parent_ids) == 5 and set(report.parent_ids) <= elites
    assert len(set(report.parent_ids)) == min(5, len(elites))  # every elite once before any twice
    for effect in (report.base, report.finetuned):
        assert [c.parent_id for c in effect.children] == list(report.parent_ids)
        consistent(effect, 5)
    messages = [[c.message for c in e.children] for e in (report.base, report.finetuned)]
    assert messages[0] == messages[1] and all(messages[0])
    figures = report.to_json()
    assert figures["parent_ids"] == list(report.parent_ids)
    assert figures["finetuned"]["counts"] == report.finetuned.counts


def test_a_checkpoint_with_its_own_base_model_and_bad_requests(
    gp_store: tuple[SQLiteStore, str], checkpoint: Path, tmp_path: Path
) -> None:
    store, run_id = gp_store
    plain = shutil.copytree(cache_dir() / "tiny", tmp_path / "plain")  # a model without a manifest
    with pytest.raises(NotFoundError, match="manifest.json is missing"):
        measure_finetune_effect(store, run_id, plain, parents=1)
    report = measure_finetune_effect(store, run_id, plain, base_model=str(checkpoint), parents=2, seed=1,
                                     style="diff", sampling=SHORT)  # fmt: skip
    assert report.style == "diff" and report.base.model == str(checkpoint)
    consistent(report.base, 2)
    consistent(report.finetuned, 2)
    with pytest.raises(ConfigError, match="parents must be"):
        measure_finetune_effect(store, run_id, checkpoint, parents=0)
    with pytest.raises(ConfigError, match="style must be one of"):
        measure_finetune_effect(store, run_id, checkpoint, style="poem")
    with pytest.raises(NotFoundError, match="ghost"):
        measure_finetune_effect(store, "ghost", checkpoint)


SQUARE = seed_source("square")
BIG_SQUARE = SQUARE.replace("(0, 10), (10, 10), (10, 0)", "(0, 18), (18, 18), (18, 0)").replace(
    "(5, 5)", "(9, 9)"
)
SCRIPT = (
    "```python\ndef make_walker(:\n```",  # applies, does not run
    f"```python\n{SQUARE}# the same walker\n```",  # runs, but at best ties the elite of the square's cell
    f"```python\n{BIG_SQUARE}```",  # runs, 18 x 18: a cell no GP child of the seeds reached
    "",  # nothing to apply
)


class Scripted:
    """A model that writes the same four answers, in turn, whatever it is asked."""

    def __init__(self, name: str) -> None:
        self.name = name

    def generate(self, prompts: list[Prompt], sampling: SamplingConfig, *, seed: int | None = None) -> list:
        return [Generation(text=SCRIPT[k % 4], finish_reason="stop") for k in range(len(prompts))]


def test_children_count_as_applied_ran_and_inserted_as_the_run_would_judge_them(
    gp_store: tuple[SQLiteStore, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, run_id = gp_store
    monkeypatch.setattr("elm_core.training._effect.load_generator", lambda name, **_: Scripted(name))
    report = measure_finetune_effect(store, run_id, tmp_path, base_model="scripted", parents=4)
    for effect in (report.base, report.finetuned):
        assert [c.outcome for c in effect.children] == ["OK", "OK", "OK", "EMPTY_OUTPUT"]
        assert [(c.applied, c.ran, c.inserted) for c in effect.children] == [
            (True, False, False), (True, True, False), (True, True, True), (False, False, False)]  # fmt: skip
        assert effect.counts == {"mutations": 4, "applied": 3, "ran": 2, "inserted": 1}
        assert effect.fractions == {"applied": 0.75, "ran": 0.5, "inserted": 0.25}
