"""Stage 3 with the tiny model: the terrain prompt conditions the model, rewards come from the sandboxed
simulator on the sample's terrain, the KL term is taken against the frozen stage-2 model, a step changes the
weights, a stopped training resumes where it stopped and ends as an uninterrupted one, and bad input is a
clear error."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from elm_core.errors import ConfigError, StateError
from elm_core.evaluation import EvaluatorPool
from elm_core.models import tiny_model
from elm_core.sodarace import SimConfig, Terrain, seed_source, simulate
from elm_core.training import (
    INVENT_MANIFEST,
    PROGRAMS_FILE,
    STATE_DIR,
    InventConfig,
    InventionEvaluation,
    IterationReport,
    Scores,
    TerrainSampler,
    dataset_programs,
    evaluate_invention,
    group_advantages,
    invent,
    rewards,
    write_invention_report,
)
from elm_core.training._invent import _Trainer
from elm_core.training._terrain_model import TerrainPrompt, sample_mask

HOSTILE = "</script><script>alert(1)</script>"
QUICK = InventConfig(terrains=("flat", "tunnel"), iterations=3, samples_per_iteration=4, max_new_tokens=24,
                     prompt_warmup_steps=0,
                     micro_batch=2, sim_seconds=2.0, threads=1, prompt_learning_rate=0.05,
                     learning_rate=1e-3)  # fmt: skip


@pytest.fixture
def trainer(tmp_path: Path, model_cache: Path) -> _Trainer:
    return _Trainer(QUICK, "tiny", tmp_path)


def test_the_terrain_prompt_changes_the_next_token_distribution(trainer: _Trainer) -> None:
    policy = trainer.policy
    sample = torch.tensor([[5, 6, 7]])
    mask = torch.ones_like(sample)
    flat, tunnel = (policy.token_logprobs(policy.prompt.ids([t]), trainer.start, sample, mask)
                    for t in ("flat", "tunnel"))  # fmt: skip
    assert not torch.allclose(flat, tunnel)
    unprompted = trainer.reference.token_logprobs(None, trainer.start, sample, mask)
    assert not torch.allclose(flat, unprompted)


def test_rewards_are_the_fitness_on_the_sample_s_terrain(model_cache: Path) -> None:
    square, broken = seed_source("square"), "def make_walker():\n    return 1 / 0\n"
    sim = SimConfig(seconds=4.0)
    with EvaluatorPool(workers=1) as pool:
        on_flat = rewards(
            pool.evaluate([square, broken], sim_config=sim, terrain=Terrain.named("flat")), -10.0
        )
        on_wall = rewards(pool.evaluate([square], sim_config=sim, terrain=Terrain.named("right_wall")), -10.0)
        walker = pool.evaluate([square])[0].walker
    assert walker is not None
    assert on_flat == [simulate(walker, sim, Terrain.named("flat")).fitness, -10.0]
    assert on_wall == [simulate(walker, sim, Terrain.named("right_wall")).fitness]
    assert on_flat[0] > on_wall[0]  # the wall stops it


def test_advantages_are_relative_to_the_terrain_group() -> None:
    assert group_advantages([1.0, 3.0]) == [-1.0, 1.0]
    assert group_advantages([-10.0, -10.0, -10.0]) == [0.0, 0.0, 0.0]  # nothing to learn from a flat group


def test_the_kl_term_is_against_the_frozen_stage2_model_and_a_step_moves_the_weights(
    trainer: _Trainer,
) -> None:
    reference_before = {n: p.clone() for n, p in trainer.reference.named_parameters()}
    policy_before = {n: p.detach().clone() for n, p in trainer.policy.named_parameters()}
    assert trainer.policy.prompt is not None
    ids = trainer.policy.prompt.ids(["flat", "flat"])
    sample = trainer.policy.sample(
        ids, trainer.start, 2, max_new_tokens=8, temperature=1.0, pad_id=trainer.pad_id
    )
    mask = sample_mask(sample, trainer.ends)
    with torch.no_grad():
        logp = trainer.policy.token_logprobs(ids, trainer.start, sample, mask)
        reference = trainer.reference.token_logprobs(None, trainer.start, sample, mask)
    expected_kl = (
        (torch.exp(reference - logp) - (reference - logp) - 1) * mask
    ).sum().item() / mask.sum().item()
    loss, kl = trainer._update([sample], [mask], [ids], torch.tensor([1.0, -1.0]))
    assert kl == pytest.approx(expected_kl, rel=1e-4) and kl > 0  # the soft prompt alone moves it off
    assert all(torch.equal(p, reference_before[n]) for n, p in trainer.reference.named_parameters())
    moved = [n for n, p in trainer.policy.named_parameters() if not torch.equal(p, policy_before[n])]
    assert "prompt.vectors" in moved and any(n.startswith("lm.") for n in moved)


def test_only_the_prompt_learns_when_the_model_is_frozen(tmp_path: Path, model_cache: Path) -> None:
    trainer = _Trainer(dataclasses.replace(QUICK, train_model=False), "tiny", tmp_path)
    assert trainer.reference.lm is trainer.policy.lm  # no copy needed: the LM never changes
    assert [n for n, p in trainer.policy.named_parameters() if p.requires_grad] == ["prompt.vectors"]


class Stop(Exception):
    pass


def test_a_stopped_training_resumes_and_ends_as_an_uninterrupted_one(
    tmp_path: Path, model_cache: Path
) -> None:
    def stop_after_first(report: IterationReport) -> None:
        if report.iteration == 1:
            raise Stop

    with pytest.raises(Stop):
        invent(QUICK, "tiny", tmp_path / "resumed", on_iteration=stop_after_first)
    with pytest.raises(StateError, match="another config"):
        _Trainer(dataclasses.replace(QUICK, kl_coef=0.5), "tiny", tmp_path / "resumed")
    resumed = invent(QUICK, "tiny", tmp_path / "resumed")
    straight = invent(QUICK, "tiny", tmp_path / "straight")
    assert (resumed.resumed_from, resumed.iterations, straight.resumed_from) == (1, 3, 0)
    assert [h["mean_reward"] for h in resumed.history] == [h["mean_reward"] for h in straight.history]
    weights = [load_file(tmp_path / name / "model.safetensors") for name in ("resumed", "straight")]
    assert all(torch.allclose(weights[0][n], weights[1][n], atol=1e-6) for n in weights[1])
    prompts = [TerrainPrompt.load(tmp_path / name) for name in ("resumed", "straight")]
    assert prompts[0] is not None and prompts[1] is not None
    assert torch.allclose(prompts[0].vectors, prompts[1].vectors, atol=1e-6)

    with pytest.raises(Stop):  # stopped, then ended early with fewer iterations
        invent(QUICK, "tiny", tmp_path / "shortened", on_iteration=stop_after_first)
    shortened = invent(dataclasses.replace(QUICK, iterations=1), "tiny", tmp_path / "shortened")
    assert (shortened.iterations, shortened.resumed_from) == (1, 1)
    assert [h["kl"] for h in shortened.history] == [h["kl"] for h in straight.history[:1]]
    again = invent(QUICK, "tiny", tmp_path / "straight")  # finished: nothing to do, the same result
    assert (again.iterations, again.resumed_from, again.history) == (3, 3, straight.history)
    with pytest.raises(StateError, match="another training"):
        invent(dataclasses.replace(QUICK, seed=1), "tiny", tmp_path / "straight")
    manifest = json.loads((tmp_path / "straight" / INVENT_MANIFEST).read_text())
    assert manifest["iterations"] == 3 and len(manifest["history"]) == 3
    assert set(manifest["history"][0]["mean_reward"]) == {"flat", "tunnel"}


def test_the_checkpoint_samples_per_terrain_and_loads_as_a_plain_model(
    tmp_path: Path, model_cache: Path
) -> None:
    invent(dataclasses.replace(QUICK, iterations=1), "tiny", tmp_path)
    sampler = TerrainSampler(tmp_path, threads=1)
    assert sampler.terrains == ("flat", "tunnel")
    programs = sampler.sample(3, terrain="tunnel", max_new_tokens=8, seed=1)
    assert len(programs) == 3 and all(p.startswith('"""') for p in programs)
    assert programs == sampler.sample(3, terrain="tunnel", max_new_tokens=8, seed=1)  # seeded
    with pytest.raises(ConfigError, match="not conditioned on bumpy"):
        sampler.sample(1, terrain="bumpy")
    plain = TerrainSampler("tiny", threads=1)
    with pytest.raises(ConfigError, match="not conditioned on terrains"):
        plain.sample(1, terrain="flat")


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown terrain 'moon'"):
        InventConfig(terrains=("flat", "moon"))
    with pytest.raises(ConfigError, match="multiple of the 2 terrains"):
        InventConfig(terrains=("flat", "tunnel"), samples_per_iteration=5)
    with pytest.raises(ConfigError, match="name each terrain once"):
        InventConfig(terrains=("flat", "flat"))
    with pytest.raises(ConfigError, match="iterations must be an integer"):
        InventConfig(iterations=0)
    with pytest.raises(ConfigError, match="terrains must be terrain names"):
        InventConfig(terrains=(3,))  # type: ignore[arg-type]
    for bad in ({"threads": 0}, {"seed": -1}, {"failure_reward": float("nan")}):
        with pytest.raises(ConfigError):
            InventConfig(**bad)  # type: ignore[arg-type]
    assert InventConfig(terrains="flat,left-wall").terrains == ("flat", "left_wall")  # type: ignore[arg-type]
    (tmp_path / "stage2").mkdir()
    with pytest.raises(StateError, match="no programs.jsonl"):
        dataset_programs(tmp_path / "stage2")
    (tmp_path / "stage2" / "programs.jsonl").write_text(
        json.dumps({"source": "x", "split": "held_out"}) + "\n"
    )
    with pytest.raises(StateError, match="dataset is empty"):
        dataset_programs(tmp_path / "stage2")


@pytest.fixture
def stage2(tmp_path: Path, model_cache: Path) -> Path:
    """A stage-2 checkpoint: the tiny model, with the seed programs as the dataset it was trained on."""
    path = tmp_path / "stage2"
    shutil.copytree(tiny_model(), path)
    rows = [{"source": seed_source(name), "split": "train"} for name in ("square", "radial")]
    (path / PROGRAMS_FILE).write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_the_warm_up_fits_the_terrain_prompts_to_the_stage2_dataset(tmp_path: Path, stage2: Path) -> None:
    cold = _Trainer(QUICK, str(stage2), tmp_path / "cold")
    warm = _Trainer(dataclasses.replace(QUICK, prompt_warmup_steps=30), str(stage2), tmp_path / "warm")
    assert torch.equal(
        warm.reference.lm.model.embed_tokens.weight, cold.reference.lm.model.embed_tokens.weight
    )
    opening = len(cold.start)
    square = torch.tensor([cold.tokenizer(seed_source("square")).input_ids[opening:]])
    mask = torch.ones_like(square)

    def likelihood(trainer: _Trainer) -> float:
        assert trainer.policy.prompt is not None
        ids = trainer.policy.prompt.ids(["flat", "tunnel"])
        with torch.no_grad():
            return float(
                trainer.policy.token_logprobs(
                    ids, trainer.start, square.repeat(2, 1), mask.repeat(2, 1)
                ).sum()
            )

    assert likelihood(warm) > likelihood(cold)  # the warmed prompts read like the start of a program
    for name, p in warm.policy.lm.named_parameters():  # the LM itself did not move
        assert torch.equal(p, dict(cold.policy.lm.named_parameters())[name])
    with pytest.raises(StateError, match="no programs.jsonl"):
        _Trainer(dataclasses.replace(QUICK, prompt_warmup_steps=1), "tiny", tmp_path / "no-dataset")


def test_the_evaluation_compares_the_three_sources_per_terrain(tmp_path: Path, stage2: Path) -> None:
    invent(dataclasses.replace(QUICK, iterations=1), stage2, tmp_path / "stage3")
    evaluation = evaluate_invention(tmp_path / "stage3", n=3, workers=1, threads=1)
    assert evaluation.terrains == ("flat", "tunnel") and evaluation.n == 3
    for terrain in evaluation.terrains:
        dataset = evaluation.dataset[terrain]
        assert dataset.walked == 1.0 and dataset.best > dataset.mean - 1e-9  # the seeds all walk
        assert 0.0 <= evaluation.conditioned[terrain].walked <= 1.0
        assert set(evaluation.cross[terrain]) == {"flat", "tunnel"}
    assert evaluation.cross["flat"]["flat"] == evaluation.conditioned["flat"].mean
    json.dumps(evaluation.to_json())  # --json


def test_the_report_animates_each_terrain_s_champion_on_its_terrain(
    tmp_path: Path, seed_walkers: dict
) -> None:
    scores = {t: Scores(best=3.0, mean=1.0, walked=0.5) for t in ("flat", "tunnel")}
    square = {"fitness": 3.0, "program": f"# {HOSTILE}\n" + seed_source("square"),
              "walker": seed_walkers["square"].to_dict()}  # fmt: skip
    cross = {"flat": {"flat": 1.0, "tunnel": -2.0}, "tunnel": {"flat": 0.5, "tunnel": 1.5}}
    evaluation = InventionEvaluation(n=4, terrains=("flat", "tunnel"), sim_seconds=2.0, conditioned=scores,
                                     stage2_model=scores, dataset=scores, cross=cross,
                                     champions={"flat": square, "tunnel": {}})  # fmt: skip
    page = write_invention_report(evaluation, tmp_path / "report.html").read_text()
    assert page.count('<img src="data:image/gif;base64,') == 1  # flat's champion; tunnel had none
    assert "No conditioned sample walked on this terrain" in page
    assert HOSTILE not in page and "&lt;/script&gt;" in page


RUN_SLOWLY = """
import sys, time
from elm_core.training import InventConfig, invent
config = InventConfig(**{config})
invent(config, "tiny", sys.argv[1], on_iteration=lambda report: time.sleep(0.5))
"""


def test_a_killed_training_resumes_from_its_last_iteration(tmp_path: Path, model_cache: Path) -> None:
    """SIGKILL (the whole process group, its sandboxes too) once an iteration is saved; the same call on the
    same directory resumes there and ends as an uninterrupted training."""
    out = tmp_path / "killed"
    script = RUN_SLOWLY.format(config=repr(QUICK.to_json() | {"terrains": QUICK.terrains}))
    process = subprocess.Popen([sys.executable, "-c", script, str(out)], start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list((out / STATE_DIR).glob("step-*")) and process.poll() is None:
            assert time.monotonic() < deadline, "no state was saved"
            time.sleep(0.02)
        assert process.poll() is None, "the training ended before it could be killed"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    resumed = invent(QUICK, "tiny", out)
    straight = invent(QUICK, "tiny", tmp_path / "straight")
    assert 1 <= resumed.resumed_from < 3 and resumed.iterations == 3
    assert [h["kl"] for h in resumed.history] == pytest.approx([h["kl"] for h in straight.history], rel=1e-5)
    weights = [load_file(tmp_path / name / "model.safetensors") for name in ("killed", "straight")]
    assert all(torch.allclose(weights[0][n], weights[1][n], atol=1e-6) for n in weights[1])
