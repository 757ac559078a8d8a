"""Stage 2: the programs runs admitted to their maps, kept near their cells' best; a tiny model trained on
them from its base weights or from scratch; and the model sampled into a fresh map."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from elm_core.errors import ConfigError
from elm_core.models import HFGenerator, Prompt, SamplingConfig, cache_dir, load_generator
from elm_core.qd import ArchiveConfig, LoopConfig
from elm_core.run import STORE_FILE, create_run, execute_run
from elm_core.sodarace import SimConfig
from elm_core.spec import EmbeddedSpec, EvaluationSpec, MutationSpec, RunSpec
from elm_core.store import IndividualRecord, SQLiteStore
from elm_core.training import (
    MANIFEST_FILE,
    PROGRAMS_FILE,
    EliteProgram,
    FinetuneMethod,
    PretrainConfig,
    TrainConfig,
    elite_programs,
    evaluate_pretrained,
    pretrain,
    split_programs,
)

GP = RunSpec(mutation=MutationSpec(operator="gp"), evaluation=EvaluationSpec(sim=SimConfig(seconds=4.0)),
             embedded=EmbeddedSpec(workers=2), seeds=("square", "radial", "cppn_fixed"),
             loop=LoopConfig(batch_size=6, pipeline_depth=1, max_evaluations=30))  # fmt: skip
QUICK = TrainConfig(base_model="tiny", method=FinetuneMethod.FULL, learning_rate=3e-3, batch_size=2,
                    grad_accumulation_steps=1, max_steps=10, eval_every_steps=5, checkpoint_every_steps=100,
                    early_stopping_patience=None, threads=1)  # fmt: skip
Runs = list[tuple[SQLiteStore, str]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Two short real GP runs with different seeds, and the same archive config."""
    root = tmp_path_factory.mktemp("gp")
    for seed in (0, 1):
        create_run(root / f"run{seed}", GP.replace(rng_seed=seed))
        execute_run(root / f"run{seed}")
    stores = [SQLiteStore(root / f"run{seed}" / STORE_FILE) for seed in (0, 1)]
    yield [(store, store.list_runs()[0].run_id) for store in stores]
    for store in stores:
        store.close()


def admitted_by_hand(store: SQLiteStore, run_id: str) -> list[IndividualRecord]:
    """Children the log marks inserted; seeds (all evaluated first, in one batch) that no earlier seed of
    their cell beat or tied."""
    inserted = {m.child_id for m in store.mutations(run_id) if m.inserted}
    individuals = store.individuals(run_id)
    seeds = [r for r in individuals if r.parent_id is None and r.status == "OK"]
    admitted_seeds = [s for k, s in enumerate(seeds)
                      if all(t.cell != s.cell or t.fitness < s.fitness for t in seeds[:k])]  # fmt: skip
    return admitted_seeds + [r for r in individuals if r.individual_id in inserted]


def expected_sources(runs: Runs, threshold: float) -> dict[str, float]:
    """source -> fitness of the admitted programs at >= threshold of their cell's best over both runs (the
    cells as the runs stored them: both have the same archive config)."""
    admitted = [r for store, run_id in runs for r in admitted_by_hand(store, run_id)]
    best: dict[int, float] = {}
    for r in admitted:
        assert r.cell is not None and r.fitness is not None
        best[r.cell] = max(best.get(r.cell, -1e9), r.fitness)
    kept: dict[str, float] = {}
    for r in admitted:
        assert r.cell is not None and r.fitness is not None
        if r.fitness >= best[r.cell] - (1 - threshold) * abs(best[r.cell]):
            kept[r.source] = max(kept.get(r.source, -1e9), r.fitness)
    return kept


def test_programs_are_kept_against_their_cells_best_across_runs(runs: Runs) -> None:
    for store, run_id in runs:  # the hand count finds every elite the runs hold now
        elites = {e.individual_id for e in store.elites(run_id)}
        assert elites <= {r.individual_id for r in admitted_by_hand(store, run_id)}
    for threshold in (0.0, 0.5, 0.8, 1.0):
        programs = elite_programs(runs, threshold)
        assert {p.source: p.fitness for p in programs} == expected_sources(runs, threshold)
        assert len({p.source for p in programs}) == len(programs)  # each source once
        assert all(p.fitness >= p.cell_best - (1 - threshold) * abs(p.cell_best) for p in programs)
    half, most, best = (elite_programs(runs, t) for t in (0.5, 0.8, 1.0))
    assert {p.source for p in best} <= {p.source for p in most} <= {p.source for p in half}
    assert len(best) < len(half) and {p.run_id for p in half} == {run_id for _, run_id in runs}
    cells = {r.cell for store, run_id in runs for r in admitted_by_hand(store, run_id)}
    assert {p.cell for p in best} == cells  # every cell keeps its best


def test_a_run_given_twice_adds_no_program(runs: Runs) -> None:
    once = elite_programs(runs[:1], 0.5)
    assert elite_programs([runs[0], runs[0]], 0.5) == once


def test_runs_with_other_archive_configs_and_bad_thresholds_are_refused(runs: Runs, tmp_path: Path) -> None:
    create_run(tmp_path / "coarse", GP.replace(archive=ArchiveConfig(dims=(6, 6, 6))))
    with SQLiteStore(tmp_path / "coarse" / STORE_FILE) as coarse, pytest.raises(ConfigError, match="another"):
        elite_programs([runs[0], (coarse, coarse.list_runs()[0].run_id)], 0.5)
    for threshold in (-0.1, 1.5, True):
        with pytest.raises(ConfigError, match="threshold must be a number in"):
            elite_programs(runs, threshold)


@pytest.fixture(scope="module")
def programs(runs: Runs) -> list[EliteProgram]:
    return elite_programs(runs, 0.5)


def test_pretraining_lowers_the_loss_and_writes_a_loadable_checkpoint(
    programs: list[EliteProgram], tmp_path: Path, model_cache: Path
) -> None:
    config = PretrainConfig(train=QUICK, held_out_fraction=0.2)
    result = pretrain(config, programs, tmp_path)
    assert result.steps == 10 and result.metrics["train_loss_last"] < 0.8 * result.metrics["train_loss_first"]
    train, held_out = split_programs(programs, 0.2)
    assert train and held_out and result.metrics["validation_examples"] == len(held_out)
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert manifest["base_model"] == "tiny" and manifest["hyperparameters"]["from_scratch"] is False
    assert manifest["dataset"]["counts"] == {"programs": len(programs), "train": len(train),
                                             "validation": len(held_out)}  # fmt: skip
    rows = [json.loads(line) for line in (tmp_path / PROGRAMS_FILE).read_text().splitlines()]
    assert [(r["source"], r["split"]) for r in rows] == [(p.source, "train") for p in train] + [
        (p.source, "held_out") for p in held_out
    ]
    (generation,) = load_generator(str(tmp_path)).generate([Prompt(text="def make_walker():\n")],
                                                           SamplingConfig(max_new_tokens=8))  # fmt: skip
    assert generation.completion_tokens > 0


def test_from_scratch_starts_from_fresh_weights_in_the_same_architecture(
    programs: list[EliteProgram], tmp_path: Path, tiny_generator: HFGenerator
) -> None:
    frozen = dataclasses.replace(QUICK, learning_rate=0.0, max_steps=1, seed=1)  # tiny itself was seed 0's
    base = load_file(cache_dir() / "tiny" / "model.safetensors")
    for from_scratch in (False, True):
        config = PretrainConfig(train=dataclasses.replace(frozen, from_scratch=from_scratch))
        pretrain(config, programs, tmp_path / str(from_scratch))
        trained = load_file(tmp_path / str(from_scratch) / "model.safetensors")
        assert trained.keys() == base.keys()
        changed = {name for name in base if not torch.equal(trained[name], base[name])}
        matrices = {name for name, weight in base.items() if weight.dim() == 2}  # norms start at 1 in both
        assert changed == (matrices if from_scratch else set())
    with pytest.raises(ConfigError, match="from_scratch trains every weight"):
        dataclasses.replace(QUICK, method=FinetuneMethod.LORA, from_scratch=True)
    with pytest.raises(ConfigError, match="held_out_fraction"):
        PretrainConfig(held_out_fraction=1.0)


def test_the_evaluation_samples_into_a_fresh_map_and_completes_held_out_walkers(
    programs: list[EliteProgram], tiny_generator: HFGenerator
) -> None:
    held_out = [p.source for p in programs[:3]]
    evaluation = evaluate_pretrained(cache_dir() / "tiny", archive_config=GP.archive, samples=4,
                                     held_out=held_out, sampling=SamplingConfig(max_new_tokens=16),
                                     sim_config=SimConfig(seconds=4.0), evaluator_workers=2)  # fmt: skip
    assert (evaluation.samples, evaluation.completions, evaluation.cells) == (4, 3, 1728)
    assert 0 <= evaluation.filled <= evaluation.samples_ran <= evaluation.samples
    assert evaluation.coverage == evaluation.filled / 1728 and evaluation.qd_score >= 0
    assert 0 <= evaluation.completions_ran <= 3 and 0 <= evaluation.completion_ran_fraction <= 1
    figures = evaluation.to_json()
    assert figures["completion_ran_fraction"] == evaluation.completion_ran_fraction
    with pytest.raises(ConfigError, match="samples must be"):
        evaluate_pretrained(cache_dir() / "tiny", archive_config=GP.archive, samples=0)
