"""The run spec: nested sections from TOML, errors that name the setting, runs stored in the flat layout."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from elm_core.errors import ConfigError
from elm_core.qd import OperatorMix
from elm_core.sodarace import SimConfig
from elm_core.spec import EmbeddedSpec, EvaluationSpec, MutationSpec, RunSpec, run_spec
from elm_core.store import SQLiteStore

NESTED = """
seeds = ["square", "radial"]

[evaluation]
terrain = "tunnel"

[evaluation.sim]
seconds = 4.0
friction = 0.5

[mutation]
operator = "llm"
style = "diff"

[mutation.sampling]
temperature = 0.3

[mutation.operators]
directed = 2.0
paper = 1.0

[loop]
batch_size = 4

[embedded]
workers = 1
"""


def test_a_nested_toml_spec_decodes_into_its_sections() -> None:
    spec = RunSpec.from_mapping(tomllib.loads(NESTED))
    assert spec.evaluation == EvaluationSpec(terrain="tunnel", sim=SimConfig(seconds=4.0, friction=0.5))
    assert (spec.mutation.style, spec.mutation.sampling.temperature) == ("diff", 0.3)
    assert spec.mutation.operators == OperatorMix(directed=2.0, paper=1.0)
    assert (spec.loop.batch_size, spec.embedded, spec.seeds) == (
        4,
        EmbeddedSpec(workers=1),
        ("square", "radial"),
    )
    assert RunSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"evaluation": {"sim": {"warp": 9}}}, "unknown [evaluation.sim]: warp"),
        ({"evaluation": {"sim": {"seconds": -1}}}, "SimConfig.seconds"),
        ({"evaluation": {"terrain": "lava"}}, "unknown terrain 'lava'"),
        ({"mutation": {"sampling": 3}}, "[mutation.sampling] must be a table"),
        ({"mutation": {"operator": "magic"}}, "[mutation] operator"),
        ({"mutation": {"style": "poetry"}}, "[mutation] style"),
        ({"embedded": {"backend": "abacus"}}, "[embedded] backend"),
        ({"colour": "red"}, "unknown run settings: colour"),
        ({"loop": {"batch_size": "many"}}, "batch_size"),
    ],
)
def test_a_bad_setting_is_a_config_error_that_names_it(values: dict, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RunSpec.from_mapping(values)
    assert named in str(caught.value)


def test_a_spec_stored_in_the_flat_layout_of_earlier_versions_still_decodes(tmp_path: Path) -> None:
    flat = {"name": "old", "operator": "gp", "model": None, "style": None, "backend": "hf",
            "evaluator_workers": 3, "terrain": "bumpy", "sim_seconds": 4.0,
            "sampling": {"max_new_tokens": 64}, "operators": {"directed": 1.0, "paper": 1.0},
            "loop": {"batch_size": 6}}  # fmt: skip
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        store.create_run(
            run_id="old", name="old", config_json=json.dumps(flat), rng_seed=0, rng_state_json="{}"
        )
        spec = run_spec(store, "old")
    assert spec.mutation == MutationSpec(operator="gp", sampling=spec.mutation.sampling,
                                         operators=OperatorMix(directed=1.0, paper=1.0))  # fmt: skip
    assert spec.mutation.sampling.max_new_tokens == 64
    assert spec.evaluation == EvaluationSpec(terrain="bumpy", sim=SimConfig(seconds=4.0))
    assert spec.embedded == EmbeddedSpec(workers=3, backend="hf") and spec.loop.batch_size == 6


def test_replace_in_changes_one_section() -> None:
    spec = RunSpec().replace_in("loop", batch_size=3).replace_in("mutation", operator="gp")
    assert (spec.loop.batch_size, spec.mutation.operator) == (3, "gp")
    assert spec.replace_in("mutation").mutation == spec.mutation
