"""The archive-aware operators: directed targets, crossover prompts, the mix, and duplicate children."""

from __future__ import annotations

import numpy as np
import pytest

from elm_core.errors import ConfigError
from elm_core.models import Generation, Prompt, SamplingConfig
from elm_core.mutation import ChildRequest, LLMMutator, MutationConfig, PromptStyle
from elm_core.qd import (
    CROSSOVER,
    DIRECTED,
    ONLY_THE_API,
    ArchiveConfig,
    GridArchive,
    OperatorMix,
    OperatorPlanner,
    UniformSelector,
    directed_instruction,
    neighbour_gap,
)
from elm_core.sodarace import seed_source

SQUARE = seed_source("square")
CONFIG = ArchiveConfig(dims=(12, 12, 12))  # 5/3 m per height and width cell, 5 mass units per mass cell


def archive_with(*points: tuple[tuple[float, float, float], float]) -> GridArchive:
    archive = GridArchive(CONFIG)
    for i, (descriptors, fitness) in enumerate(points):
        assert archive.try_insert(i, fitness, descriptors).inserted
    return archive


def test_the_directed_target_is_an_open_neighbouring_cell() -> None:
    parent_point = (10.0, 10.0, 11.8)  # Square
    archive = archive_with((parent_point, 20.0), ((11.8, 10.0, 11.8), 30.0), ((10.0, 11.8, 11.8), 5.0))
    parent = archive.get(archive.cell_of(parent_point))
    assert parent is not None
    fitter = archive.cell_of((11.8, 10.0, 11.8))
    seen = set()
    for k in range(300):
        gap = neighbour_gap(archive, parent, np.random.default_rng(k), reach=2)
        target = archive.cell_of(np.array(parent_point) + gap)
        seen.add(target)
        assert target != parent.cell and target != fitter  # never back home, never to a fitter elite
        assert np.all(np.abs(np.subtract(archive.cell_index(target), archive.cell_index(parent.cell))) <= 2)
        assert np.all(np.abs(gap) <= 2 * np.array([20 / 12, 20 / 12, 60 / 12]) + 1e-9)
    assert archive.cell_of((10.0, 11.8, 11.8)) in seen  # a weaker elite's cell is a target too
    assert len(seen) > 50  # chosen at random among the neighbours


def test_axis_targets_change_one_descriptor() -> None:
    parent_point = (10.0, 10.0, 11.8)
    archive = archive_with((parent_point, 20.0))
    parent = archive.get(archive.cell_of(parent_point))
    assert parent is not None
    seen = set()
    for k in range(200):
        gap = neighbour_gap(archive, parent, np.random.default_rng(k), reach=2, axis=True)
        moved = np.subtract(archive.cell_index(archive.cell_of(np.array(parent_point) + gap)),
                            archive.cell_index(parent.cell))  # fmt: skip
        assert np.count_nonzero(moved) == 1 and np.abs(moved).max() <= 2
        seen.add(tuple(moved))
    assert len(seen) == 12  # ±1 and ±2 cells along each of the three descriptors
    plans = OperatorPlanner(OperatorMix.only(DIRECTED), UniformSelector()).plan(
        archive, 30, np.random.default_rng(0)
    )
    assert all(p.instruction.count("Make") == 1 for p in plans)  # one change asked for at a time


def test_the_instruction_says_what_the_gap_is() -> None:
    text = directed_instruction((10 / 3, -5 / 3, 5.0), (10.0, 10.0, 11.8))
    assert text == (
        "Make the walker taller: change the y values given to add_joint so that they span about 13 m instead "
        "of 10 m. Make the walker narrower: change the x values given to add_joint so that they span about "
        "8 m instead of 10 m. Make it heavier: add two more joints with wc.add_joint, each connected to the "
        f"others with wc.add_muscle. {ONLY_THE_API}"
    )
    assert directed_instruction((0.0, 0.8, -10.0), (3.0, 0.5, 20.0)) == (
        "Make the walker wider: change the x values given to add_joint so that they span about 1.3 m instead "
        "of 0.5 m. Make it lighter: use fewer joints (fewer wc.add_joint calls) and fewer muscles. "
        f"{ONLY_THE_API}"
    )
    assert directed_instruction((0.0, 0.0, 30.0), (1, 1, 1)).count("three more joints") == 1  # a few at once
    assert directed_instruction((0.0, 0.0, 0.0), (1, 1, 1)) == f"Change the walker's shape. {ONLY_THE_API}"


def test_crossover_shows_elites_of_other_cells_in_one_prompt() -> None:
    archive = archive_with(((10, 10, 12), 20.0), ((3, 10, 35), 10.0), ((10, 5, 20), 1.0), ((2, 2, 5), 0.0))
    planner = OperatorPlanner(OperatorMix.only(CROSSOVER), UniformSelector())
    plans = planner.plan(archive, 40, np.random.default_rng(0))
    assert {p.operator for p in plans} == {CROSSOVER}
    assert {len(p.others) for p in plans} == {1, 2}  # two or three programs in all
    for p in plans:
        cells = [p.parent.cell, *(o.cell for o in p.others)]
        assert len(set(cells)) == len(cells)
    sources = {0: SQUARE, 1: seed_source("cppn_fixed"), 2: seed_source("radial"), 3: "def make_walker(): ..."}
    plan = next(p for p in plans if len(p.others) == 2)
    model = Scripted()
    others = tuple(sources[o.individual_id] for o in plan.others)
    request = ChildRequest(parent=sources[plan.parent.individual_id], instruction=plan.instruction,
                           others=others, operator=plan.operator)  # fmt: skip
    (child,) = LLMMutator(model, MutationConfig(style=PromptStyle.REWRITE)).mutate(
        [request], np.random.default_rng(0)
    )
    (prompt,) = model.prompts
    user = prompt.messages[1][1]
    for program in (request.parent, *request.others):
        assert program.rstrip() in user
    assert "Program 3:" in user and "combines" in user
    assert child.operator == CROSSOVER and child.message == plan.instruction


def test_crossover_on_a_one_cell_map_is_directed() -> None:
    archive = archive_with(((10, 10, 12), 20.0))
    plans = OperatorPlanner(OperatorMix.only(CROSSOVER), UniformSelector()).plan(
        archive, 5, np.random.default_rng(0)
    )
    assert {p.operator for p in plans} == {DIRECTED} and all(p.instruction.startswith("Make") for p in plans)


def test_the_mix_is_honoured() -> None:
    archive = archive_with(((10, 10, 12), 20.0), ((3, 10, 35), 10.0))
    mix = OperatorMix(directed=2, crossover=1, paper=1)
    plans = OperatorPlanner(mix, UniformSelector()).plan(archive, 4000, np.random.default_rng(0))
    shares = {
        op: sum(p.operator == op for p in plans) / len(plans) for op in ("directed", "crossover", "paper")
    }
    assert shares == pytest.approx({"directed": 0.5, "crossover": 0.25, "paper": 0.25}, abs=0.03)
    assert all(p.instruction == "" for p in plans if p.operator == "paper")  # the paper table's message


@pytest.mark.parametrize("bad", [dict(directed=-1), dict(directed=0, crossover=0, paper=0), dict(reach=0),
                                 dict(crossover_programs=(1,)), dict(moves="diagonal")])  # fmt: skip
def test_a_bad_mix_is_a_config_error(bad: dict) -> None:
    with pytest.raises(ConfigError):
        OperatorMix(**bad)


class Scripted:
    """A CodeGenerator that answers every prompt with the same program; records the prompts."""

    name = "scripted"

    def __init__(self, answer: str = SQUARE.replace("5.0, 10.0, 2.0", "6.0, 10.0, 2.0")) -> None:
        self.answer, self.prompts = answer, []

    def generate(self, prompts: list[Prompt], sampling: SamplingConfig, *, seed: int | None = None) -> list:
        self.prompts.extend(prompts)
        return [Generation(text=f"```python\n{self.answer}```", finish_reason="stop", completion_tokens=7)
                for _ in prompts]  # fmt: skip
