"""Simulator benchmark: our step loop against the engine's floor and against the naive loop.

- floor: `space.step()` alone on the same space (muscles present, never updated);
- fast:  the simulator's loop (one numpy write of all rest lengths, then the C step);
- naive: every step, each muscle's rest length computed in Python and set through pymunk's property.
Used by `elm bench sim` and benchmarks/sim_bench.py.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import pymunk

from elm_core.sodarace._simulator import SimConfig, _World, describe, simulate
from elm_core.sodarace._terrain import Terrain
from elm_core.sodarace._walker import MuscleKind, Walker


@dataclass(frozen=True)
class SimBenchRow:
    walker: str
    joints: int
    muscles: int
    floor_us: float  # per step, best of the repeats
    fast_us: float
    naive_us: float
    evals_per_s: float  # whole default-length evaluations (setup included) per second, one core

    @property
    def over_floor(self) -> float:
        return self.fast_us / self.floor_us

    @property
    def speedup_over_naive(self) -> float:
        return self.naive_us / self.fast_us

    @property
    def speedup_ceiling(self) -> float:
        """naive / floor: the speed-up a muscle update costing nothing at all would reach."""
        return self.naive_us / self.floor_us

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self) | {
            "over_floor": self.over_floor,
            "speedup_over_naive": self.speedup_over_naive,
            "speedup_ceiling": self.speedup_ceiling,
        }


def bench_walker(name: str, walker: Walker, *, steps: int = 2000, repeat: int = 5) -> SimBenchRow:
    """Times each loop over `steps` steps from a fresh world, `repeat` rounds interleaved so that drift in
    the machine's speed hits all loops alike; keeps each loop's best per-step time."""
    config = SimConfig()
    loops = {"floor": _floor, "fast": _fast, "naive": _naive}
    best = dict.fromkeys(loops, math.inf)
    for _ in range(repeat):
        for key, loop in loops.items():
            best[key] = min(best[key], loop(walker, config, steps) / steps * 1e6)
    return SimBenchRow(
        walker=name,
        joints=len(walker.joints),
        muscles=len(walker.muscles),
        floor_us=best["floor"],
        fast_us=best["fast"],
        naive_us=best["naive"],
        evals_per_s=_evals_per_second(walker, config, repeat),
    )


def _floor(walker: Walker, config: SimConfig, steps: int) -> float:
    world = _World(walker, config, Terrain())
    try:
        space_step, dt = world.space.step, config.dt_s
        start = time.perf_counter()
        for _ in range(steps):
            space_step(dt)
        return time.perf_counter() - start
    finally:
        world.close()


def _fast(walker: Walker, config: SimConfig, steps: int) -> float:
    config = replace(config, seconds=steps / config.steps_per_second)
    world, descriptors = _World(walker, config, Terrain()), describe(walker, config)
    try:
        start = time.perf_counter()
        world.run(descriptors, record_every=0)
        return time.perf_counter() - start
    finally:
        world.close()


def _naive(walker: Walker, config: SimConfig, steps: int) -> float:
    world = _World(walker, config, Terrain())
    world.muscles.detach()  # same world, but with the muscles as pymunk springs set one by one
    active = [m for m in walker.muscles if m.kind is MuscleKind.MUSCLE]
    lengths = [float(np.linalg.norm(walker.positions[m.a] - walker.positions[m.b])) for m in active]
    strokes = [config.max_stroke * m.amplitude / (abs(m.amplitude) + 1.0) for m in active]
    springs = [
        pymunk.DampedSpring(
            world.bodies[m.a],
            world.bodies[m.b],
            (0, 0),
            (0, 0),
            length,
            config.muscle_stiffness,
            config.muscle_damping,
        )
        for m, length in zip(active, lengths, strict=True)
    ]
    world.space.add(*springs)
    muscles = list(zip(springs, lengths, strokes, [m.phase for m in active], strict=True))
    omega, dt = 2 * math.pi / config.muscle_period_s, config.dt_s
    start = time.perf_counter()
    for k in range(steps):
        t = k * dt
        for spring, length, stroke, phase in muscles:
            spring.rest_length = length * (1.0 + stroke * math.sin(omega * t + phase))
        world.space.step(dt)
    return time.perf_counter() - start


def _evals_per_second(walker: Walker, config: SimConfig, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        simulate(walker, config)
        best = min(best, time.perf_counter() - start)
    return 1.0 / best


def benchmark_walker(n_joints: int = 30, n_muscles: int = 80, seed: int = 0) -> Walker:
    """A valid random walker of the given size: a jittered grid, neighbours wired, half of them muscles."""
    rng = np.random.default_rng(seed)
    columns = math.ceil(math.sqrt(n_joints * 2))
    grid = [(i % columns, i // columns) for i in range(n_joints)]
    joints = [[x * 1.5 + rng.uniform(-0.3, 0.3), y * 1.5 + rng.uniform(-0.3, 0.3)] for x, y in grid]
    pairs = sorted(
        ((i, j) for i in range(n_joints) for j in range(i + 1, n_joints)),
        key=lambda p: math.dist(grid[p[0]], grid[p[1]]),
    )[:n_muscles]
    muscles = [
        [
            i,
            j,
            {"type": "muscle", "amplitude": float(rng.uniform(0, 3)), "phase": float(rng.uniform(0, 6.28))},
        ]
        if k % 2
        else [i, j, {"type": "distance"}]
        for k, (i, j) in enumerate(pairs)
    ]
    return Walker.from_dict({"joints": joints, "muscles": muscles})
