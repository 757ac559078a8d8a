"""Fine-tuning the tiny model on a real GP run's mutations: the loss falls, full and LoRA checkpoints load and
generate, the manifest tells what was done, a killed training resumes exactly, early stopping stops."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from elm_core.errors import ConfigError, StateError
from elm_core.models import HFGenerator, Prompt, SamplingConfig, cache_dir, load_generator
from elm_core.mutation._prompts import PromptStyle
from elm_core.store import SQLiteStore
from elm_core.training import (
    MANIFEST_FILE,
    STATE_DIR,
    Dataset,
    FinetuneMethod,
    StepReport,
    TrainConfig,
    build_dataset,
    finetune,
    write_dataset,
)

# diff-layout examples are the shortest (~500 tokens): a step of the tiny model takes a fraction of a second
QUICK = TrainConfig(base_model="tiny", method=FinetuneMethod.FULL, learning_rate=3e-3, batch_size=2,
                    grad_accumulation_steps=1, max_steps=24, eval_every_steps=8, checkpoint_every_steps=8,
                    early_stopping_patience=None, threads=1)  # fmt: skip


@pytest.fixture(scope="module")
def dataset(gp_store: tuple[SQLiteStore, str]) -> Dataset:
    """The examples of a short real GP run: every mutation whose child ran, in the diff layout."""
    store, run_id = gp_store
    made = build_dataset(store, run_id, include_ran=True, validation_fraction=0.2, style=PromptStyle.DIFF)
    assert len(made.train) >= 6 and made.validation
    return made


@pytest.fixture(scope="module")
def dataset_dir(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(dataset, tmp_path_factory.mktemp("dataset"))


@pytest.fixture
def base(tiny_generator: HFGenerator) -> dict[str, torch.Tensor]:
    """The tiny base model's weights, as stored in the (test-private) model cache."""
    return load_file(cache_dir() / "tiny" / "model.safetensors")


def generates(path: Path) -> None:
    generator = load_generator(str(path))
    prompt = Prompt(text="<NME> walker.py\n<BEF> ")
    (generation,) = generator.generate([prompt], SamplingConfig(max_new_tokens=8))
    assert generation.completion_tokens > 0


def test_full_finetuning_lowers_the_loss_and_writes_a_loadable_checkpoint(
    dataset: Dataset, base: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    reports: list[StepReport] = []
    result = finetune(QUICK, dataset, tmp_path / "full", on_step=reports.append)
    assert [r.step for r in reports] == list(range(1, 25)) and result.steps == 24
    losses = [r.train_loss for r in reports]
    assert losses[-1] < 0.6 * losses[0]
    validation = [r.validation_loss for r in reports if r.validation_loss is not None]
    assert len(validation) == 3 and validation[-1] < validation[0]
    trained = load_file(tmp_path / "full" / "model.safetensors")
    assert all(not torch.equal(trained[name], weight) for name, weight in base.items())  # every one trained
    assert not (tmp_path / "full" / STATE_DIR).exists()
    generates(tmp_path / "full")


def test_lora_is_merged_into_a_plain_checkpoint(
    dataset: Dataset, base: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    config = dataclasses.replace(QUICK, method=FinetuneMethod.LORA, lora_r=4, learning_rate=1e-2,
                                 max_steps=12, lora_target_modules=("q_proj", "v_proj"))  # fmt: skip
    result = finetune(config, dataset, tmp_path / "lora")
    assert result.metrics["train_loss_last"] < result.metrics["train_loss_first"]
    assert not (tmp_path / "lora" / "adapter_config.json").exists()
    trained = load_file(tmp_path / "lora" / "model.safetensors")
    assert trained.keys() == base.keys()
    changed = {name for name, weight in base.items() if not torch.equal(trained[name], weight)}
    assert changed == {n for n in base if n.endswith(("q_proj.weight", "v_proj.weight"))}  # the adapted ones
    generates(tmp_path / "lora")


def test_the_manifest_records_the_data_the_settings_and_the_figures(dataset: Dataset, tmp_path: Path) -> None:
    config = dataclasses.replace(QUICK, max_steps=3, eval_every_steps=2)
    result = finetune(config, dataset, tmp_path / "out", job_id="j1")
    manifest = json.loads((tmp_path / "out" / MANIFEST_FILE).read_text())
    assert (manifest["job_id"], manifest["run_id"], manifest["base_model"], manifest["method"]) == (
        "j1", dataset.run_id, "tiny", "full")  # fmt: skip
    assert manifest["dataset"] == {"sha256": dataset.sha256, "counts": dataclasses.asdict(dataset.counts)}
    assert manifest["hyperparameters"] == json.loads(json.dumps(config.to_json()))
    assert (manifest["device"], manifest["dtype"]) == ("cpu", "float32")
    assert time.time() - 60 < manifest["created_at"] <= time.time()
    metrics = manifest["metrics"]
    assert metrics == result.metrics and metrics["steps"] == 3 and metrics["resumed_from_step"] == 0
    assert metrics["train_examples"] == len(dataset.train) and metrics["skipped_overlong"] == 0
    assert metrics["best_validation_loss"] > 0 and metrics["train_loss_first"] > 0
    assert metrics["tokens_per_s"] > metrics["completion_tokens_per_s"] > 0
    assert metrics["wall_s"] > metrics["train_s"] > 0 and "peak_gpu_memory_mb" not in metrics


RUN_SLOWLY = """
import sys, time
from elm_core.training import TrainConfig, finetune
config = TrainConfig(**{config})
finetune(config, sys.argv[1], sys.argv[2], on_step=lambda report: time.sleep(0.2))
"""


def killed_after_a_checkpoint(config: TrainConfig, data: Path, out: Path) -> None:
    """Runs `finetune` in a process slowed to 0.2 s a step, and SIGKILLs it once it saved a state."""
    script = RUN_SLOWLY.format(config=repr(config.to_json()))
    process = subprocess.Popen([sys.executable, "-c", script, str(data), str(out)], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while not list((out / STATE_DIR).glob("step-*")) and process.poll() is None:
            assert time.monotonic() < deadline, "no state was saved"
            time.sleep(0.02)
        assert process.poll() is None, "the training ended before it could be killed"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def test_a_killed_training_resumes_from_its_last_state_and_ends_as_an_uninterrupted_one(
    dataset_dir: Path, tmp_path: Path
) -> None:
    lora = dataclasses.replace(QUICK, method=FinetuneMethod.LORA, lora_r=4, learning_rate=1e-2, max_steps=12,
                               checkpoint_every_steps=2)  # fmt: skip
    killed_after_a_checkpoint(lora, dataset_dir, tmp_path / "resumed")
    resumed = finetune(lora, dataset_dir, tmp_path / "resumed")
    assert 0 < resumed.resumed_from_step < 12 and resumed.steps == 12
    straight = finetune(lora, dataset_dir, tmp_path / "straight")
    for figure in ("train_loss_first", "train_loss_last", "best_validation_loss"):
        assert resumed.metrics[figure] == pytest.approx(straight.metrics[figure], rel=1e-5)
    weights = [load_file(tmp_path / name / "model.safetensors") for name in ("resumed", "straight")]
    assert all(torch.allclose(weights[0][n], weights[1][n], atol=1e-6) for n in weights[1])


class Stop(Exception):
    pass


def stop_at(step: int) -> Callable[[StepReport], None]:
    def on_step(report: StepReport) -> None:
        if report.step == step:
            raise Stop

    return on_step


def test_a_stop_saves_the_state_and_another_config_refuses_it(dataset: Dataset, tmp_path: Path) -> None:
    config = dataclasses.replace(QUICK, max_steps=6, checkpoint_every_steps=100)
    with pytest.raises(Stop):
        finetune(config, dataset, tmp_path, on_step=stop_at(3))
    assert [p.name for p in (tmp_path / STATE_DIR).iterdir()] == ["step-00000003"]
    with pytest.raises(StateError, match="another config or dataset"):
        finetune(dataclasses.replace(config, learning_rate=1e-3), dataset, tmp_path)
    assert finetune(config, dataset, tmp_path).resumed_from_step == 3


def test_early_stopping_ends_a_training_whose_validation_loss_stops_improving(
    dataset: Dataset, tmp_path: Path
) -> None:
    frozen = dataclasses.replace(QUICK, learning_rate=0.0, max_steps=20, eval_every_steps=2,
                                 early_stopping_patience=1)  # fmt: skip
    reports: list[StepReport] = []
    result = finetune(frozen, dataset, tmp_path, on_step=reports.append)
    assert result.stopped_early and result.steps == 4  # evaluated at 2 (the best) and 4 (no better)
    first, second = (r.validation_loss for r in reports if r.validation_loss is not None)
    assert first == second == result.metrics["best_validation_loss"]


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"method": "prefix"}, "method must be full or lora"),
        ({"learning_rate": -1.0}, "learning_rate must be a finite number >= 0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"max_steps": 2.5}, "max_steps must be an integer >= 1"),
        ({"early_stopping_patience": 0}, "early_stopping_patience must be an integer >= 1"),
        ({"lora_dropout": 1.0}, "lora_dropout must be below 1"),
        ({"lora_target_modules": "q_proj"}, "lora_target_modules must be a list"),
        ({"dtype": "int8"}, "dtype must be one of auto, float32, bfloat16"),
    ],
)
def test_bad_settings_name_the_setting(settings: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        TrainConfig(**settings)  # type: ignore[arg-type]


def test_a_dataset_without_any_example_that_fits_is_refused(dataset: Dataset, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no training example fits in max_seq_tokens=16"):
        finetune(dataclasses.replace(QUICK, max_seq_tokens=16), dataset, tmp_path)
    with pytest.raises(StateError, match="has no training examples"):
        finetune(QUICK, dataclasses.replace(dataset, train=()), tmp_path)


def test_bfloat16_training_writes_a_bfloat16_checkpoint(dataset: Dataset, tmp_path: Path) -> None:
    for method in FinetuneMethod:
        config = dataclasses.replace(QUICK, method=method, dtype="bfloat16", max_steps=2)
        finetune(config, dataset, tmp_path / method)
        assert json.loads((tmp_path / method / MANIFEST_FILE).read_text())["dtype"] == "bfloat16"
        weights = load_file(tmp_path / method / "model.safetensors")
        assert {w.dtype for w in weights.values()} == {torch.bfloat16}
        generates(tmp_path / method)
