"""Sandboxed evaluation: program text in; outcome, fitness and descriptors out; nothing forgeable."""

from __future__ import annotations

import pytest

from elm_core.errors import BackpressureError
from elm_core.evaluation import EvaluatorPool, SimulationProcess
from elm_core.sandbox import Outcome
from elm_core.sodarace import SEED_NAMES, SimConfig, SimStatus, Terrain, seed_source, simulate
from elm_core.sodarace.bench import benchmark_walker

SHORT = SimConfig(seconds=2.0)


@pytest.fixture(scope="module")
def evaluator():
    with EvaluatorPool(sim_config=SHORT, workers=2, queue_size=8) as evaluator:
        yield evaluator


def test_seeds_get_the_same_fitness_as_simulating_them_directly(evaluator, seed_walkers):
    results = evaluator.map([seed_source(name) for name in SEED_NAMES])
    for name, result in zip(SEED_NAMES, results, strict=True):
        assert result.ok, (name, result.status, result.message)
        direct = simulate(seed_walkers[name], SHORT)
        assert result.fitness == direct.fitness
        assert result.descriptors == direct.descriptors
        assert result.walker == seed_walkers[name]
        assert result.reused == ("simulate_ms" not in result.timings)
    # the two CPPN seeds build one walker: it was simulated once, for whichever lane met it first
    assert seed_walkers["cppn_fixed"] == seed_walkers["cppn_mutable"]
    assert sorted(name for name, r in zip(SEED_NAMES, results, strict=True) if r.reused) in (
        ["cppn_fixed"], ["cppn_mutable"]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("source", "status"),
    [
        ("def make_walker(:\n", Outcome.SYNTAX_ERROR),
        ("import os\ndef make_walker():\n    os.system('true')\n", Outcome.FORBIDDEN_OPERATION),
        ("def make_walker():\n    return {'joints': [[0, 0]], 'muscles': []}\n", Outcome.INVALID_WALKER),
    ],
)
def test_a_failed_program_is_never_simulated(evaluator, source, status):
    result = evaluator.map([source])[0]
    assert result.execution is status
    assert result.simulation is None and result.fitness is None
    assert result.status == status.value
    assert not result.ok


def test_a_program_cannot_forge_its_fitness(evaluator, seed_walkers):
    forger = seed_source("square").replace(
        "    return wc.get_walker()",
        "    import os\n"
        '    print(\'{"status": "OK", "fitness": 1e9}\')\n'
        "    for fd in range(3, 10):\n"
        "        try:\n"
        "            os.write(fd, b'{\"fitness\": 1e9}')\n"
        "        except OSError:\n"
        "            pass\n"
        "    return wc.get_walker()",
    )
    result = evaluator.map([forger])[0]
    honest = simulate(seed_walkers["square"], SHORT).fitness
    assert result.fitness in (None, honest)
    assert result.fitness != 1e9


def test_a_full_queue_is_back_pressure():
    slow = "import time\ndef make_walker():\n    time.sleep(0.5)\n"
    with EvaluatorPool(sim_config=SHORT, workers=1, queue_size=0) as evaluator:
        first = evaluator.submit(slow)
        with pytest.raises(BackpressureError):
            evaluator.submit(slow)
        assert first.result().execution is Outcome.INVALID_WALKER  # make_walker returned None


def test_an_overrunning_simulation_is_a_timeout_and_the_process_is_replaced():
    long = SimConfig(seconds=60.0)
    process = SimulationProcess(long, Terrain(), deadline_s=0.2)
    try:
        result = process.simulate(benchmark_walker(30, 80))
        assert result.status is SimStatus.TIMEOUT
        assert "replaced" in result.message
        process.deadline_s = 30.0
        assert process.simulate(benchmark_walker(5, 6)).status is SimStatus.OK
    finally:
        process.close()


def same_walker_programs(n: int) -> list[str]:
    """`n` different programs (a spare variable each) that all build Square's walker."""
    square = seed_source("square")
    return [square.replace("    centre =", f"    spare = {k}\n    centre =") for k in range(n)]


def test_a_walker_met_again_in_the_same_world_is_not_simulated_again(seed_walkers):
    first, again, elsewhere = same_walker_programs(3)
    with EvaluatorPool(sim_config=SHORT, workers=1) as evaluator:
        (simulated,) = evaluator.map([first])
        (reused,) = evaluator.map([again])
        (other_world,) = evaluator.evaluate([elsewhere], sim_config=SimConfig(seconds=3.0))
    assert not simulated.reused and simulated.timings["simulate_ms"] > 0
    assert reused.reused and "simulate_ms" not in reused.timings and reused.timings["run_ms"] > 0
    assert (reused.fitness, reused.descriptors, reused.walker) == (
        simulated.fitness, simulated.descriptors, simulated.walker
    )  # fmt: skip
    assert reused.fitness == simulate(seed_walkers["square"], SHORT).fitness  # what simulating it again gives
    assert (
        not other_world.reused
        and other_world.fitness == simulate(seed_walkers["square"], SimConfig(seconds=3.0)).fitness
    )


def test_a_pool_keeps_only_its_latest_simulations():
    programs = [*same_walker_programs(1), seed_source("radial"), *same_walker_programs(2)[1:]]
    with EvaluatorPool(sim_config=SHORT, workers=1, cache_size=1) as evaluator:
        results = [evaluator.map([program])[0] for program in programs]
    assert [r.reused for r in results] == [False, False, False]  # radial pushed square out
    with EvaluatorPool(sim_config=SHORT, workers=1, cache_size=0) as evaluator:
        assert not any(r.reused for r in evaluator.map(same_walker_programs(2)))


def test_lanes_meeting_one_walker_at_once_simulate_it_once():
    with EvaluatorPool(sim_config=SHORT, workers=2) as evaluator:
        results = evaluator.map(same_walker_programs(8))
    assert sum(not r.reused for r in results) == 1
    assert len({(r.fitness, r.descriptors) for r in results}) == 1
