"""The `elm` command as a user runs it: real programs, real files, real output."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from elm_core.sodarace import seed_source
from services.cli.main import app

runner = CliRunner()


@pytest.fixture
def square_program(tmp_path):
    path = tmp_path / "square.py"
    path.write_text(seed_source("square"))
    return path


def test_simulate_json_has_the_documented_schema(square_program):
    result = runner.invoke(app, ["simulate", str(square_program), "--seconds", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) >= {"status", "fitness", "descriptors", "walker", "steps"}
    assert report["status"] == "OK"
    assert isinstance(report["fitness"], float)
    assert set(report["descriptors"]) == {"height", "width", "mass"}
    assert report["steps"] == 240
    assert len(report["walker"]["joints"]) == 5


def test_simulate_accepts_a_walker_json_and_a_seed_name(tmp_path, seed_walkers):
    walker = seed_walkers["radial"]
    path = tmp_path / "radial.json"
    path.write_text(json.dumps(walker.to_dict()))
    from_json = json.loads(runner.invoke(app, ["simulate", str(path), "--seconds", "2", "--json"]).stdout)
    from_seed = json.loads(runner.invoke(app, ["simulate", "radial", "--seconds", "2", "--json"]).stdout)
    assert from_json["fitness"] == from_seed["fitness"]


def test_simulate_reports_a_broken_program_as_a_typed_status(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("def make_walker(:\n")
    result = runner.invoke(app, ["simulate", str(path), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "SYNTAX_ERROR"
    assert report["fitness"] is None


def test_simulate_reports_an_invalid_walker_naming_the_rule(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"joints": [[0, 0], [0, 0.01]], "muscles": [[0, 1, {"type": "distance"}]]}))
    report = json.loads(runner.invoke(app, ["simulate", str(path), "--json"]).stdout)
    assert report["status"] == "INVALID_WALKER"
    assert "joints_too_close" in report["message"]


def test_simulate_prints_a_readable_table(square_program):
    result = runner.invoke(
        app, ["simulate", str(square_program), "--seconds", "1", "--terrain", "right-wall"]
    )
    assert result.exit_code == 0, result.output
    assert "fitness" in result.stdout and "mass" in result.stdout


def test_unknown_terrain_and_missing_file_are_clear_errors(square_program):
    bad_terrain = runner.invoke(app, ["simulate", str(square_program), "--terrain", "lava"])
    assert bad_terrain.exit_code == 2
    assert "unknown terrain" in bad_terrain.output
    missing = runner.invoke(app, ["simulate", "no_such_walker.py"])
    assert missing.exit_code == 2
    assert "neither a file nor a seed" in missing.output


@pytest.mark.parametrize("suffix", [".gif", ".png", ".html"])
def test_render_writes_the_requested_format(tmp_path, square_program, suffix):
    out = tmp_path / f"square{suffix}"
    result = runner.invoke(app, ["render", str(square_program), "--out", str(out), "--seconds", "1"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0
    if suffix != ".html":
        with Image.open(out) as image:
            assert image.format == suffix[1:].upper()


def test_gallery_writes_animations_and_a_summary_page(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["gallery", "square", "radial", "--out", str(out), "--seconds", "1"])
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    for name in ("square", "radial"):
        assert f"{name}.gif" in page
        assert (out / f"{name}.gif").stat().st_size > 0
        assert (out / f"{name}.html").is_file()


def test_bench_sim_prints_rows_with_the_ratios(tmp_path, square_program):
    result = runner.invoke(
        app, ["bench", "sim", "--walker", str(square_program), "--steps", "50", "--repeat", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["walker"] == "square"
    assert row["floor_us"] > 0 and row["fast_us"] > 0 and row["naive_us"] > 0
    assert row["speedup_over_naive"] == pytest.approx(row["naive_us"] / row["fast_us"])


def test_sandbox_prints_the_outcome_as_json(tmp_path, square_program):
    result = runner.invoke(app, ["sandbox", str(square_program), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "OK"
    assert len(report["walker"]["joints"]) == 5
    assert report["timings"]["total_ms"] > 0
    hostile = tmp_path / "hostile.py"
    hostile.write_text("import os\ndef make_walker():\n    os.system('true')\n")
    result = runner.invoke(app, ["sandbox", str(hostile), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "FORBIDDEN_OPERATION"


def test_sandbox_doctor_lists_every_layer():
    from elm_core.sandbox import Layer

    result = runner.invoke(app, ["sandbox", "--doctor", "--json"])
    assert result.exit_code == 0, result.output
    layers = json.loads(result.stdout)
    assert set(layers) == {layer.value for layer in Layer}
    assert layers["seccomp"]["active"] is True  # libseccomp is a dependency; the kernel allows filters


def test_model_pull_tiny_builds_it_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ELM_MODEL_CACHE", str(tmp_path))
    result = runner.invoke(app, ["model", "pull", "tiny"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tiny" / "config.json").is_file() and "tiny is ready" in result.stdout
    again = runner.invoke(app, ["model", "pull", "tiny"])  # already there: nothing to do
    assert again.exit_code == 0 and "tiny is ready" in again.stdout
