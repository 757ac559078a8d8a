"""The Sodarace simulator: a validated walker on a terrain, simulated with pymunk.

Model (all constants live in SimConfig, in simulator units: length u, time s, mass m):
- Each joint is a point mass (a small circle that does not rotate) colliding with the terrain but
  never with other joints. Its mass is `joint_mass` plus half the mass of every spring attached to it;
  a spring's mass is `spring_density` times its initial length. So the walker's total mass, the third
  behaviour descriptor, is  joints * joint_mass + spring_density * sum(initial spring lengths).
- Bones (passive springs) are stiff damped springs at their initial length.
- Muscles are damped springs whose rest length oscillates around the initial length L0:
      rest(t) = L0 * (1 + stroke * sin(2*pi*t / muscle_period_s + phase)),
      stroke  = max_stroke * a / (|a| + 1)        (a = the muscle's amplitude, phase in radians)
  so amplitude 1 moves a muscle by 25 % of its length, 10 by 45 %, and it never collapses to zero.
- The walker starts centred on x = 0 with its lowest joint resting on the ground.
- Fitness is the displacement along x of the centre of mass over the evaluation.
The muscle schedule is periodic with an integral number of steps per period, so it is computed once
as a table and written each step with one numpy assignment (see _muscles.py).
"""

from __future__ import annotations

import enum
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pymunk
from pymunk._chipmunk_cffi import lib

from elm_core.errors import ConfigError
from elm_core.sodarace._muscles import MuscleBank
from elm_core.sodarace._terrain import Terrain
from elm_core.sodarace._walker import MuscleKind, Walker

_WALKER_GROUP = 1  # shapes in one group never collide with each other
_EXPLODED_AT = 1e4  # a coordinate this far out means the integration blew up
# Every terrain's ground is at y >= 0 and joints have a radius; a joint this far below it was pushed through
# the ground by a spring stiffer than the solver can resolve: an exploit of the integrator, not locomotion.
_SUNK_BELOW = -1.0


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """Physical constants and evaluation length. Defaults were tuned so that the four seeds walk."""

    seconds: float = 10.0
    steps_per_second: int = 120
    muscle_period_s: float = 1.0
    gravity: float = 9.81
    joint_radius: float = 0.2
    joint_mass: float = 1.0
    spring_density: float = 0.1
    bone_stiffness: float = 2000.0
    bone_damping: float = 20.0
    muscle_stiffness: float = 1000.0
    muscle_damping: float = 10.0
    max_stroke: float = 0.5
    friction: float = 1.0
    solver_iterations: int = 10
    health_check_every_s: float = 0.25  # how often positions are checked for NaN, blow-up, sinking

    def __post_init__(self) -> None:
        positive = (
            "seconds",
            "steps_per_second",
            "muscle_period_s",
            "joint_radius",
            "joint_mass",
            "bone_stiffness",
            "muscle_stiffness",
            "solver_iterations",
            "health_check_every_s",
        )
        non_negative = ("gravity", "spring_density", "bone_damping", "muscle_damping", "friction")
        for name in positive + non_negative:
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (value == 0 and name in positive):
                bound = "> 0" if name in positive else ">= 0"
                raise ConfigError(f"SimConfig.{name} must be a finite number {bound}, got {value!r}")
        if not 0 < self.max_stroke < 1:
            raise ConfigError(f"SimConfig.max_stroke must be in (0, 1), got {self.max_stroke!r}")
        period_steps = self.muscle_period_s * self.steps_per_second
        if abs(period_steps - round(period_steps)) > 1e-9:
            raise ConfigError(
                f"muscle_period_s * steps_per_second must be a whole number of steps, got {period_steps}"
            )

    @property
    def dt_s(self) -> float:
        return 1.0 / self.steps_per_second

    @property
    def steps(self) -> int:
        return round(self.seconds * self.steps_per_second)

    @property
    def steps_per_period(self) -> int:
        return round(self.muscle_period_s * self.steps_per_second)


class SimStatus(enum.StrEnum):
    OK = "OK"
    UNSTABLE = "UNSTABLE"  # the integration produced a non-finite or exploded position
    TIMEOUT = "SIMULATION_TIMEOUT"  # a simulation process overran its deadline (see elm_core.evaluation)


@dataclass(frozen=True)
class Descriptors:
    """MAP-Elites behaviour descriptors: the walker's initial height, width and total mass."""

    height: float
    width: float
    mass: float

    def to_dict(self) -> dict[str, float]:
        return {"height": self.height, "width": self.width, "mass": self.mass}


@dataclass(frozen=True)
class SimResult:
    status: SimStatus
    fitness: float  # x-displacement of the centre of mass; 0.0 when not OK
    descriptors: Descriptors
    steps: int  # steps actually simulated
    message: str = ""
    trajectory: np.ndarray | None = field(default=None, repr=False, compare=False)  # (frames, joints, 2)

    @property
    def ok(self) -> bool:
        return self.status is SimStatus.OK


def describe(walker: Walker, config: SimConfig) -> Descriptors:
    total_mass = len(walker.joints) * config.joint_mass + config.spring_density * float(
        walker.spring_lengths().sum()
    )
    return Descriptors(height=walker.height, width=walker.width, mass=total_mass)


def simulate(
    walker: Walker,
    config: SimConfig | None = None,
    terrain: Terrain | None = None,
    *,
    record_every: int = 0,
) -> SimResult:
    """Simulate `walker` for `config.seconds`; with record_every=k, keep every k-th frame of positions."""
    config = config or SimConfig()
    world = _World(walker, config, terrain or Terrain())
    try:
        return world.run(describe(walker, config), record_every)
    finally:
        world.close()


def muscle_schedule(walker: Walker, config: SimConfig) -> np.ndarray:
    """Rest lengths of the active muscles for each step of one period: shape (steps_per_period, muscles)."""
    active = [m for m in walker.muscles if m.kind is MuscleKind.MUSCLE]
    positions = walker.positions
    lengths = np.array([np.linalg.norm(positions[m.a] - positions[m.b]) for m in active])
    amplitude = np.array([m.amplitude for m in active])
    stroke = config.max_stroke * amplitude / (np.abs(amplitude) + 1.0)
    phase = np.array([m.phase for m in active])
    angle = 2 * np.pi * np.arange(config.steps_per_period)[:, None] / config.steps_per_period + phase
    return lengths * (1.0 + stroke * np.sin(angle))


class _World:
    """One simulation's pymunk space; `close()` must run before it is dropped."""

    def __init__(self, walker: Walker, config: SimConfig, terrain: Terrain) -> None:
        self.config = config
        self.space = pymunk.Space()
        self.space.gravity = (0.0, -config.gravity)
        self.space.iterations = config.solver_iterations
        self.space.collision_slop = 0.01
        start = _starting_positions(walker, config)
        self.masses = _joint_masses(walker, config)
        self._add_terrain(terrain, half_width=walker.width / 2)
        self.bodies = [self._add_joint(p, m) for p, m in zip(start, self.masses, strict=True)]
        bones = [m for m in walker.muscles if m.kind is MuscleKind.DISTANCE]
        for bone in bones:
            a, b = self.bodies[bone.a], self.bodies[bone.b]
            length = float(np.linalg.norm(start[bone.a] - start[bone.b]))
            self.space.add(
                pymunk.DampedSpring(a, b, (0, 0), (0, 0), length, config.bone_stiffness, config.bone_damping)
            )
        self.schedule = muscle_schedule(walker, config)
        muscles = [m for m in walker.muscles if m.kind is MuscleKind.MUSCLE]
        self.muscles = MuscleBank(
            self.space,
            [(self.bodies[m.a], self.bodies[m.b]) for m in muscles],
            self.schedule[0],
            config.muscle_stiffness,
            config.muscle_damping,
        )

    def _add_terrain(self, terrain: Terrain, half_width: float) -> None:
        for a, b in terrain.segments(half_width):
            segment = pymunk.Segment(self.space.static_body, a, b, 0.0)
            segment.friction = self.config.friction
            self.space.add(segment)

    def _add_joint(self, position: np.ndarray, mass: float) -> pymunk.Body:
        body = pymunk.Body(mass, math.inf)
        body.position = (float(position[0]), float(position[1]))
        shape = pymunk.Circle(body, self.config.joint_radius)
        shape.friction = self.config.friction
        shape.filter = pymunk.ShapeFilter(group=_WALKER_GROUP)
        self.space.add(body, shape)
        return body

    def positions(self) -> np.ndarray:
        return np.array([tuple(b.position) for b in self.bodies], dtype=np.float64)

    def run(self, descriptors: Descriptors, record_every: int) -> SimResult:
        config = self.config
        step, handle, dt = lib.cpSpaceStep, self.space._space, config.dt_s
        rest_lengths, rows = self.muscles.rest_lengths, itertools.cycle(list(self.schedule))
        check_every = max(1, round(config.health_check_every_s * config.steps_per_second))
        start = self.positions()
        frames = [start] if record_every else []
        for k in range(1, config.steps + 1):
            rest_lengths[:] = next(rows)
            step(handle, dt)
            if record_every and k % record_every == 0:
                frames.append(self.positions())
            if k % check_every == 0 or k == config.steps:
                problem = _health_problem(self.positions())
                if problem:
                    frames_so_far = np.stack(frames) if record_every else None
                    message = f"step {k}: {problem}"
                    return SimResult(SimStatus.UNSTABLE, 0.0, descriptors, k, message, frames_so_far)
        end = self.positions()
        total = float(self.masses.sum())
        fitness = float((self.masses @ end[:, 0] - self.masses @ start[:, 0]) / total)
        trajectory = np.stack(frames) if record_every else None
        return SimResult(SimStatus.OK, fitness, descriptors, config.steps, trajectory=trajectory)

    def close(self) -> None:
        self.muscles.detach()


def _health_problem(positions: np.ndarray) -> str:
    if not np.all(np.isfinite(positions)):
        return "non-finite joint position"
    if np.max(np.abs(positions)) > _EXPLODED_AT:
        return f"joint position beyond {_EXPLODED_AT:g}: the simulation blew up"
    if np.min(positions[:, 1]) < _SUNK_BELOW:
        return f"a joint sank {-np.min(positions[:, 1]):.1f} m into the ground: the springs beat the solver"
    return ""


def _starting_positions(walker: Walker, config: SimConfig) -> np.ndarray:
    """Centre the walker on x = 0 and rest its lowest joint on the ground (y = joint radius)."""
    positions = walker.positions.copy()
    low, high = positions.min(axis=0), positions.max(axis=0)
    positions[:, 0] -= (low[0] + high[0]) / 2
    positions[:, 1] += config.joint_radius - low[1]
    return positions


def _joint_masses(walker: Walker, config: SimConfig) -> np.ndarray:
    masses = np.full(len(walker.joints), config.joint_mass)
    half_spring_mass = config.spring_density * walker.spring_lengths() / 2
    ends = np.array([(m.a, m.b) for m in walker.muscles], dtype=np.intp)
    np.add.at(masses, ends[:, 0], half_spring_mass)
    np.add.at(masses, ends[:, 1], half_spring_mass)
    return masses
