"""The simulator: seeds walk, results are deterministic, terrains matter, bad physics is an outcome."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from elm_core.errors import ConfigError
from elm_core.sodarace import (
    SEED_NAMES,
    SimConfig,
    SimStatus,
    Terrain,
    TerrainKind,
    Walker,
    muscle_schedule,
    simulate,
)
from elm_core.sodarace.bench import benchmark_walker

SHORT = SimConfig(seconds=3.0)


@pytest.fixture(scope="module")
def seeds(seed_walkers) -> dict[str, Walker]:
    return seed_walkers


def triangle(amplitude: float = 2.0) -> Walker:
    return Walker.from_dict(
        {
            "joints": [[0, 0], [2, 0], [1, 1.5]],
            "muscles": [
                [0, 1, {"type": "distance"}],
                [1, 2, {"type": "distance"}],
                [0, 2, {"type": "muscle", "amplitude": amplitude, "phase": 0.0}],
            ],
        }
    )


@pytest.mark.parametrize("name", SEED_NAMES)
def test_every_seed_moves_under_default_settings(seeds, name):
    result = simulate(seeds[name])
    assert result.status is SimStatus.OK
    assert abs(result.fitness) > 0.5, f"{name} moved only {result.fitness:.3f}"
    assert result.steps == SimConfig().steps


def test_same_walker_and_settings_give_bit_identical_results(seeds):
    first = simulate(seeds["radial"], SHORT, record_every=10)
    second = simulate(seeds["radial"], SHORT, record_every=10)
    assert first.fitness == second.fitness
    assert np.array_equal(first.trajectory, second.trajectory)


def test_results_do_not_depend_on_what_was_simulated_before(seeds):
    alone = simulate(seeds["square"], SHORT).fitness
    for other in SEED_NAMES:
        simulate(seeds[other], SHORT)
    assert simulate(seeds["square"], SHORT).fitness == alone


def test_descriptors_are_initial_height_width_and_mass(seeds):
    config = SimConfig()
    result = simulate(seeds["square"], SHORT)
    d = result.descriptors
    assert (d.height, d.width) == (10.0, 10.0)
    spring_length = 4 * 10 + 4 * math.hypot(5, 5)
    assert d.mass == pytest.approx(5 * config.joint_mass + config.spring_density * spring_length)


def test_a_walker_without_active_muscles_stays_put():
    bones = Walker.from_dict(
        {
            "joints": [[0, 0], [2, 0], [1, 1.5]],
            "muscles": [
                [0, 1, {"type": "distance"}],
                [1, 2, {"type": "distance"}],
                [0, 2, {"type": "distance"}],
            ],
        }
    )
    assert abs(simulate(bones, SHORT).fitness) < 0.05


def test_walker_starts_resting_on_the_ground_centred_on_zero(seeds):
    result = simulate(seeds["cppn_fixed"], SHORT, record_every=1)
    start = result.trajectory[0]
    assert start[:, 1].min() == pytest.approx(SimConfig().joint_radius)
    assert (start[:, 0].min() + start[:, 0].max()) / 2 == pytest.approx(0.0)


def mirrored(walker: Walker) -> Walker:
    data = walker.to_dict()
    data["joints"] = [[-x, y] for x, y in data["joints"]]
    return Walker.from_dict(data)


def test_a_wall_stops_a_walker(seeds):
    free = simulate(seeds["square"])
    assert free.fitness > 5, "the test needs a walker that travels right on flat ground"
    blocked = simulate(seeds["square"], terrain=Terrain(kind=TerrainKind.RIGHT_WALL), record_every=12)
    wall_x = seeds["square"].width / 2 + Terrain().wall_gap
    assert blocked.fitness < free.fitness / 2
    assert blocked.trajectory[:, :, 0].max() <= wall_x + 0.05


def test_a_left_wall_stops_a_walker_going_left(seeds):
    leftward = mirrored(seeds["square"])
    free = simulate(leftward)
    assert free.fitness < -5
    blocked = simulate(leftward, terrain=Terrain(kind=TerrainKind.LEFT_WALL), record_every=12)
    assert blocked.fitness > free.fitness / 2
    assert blocked.trajectory[:, :, 0].min() >= -(leftward.width / 2 + Terrain().wall_gap) - 0.05


@pytest.mark.parametrize("kind", list(TerrainKind))
def test_every_terrain_simulates(seeds, kind):
    result = simulate(seeds["radial"], SHORT, Terrain(kind=kind))
    assert result.status is SimStatus.OK
    assert math.isfinite(result.fitness)


@pytest.mark.parametrize("kind", [TerrainKind.BUMPY, TerrainKind.RIGHT_WALL, TerrainKind.TUNNEL])
def test_terrain_in_the_walkers_way_changes_its_outcome(seeds, kind):
    flat = simulate(seeds["square"]).fitness
    assert simulate(seeds["square"], terrain=Terrain(kind=kind)).fitness != flat


def test_nothing_passes_through_the_tunnel_ceiling(seeds):
    tall = seeds["square"]  # 10 units tall; the default tunnel is 4 high
    terrain = Terrain(kind=TerrainKind.TUNNEL)
    result = simulate(tall, terrain=terrain, record_every=1)
    mouth = tall.width / 2 + terrain.wall_gap
    inside = result.trajectory[:, :, 0] > mouth + 0.05
    assert inside.any(), "the test needs a walker that reaches into the tunnel"
    assert result.trajectory[:, :, 1][inside].max() <= terrain.tunnel_height
    assert result.fitness < simulate(tall).fitness


def test_muscle_schedule_is_one_period_around_the_initial_length():
    config = SimConfig()
    schedule = muscle_schedule(triangle(amplitude=1.0), config)
    assert schedule.shape == (config.steps_per_period, 1)
    initial = math.dist((0, 0), (1, 1.5))
    stroke = config.max_stroke * 1.0 / 2.0
    assert schedule[0, 0] == pytest.approx(initial)
    assert schedule.max() == pytest.approx(initial * (1 + stroke), rel=1e-3)
    assert schedule.min() == pytest.approx(initial * (1 - stroke), rel=1e-3)


def test_the_fast_muscle_path_matches_setting_rest_lengths_through_pymunk():
    """The in-place muscle bank must drive the same physics as pymunk's own spring objects."""
    import pymunk

    from elm_core.sodarace._simulator import _World

    walker, config = benchmark_walker(12, 24), SimConfig(seconds=1.0)
    fast = simulate(walker, config, record_every=config.steps)
    world = _World(walker, config, Terrain())
    world.muscles.detach()
    active = [m for m in walker.muscles if m.kind == "muscle"]
    schedule = muscle_schedule(walker, config)
    springs = [
        pymunk.DampedSpring(
            world.bodies[m.a],
            world.bodies[m.b],
            (0, 0),
            (0, 0),
            float(length),
            config.muscle_stiffness,
            config.muscle_damping,
        )
        for m, length in zip(active, schedule[0], strict=True)
    ]
    world.space.add(*springs)
    for k in range(config.steps):
        for spring, rest in zip(springs, schedule[k % len(schedule)], strict=True):
            spring.rest_length = float(rest)
        world.space.step(config.dt_s)
    assert np.allclose(world.positions(), fast.trajectory[-1], atol=1e-9)


def test_a_blow_up_is_an_unstable_outcome_not_a_crash():
    violent = SimConfig(
        seconds=2.0, muscle_stiffness=5e7, bone_stiffness=5e7, muscle_damping=0, bone_damping=0
    )
    result = simulate(triangle(amplitude=10.0), violent)
    assert result.status is SimStatus.UNSTABLE
    assert result.fitness == 0.0
    assert "step" in result.message


def test_a_walker_that_pushes_joints_through_the_ground_is_unstable():
    # Found by a GP run: a star of four spokes whose muscles fling joints through the ground; the
    # integrator's error then reads as 140 m of "walking" in 10 s.
    star = Walker.from_dict(
        {
            "joints": [[0, 0], [0, 10], [10, 8], [10, 0], [4, 5]],
            "muscles": [
                [3, 4, {"type": "distance"}],
                [0, 4, {"type": "muscle", "amplitude": 5.0, "phase": 0.0}],
                [1, 4, {"type": "muscle", "amplitude": 10.0, "phase": 0.0}],
                [2, 4, {"type": "muscle", "amplitude": 2.0, "phase": 0.0}],
            ],
        }
    )
    result = simulate(star, SimConfig())
    assert result.status is SimStatus.UNSTABLE and "sank" in result.message
    assert result.fitness == 0.0


@pytest.mark.parametrize(
    "change",
    [
        {"seconds": 0},
        {"seconds": float("nan")},
        {"steps_per_second": -1},
        {"muscle_period_s": 1.0 / 7},
        {"max_stroke": 1.0},
        {"gravity": float("inf")},
        {"friction": -1},
    ],
)
def test_bad_simulator_config_is_a_config_error(change):
    with pytest.raises(ConfigError):
        replace(SimConfig(), **change)


def test_larger_walkers_simulate():
    result = simulate(benchmark_walker(30, 80), SHORT)
    assert result.status is SimStatus.OK
