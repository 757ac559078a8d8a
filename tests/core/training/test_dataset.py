"""The fine-tuning dataset: every example reproduces its child; dedup, split and hash are deterministic."""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from elm_core.errors import ConfigError, NotFoundError
from elm_core.models import Generation
from elm_core.mutation._prompts import PromptStyle, build_prompt, parse_output
from elm_core.sodarace import seed_source
from elm_core.store import (
    BatchRecord,
    IndividualRecord,
    MetricsRecord,
    MutationRecord,
    SQLiteStore,
)
from elm_core.training import (
    DATASET_MANIFEST_FILE,
    DEFAULT_MESSAGE,
    TRAIN_FILE,
    VALIDATION_FILE,
    Example,
    build_dataset,
    read_examples,
    write_dataset,
)

SQUARE = seed_source("square")
CHANGED = SQUARE.replace("(5.0, 10.0, 2.0)", "(7.0, 10.0, 3.0)")
MESSAGE = "Changed parameters in make_walker function."


def reproduces(store: SQLiteStore, example: Example) -> bool:
    parent = store.individual(example.run_id, example.parent_id).source
    child = store.individual(example.run_id, example.child_id).source
    parsed = parse_output(example.style, parent, Generation(text=example.completion, finish_reason="stop"))
    return parsed.source == child


@pytest.mark.parametrize("style", [None, *PromptStyle])
def test_every_gp_example_reproduces_its_child_in_every_layout(
    gp_store: tuple[SQLiteStore, str], style: PromptStyle | None
) -> None:
    store, run_id = gp_store
    dataset = build_dataset(store, run_id, include_ran=True, validation_fraction=0.3, style=style)
    examples = dataset.train + dataset.validation
    assert examples and dataset.counts.unrepresentable == 0
    for example in examples:
        assert example.style is (style or PromptStyle.REWRITE)
        assert reproduces(store, example), example.completion
        parent = store.individual(run_id, example.parent_id).source
        assert example.prompt == build_prompt(example.style, parent, DEFAULT_MESSAGE)


def test_accepted_mutations_by_default_every_ran_one_on_request(gp_store: tuple[SQLiteStore, str]) -> None:
    store, run_id = gp_store
    mutations = store.mutations(run_id)
    accepted = build_dataset(store, run_id, validation_fraction=0)
    ran = build_dataset(store, run_id, include_ran=True, validation_fraction=0)
    inserted = {m.child_id for m in mutations if m.inserted}
    assert {e.child_id for e in accepted.train} == inserted and accepted.counts.selected == len(inserted)
    assert {e.child_id for e in ran.train} == {m.child_id for m in mutations if m.ran} > inserted
    assert accepted.counts.mutations == ran.counts.mutations == len(mutations)


def test_split_and_hash_are_deterministic(gp_store: tuple[SQLiteStore, str]) -> None:
    store, run_id = gp_store
    first = build_dataset(store, run_id, include_ran=True, validation_fraction=0.5)
    assert build_dataset(store, run_id, include_ran=True, validation_fraction=0.5) == first
    assert first.train and first.validation
    train_prompts = {e.prompt_key for e in first.train}
    assert not train_prompts & {e.prompt_key for e in first.validation}  # equal prompts stay together
    resplit = build_dataset(store, run_id, include_ran=True, validation_fraction=0.1)
    assert resplit.sha256 == first.sha256  # the hash is of the examples, not of the split
    assert len(resplit.validation) <= len(first.validation)
    other = build_dataset(store, run_id, include_ran=True, style=PromptStyle.DIFF)
    assert other.sha256 != first.sha256 and len(first.sha256) == 64


def test_write_dataset_writes_jsonl_and_a_manifest(gp_store: tuple[SQLiteStore, str], tmp_path: Path) -> None:
    store, run_id = gp_store
    dataset = build_dataset(
        store, run_id, include_ran=True, validation_fraction=0.5, style=PromptStyle.INSTRUCT
    )
    directory = write_dataset(dataset, tmp_path / "out")
    assert read_examples(directory / TRAIN_FILE) == list(dataset.train)
    assert read_examples(directory / VALIDATION_FILE) == list(dataset.validation)
    manifest = json.loads((directory / DATASET_MANIFEST_FILE).read_text())
    assert manifest["run_id"] == run_id and manifest["sha256"] == dataset.sha256
    assert manifest["counts"]["train"] == len(dataset.train) and manifest["config"]["style"] == "instruct"
    line = json.loads((directory / TRAIN_FILE).read_text().splitlines()[0])
    assert [m["role"] for m in line["prompt"]] == ["system", "user"] and "```diff" in line["completion"]


# -- LLM mutations, on a hand-made log ---------------------------------------------------------------------


def individual(i: int, source: str, parent: int | None = None) -> IndividualRecord:
    return IndividualRecord(run_id="llm", individual_id=i, batch=0, parent_id=parent, source=source,
                            status="OK", message="", fitness=1.0, descriptors=(1.0, 1.0, 1.0), cell=i,
                            walker_json=None, timings_json="{}", created_at=0.0)  # fmt: skip


def mutation(child: int, style: PromptStyle, raw_output: str) -> MutationRecord:
    return MutationRecord(run_id="llm", batch=0, parent_id=0, child_id=child, operator="llm",
                          style=style.value, message=MESSAGE, raw_output=raw_output, mutation_outcome="OK",
                          applied=True, ran=True, inserted=True, fitness_delta=1.0)  # fmt: skip


def llm_store(path: Path, mutations: list[tuple[PromptStyle, str]]) -> SQLiteStore:
    """Parent 0 (the square seed) and one child per mutation, each the CHANGED program."""
    store = SQLiteStore(path)
    store.create_run(run_id="llm", name="llm", config_json="{}", rng_seed=0, rng_state_json="{}")
    metrics = MetricsRecord(run_id="llm", batch=0, evaluations=1, filled=1, coverage=0.1, qd_score=1.0,
                            max_fitness=1.0, applied_fraction=1.0, ran_fraction=1.0, inserted_fraction=1.0,
                            elapsed_s=1.0, evaluations_per_s=1.0, created_at=0.0)  # fmt: skip
    individuals = [individual(0, SQUARE)] + [individual(i, CHANGED, 0) for i in range(1, len(mutations) + 1)]
    records = [mutation(i, style, raw) for i, (style, raw) in enumerate(mutations, 1)]
    store.commit_batch(BatchRecord(run_id="llm", batch=0, individuals=tuple(individuals),
                                   mutations=tuple(records), elites=(), metrics=metrics,
                                   rng_state_json="{}"))  # fmt: skip
    return store


def test_llm_outputs_are_kept_when_they_reproduce_the_child(tmp_path: Path) -> None:
    with llm_store(tmp_path / "a.sqlite", []) as store:  # an empty log is an empty dataset
        empty = build_dataset(store, "llm")
    assert empty.train == empty.validation == ()
    chatty = f"Sure! Here is the change:\n```python\n{CHANGED}```\nIt makes the walker faster."
    model_diff = "".join(difflib.unified_diff(SQUARE.splitlines(True), CHANGED.splitlines(True))) + "<NME>"
    outputs = [(PromptStyle.REWRITE, chatty), (PromptStyle.REWRITE, chatty), (PromptStyle.DIFF, model_diff)]
    with llm_store(tmp_path / "b.sqlite", outputs) as store:
        dataset = build_dataset(store, "llm", validation_fraction=0)
    rewrite, diff = dataset.train  # the second rewrite is the same prompt and completion as the first
    assert (rewrite.completion, diff.completion, dataset.counts.duplicates) == (chatty, model_diff, 1)
    assert rewrite.prompt == build_prompt(PromptStyle.REWRITE, SQUARE, MESSAGE)
    assert diff.prompt == build_prompt(PromptStyle.DIFF, SQUARE, MESSAGE)


def test_other_outputs_and_layouts_get_a_written_completion(tmp_path: Path) -> None:
    cut = f"```python\n{CHANGED[: len(CHANGED) // 2]}"  # was truncated: parsed as a whole it is not the child
    with llm_store(tmp_path / "c.sqlite", [(PromptStyle.REWRITE, cut)]) as store:
        (rewrite,) = build_dataset(store, "llm", validation_fraction=0).train
        (as_diff,) = build_dataset(store, "llm", validation_fraction=0, style=PromptStyle.DIFF).train
        assert reproduces(store, rewrite) and reproduces(store, as_diff)
    assert rewrite.completion == f"```python\n{CHANGED}```"
    assert as_diff.completion.startswith(" --- a/walker.py\n+++ b/walker.py\n@@ ")
    assert as_diff.prompt.text == f"<NME> walker.py\n<BEF> {SQUARE}\n<MSG> {MESSAGE}\n<DFF>"


def test_bad_settings_and_unknown_runs(gp_store: tuple[SQLiteStore, str]) -> None:
    store, run_id = gp_store
    for fraction in (1.0, -0.1, True):
        with pytest.raises(ConfigError, match="validation_fraction"):
            build_dataset(store, run_id, validation_fraction=fraction)
    with pytest.raises(ConfigError, match="style must be one of diff, instruct, rewrite"):
        build_dataset(store, run_id, style="poem")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="ghost"):
        build_dataset(store, "ghost")


def test_importing_the_dataset_needs_no_torch() -> None:
    code = "import sys, elm_core.training; assert not {'torch', 'transformers'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
