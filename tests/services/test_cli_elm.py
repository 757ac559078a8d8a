"""`elm run`, `elm report`, `elm mutate`, `elm model` and `elm bench bugfix` as a user runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from elm_core.run import STORE_FILE
from elm_core.sodarace import SimConfig, Terrain, Walker, simulate
from elm_core.store import RunStatus, SQLiteStore
from services.cli.main import app

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_short_gp_run_writes_a_report_of_a_map_with_several_cells(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    output = invoke("run", "--operator", "gp", "--seed", "square", "--seed", "radial", "--budget", "60",
                    "--workers", "2", "--out", str(run_dir))  # fmt: skip
    assert "FINISHED" in output and "report.html" in output
    with SQLiteStore(run_dir / STORE_FILE) as store:
        (run,) = store.list_runs()
        elites = store.elites(run.run_id)
    assert run.status is RunStatus.FINISHED and run.evaluations == 60 and len(elites) > 1
    page = (run_dir / "report.html").read_text()
    assert "<svg" in page and "data:image/gif;base64," in page
    assert json.loads((run_dir / "config.json").read_text())["mutation"]["operator"] == "gp"

    invoke("run", "--resume", str(run_dir), "--budget", "72")
    with SQLiteStore(run_dir / STORE_FILE) as store:
        assert store.list_runs()[0].evaluations == 72
    (run_dir / "report.html").unlink()
    assert "wrote" in invoke("report", str(run_dir)) and (run_dir / "report.html").is_file()


def test_a_run_settings_file_and_bad_settings(tmp_path: Path) -> None:
    settings = tmp_path / "run.toml"
    settings.write_text('operator = "gp"\nseeds = ["radial"]\n[loop]\nmax_evaluations = 12\nbatch_size = 4\n')
    invoke("run", "--config", str(settings), "--workers", "1", "--out", str(tmp_path / "r"))
    assert json.loads((tmp_path / "r" / "config.json").read_text())["loop"]["batch_size"] == 4
    settings.write_text("[loop]\nbatch_sise = 4\n")
    result = runner.invoke(app, ["run", "--config", str(settings), "--out", str(tmp_path / "bad")])
    assert result.exit_code == 2 and "batch_sise" in result.output
    result = runner.invoke(app, ["run", "--operator", "gp", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--resume" in result.output


def test_a_missing_model_falls_back_to_gp_or_fails_when_asked(tmp_path: Path, model_cache: Path) -> None:
    result = runner.invoke(app, ["run", "--model", "diff-codegen-350m", "--budget", "8", "--workers", "1",
                                 "--out", str(tmp_path / "r"), "--no-fallback-gp"])  # fmt: skip
    assert result.exit_code == 2 and "diff-codegen-350m" in result.output


def test_mutate_with_gp_prints_children_as_json() -> None:
    lines = invoke("mutate", "square", "--operator", "gp", "--n", "3", "--json").strip().splitlines()
    children = [json.loads(line) for line in lines]
    assert len(children) == 3 and all(c["operator"] == "gp" for c in children)
    assert all((c["source"] is not None) == (c["outcome"] == "OK") for c in children)


def test_mutate_with_the_tiny_model(model_cache: Path) -> None:
    output = invoke("mutate", "square", "--model", "tiny", "--n", "2", "--max-new-tokens", "8", "--json")
    assert [json.loads(line)["operator"] for line in output.strip().splitlines()] == ["paper", "paper"]


def test_model_list_shows_the_registry(model_cache: Path) -> None:
    models = {m["name"]: m for m in map(json.loads, invoke("model", "list", "--json").strip().splitlines())}
    assert models["qwen2.5-coder-0.5b"]["license"] == "Apache-2.0"
    assert models["qwen2.5-coder-0.5b"]["cached"] is False  # the test's own empty cache
    assert "models (cache:" in invoke("model", "list")


def test_bench_bugfix_gp_rows() -> None:
    rows = json.loads(
        invoke("bench", "bugfix", "--operator", "gp", "--bugs", "1,5", "--trials", "6", "--json")
    )
    assert [(r["operator"], r["bugs"], r["trials"]) for r in rows] == [("gp", 1, 6), ("gp", 5, 6)]
    assert all(0 <= r["solved"] <= r["ran"] <= r["applied"] <= 6 for r in rows)
    assert re.search("1-5", runner.invoke(app, ["bench", "bugfix", "--bugs", "x"]).output)


def test_a_run_on_the_tunnel_from_flags_is_simulated_there(tmp_path: Path) -> None:
    run_dir = tmp_path / "tunnel"
    output = invoke("run", "--operator", "gp", "--terrain", "tunnel", "--sim-seconds", "3", "--budget", "8",
                    "--batch-size", "4", "--workers", "1", "--out", str(run_dir))  # fmt: skip
    assert "tunnel terrain, 3 s" in output
    assert json.loads((run_dir / "config.json").read_text())["evaluation"]["terrain"] == "tunnel"
    with SQLiteStore(run_dir / STORE_FILE) as store:
        (run,) = store.list_runs()
        walked = [i for i in store.individuals(run.run_id) if i.fitness is not None]
    assert walked
    for individual in walked:
        walker = Walker.from_dict(json.loads(individual.walker_json))
        assert individual.fitness == simulate(walker, SimConfig(seconds=3.0), Terrain.named("tunnel")).fitness


def test_the_operator_mix_and_call_budget_from_flags(tmp_path: Path) -> None:
    settings = tmp_path / "run.toml"
    settings.write_text("[mutation.operators]\nreach = 1\n")
    flags = ["--mix", "directed=3,paper=1", "--calls", "5", "--operator", "gp", "--workers", "1"]
    result = runner.invoke(app, ["run", "--config", str(settings), *flags, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    stored = json.loads((tmp_path / "r" / "config.json").read_text())
    assert stored["mutation"]["operators"] == {"directed": 3.0, "crossover": 0.0, "paper": 1.0, "reach": 1,
                                               "moves": "axis", "crossover_programs": [2, 3]}  # fmt: skip
    assert stored["loop"]["max_mutations"] == 5
    with SQLiteStore(tmp_path / "r" / STORE_FILE) as store:
        (run,) = store.list_runs()
        assert sum(store.mutation_outcome_counts(run.run_id).values()) == 5
    for bad, says in (("sideways", "sideways"), ("directed=lots", "number"), ("paper=0", "not all 0")):
        result = runner.invoke(app, ["run", "--mix", bad, "--operator", "gp", "--out", str(tmp_path / bad)])
        assert result.exit_code == 2 and says in result.output, result.output
