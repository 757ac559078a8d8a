"""`elm train finetune`, `elm train pretrain` and the fine-tuning effect benchmark as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from elm_core.qd import LoopConfig
from elm_core.run import create_run, execute_run
from elm_core.sodarace import SimConfig
from elm_core.spec import EmbeddedSpec, EvaluationSpec, MutationSpec, RunSpec
from elm_core.training import MANIFEST_FILE, PROGRAMS_FILE
from services.cli.main import app
from services.cli.train import finetune_effect_command

runner = CliRunner()
GP = RunSpec(mutation=MutationSpec(operator="gp"), evaluation=EvaluationSpec(sim=SimConfig(seconds=4.0)),
             embedded=EmbeddedSpec(workers=2), seeds=("square", "radial"),
             loop=LoopConfig(batch_size=6, pipeline_depth=1, max_evaluations=24))  # fmt: skip
QUICK = ["--model", "tiny", "--max-steps", "2", "--batch-size", "2", "--grad-accumulation-steps", "1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gp") / "run"
    create_run(path, GP)
    execute_run(path)
    return path


def invoke(application: typer.Typer, *args: str | Path) -> str:
    result = runner.invoke(application, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_pretrain_writes_a_checkpoint_and_prints_the_evaluation(
    run_dir: Path, tmp_path: Path, model_cache: Path
) -> None:
    out = tmp_path / "stage2"
    settings = ["--threshold", "0.8", "--from-scratch", "--samples", "2", "--max-new-tokens", "8",
                "--workers", "1"]  # fmt: skip
    printed = invoke(app, "train", "pretrain", "--runs", run_dir, *QUICK, *settings, "--out", out, "--json")
    evaluation = json.loads(printed)  # stdout holds the JSON object alone: progress goes to stderr
    assert evaluation["samples"] == 2 and 0 <= evaluation["coverage"] <= 1 and evaluation["qd_score"] >= 0
    assert evaluation["checkpoint"] == str(out) and 0 <= evaluation["completion_ran_fraction"] <= 1
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["hyperparameters"]["from_scratch"] is True and manifest["metrics"]["steps"] == 2
    assert (out / PROGRAMS_FILE).read_text().count("\n") == manifest["dataset"]["counts"]["programs"]
    again = runner.invoke(app, ["train", "pretrain", "--runs", str(run_dir), "--out", str(out)])
    assert again.exit_code == 2 and "already holds a trained checkpoint" in again.output
    ghost = runner.invoke(app, ["train", "pretrain", "--runs", str(run_dir), "--run-id", "ghost"])
    assert ghost.exit_code == 2 and "no run ghost" in ghost.output


def test_the_effect_of_a_finetuning_side_by_side(run_dir: Path, tmp_path: Path, model_cache: Path) -> None:
    checkpoint = tmp_path / "finetuned"
    trained = invoke(app, "train", "finetune", "--run", run_dir, *QUICK, "--method", "full", "--include-ran",
                     "--out", checkpoint)  # fmt: skip
    assert "checkpoint:" in trained and (checkpoint / MANIFEST_FILE).is_file()
    bench = typer.Typer()  # as `elm bench finetune-effect`
    bench.command("finetune-effect")(finetune_effect_command)
    common = ("--run", run_dir, "--checkpoint", checkpoint, "--parents", "3", "--max-new-tokens", "8",
              "--workers", "1")  # fmt: skip
    table = invoke(bench, *common)
    assert "fine-tuning effect" in table and "applied" in table and "inserted" in table and "tiny" in table
    report = json.loads(invoke(bench, *common, "--json"))
    assert report["base"]["model"] == "tiny" and report["finetuned"]["model"] == str(checkpoint)
    assert report["base"]["counts"]["mutations"] == report["finetuned"]["counts"]["mutations"] == 3


def test_stage_three_from_a_pretrained_model_to_samples_and_the_evaluation(
    run_dir: Path, tmp_path: Path, model_cache: Path
) -> None:
    """The paper's pipeline as a user runs it: stage 2 from a run, stage 3 on it, then sampling and the
    per-terrain evaluation with its report."""
    stage2, stage3 = tmp_path / "stage2", tmp_path / "stage3"
    invoke(app, "train", "pretrain", "--runs", run_dir, *QUICK, "--from-scratch", "--samples", "1",
           "--max-new-tokens", "8", "--workers", "1", "--out", stage2, "--json")  # fmt: skip
    settings = ["--terrains", "flat,tunnel", "--iterations", "2", "--samples-per-iteration", "4",
                "--prompt-warmup-steps", "3",
                "--max-new-tokens", "16", "--micro-batch", "2", "--sim-seconds", "2", "--workers", "1",
                "--threads", "1"]  # fmt: skip
    printed = invoke(app, "train", "invent", "--model", stage2, "--out", stage3, *settings)
    assert "reward per terrain" in printed and "checkpoint:" in printed

    sampled = json.loads(invoke(app, "sample", "--model", stage3, "--terrain", "tunnel", "--n", "2",
                                "--max-new-tokens", "8", "--threads", "1", "--json"))  # fmt: skip
    assert sampled["terrain"] == "tunnel" and len(sampled["programs"]) == 2
    assert all(p.startswith('"""') for p in sampled["programs"])

    report = tmp_path / "stage3.html"
    evaluation = json.loads(invoke(app, "bench", "invent", "--model", stage3, "--n", "2", "--workers", "1",
                                   "--threads", "1", "--report", report, "--json"))  # fmt: skip
    assert evaluation["terrains"] == ["flat", "tunnel"]
    assert set(evaluation["dataset"]["tunnel"]) == {"best", "mean", "walked"}
    assert "Does the conditioning matter?" in report.read_text()

    refused = runner.invoke(app, ["train", "invent", "--model", str(stage2), "--out", str(tmp_path / "x"),
                                  "--terrains", "flat,moon"])  # fmt: skip
    assert refused.exit_code == 2 and "unknown terrain 'moon'" in refused.output
    unconditioned = runner.invoke(app, ["sample", "--model", str(stage2), "--terrain", "flat", "--n", "1"])
    assert unconditioned.exit_code == 2 and "not conditioned on terrains" in unconditioned.output
