"""The walker record, its dict exchange format, and validation.

The dict form is what crosses every boundary (program -> sandbox -> simulator -> store -> wire):

    {"joints": [[x, y], ...],
     "muscles": [[i, j, {"type": "distance"}],
                 [i, j, {"type": "muscle", "amplitude": a, "phase": p}], ...]}

`Walker.from_dict` parses *and* validates it; nothing unvalidated ever reaches pymunk.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np

from elm_core.errors import ConfigError, InvalidWalkerError


class WalkerRule(enum.StrEnum):
    """Every way a walker can be rejected; the value is the rule's name in error messages."""

    MALFORMED = "malformed"
    TOO_FEW_JOINTS = "too_few_joints"
    TOO_MANY_JOINTS = "too_many_joints"
    NO_MUSCLES = "no_muscles"
    TOO_MANY_MUSCLES = "too_many_muscles"
    NON_FINITE = "non_finite"
    OUT_OF_BOUNDS = "out_of_bounds"
    INDEX_OUT_OF_RANGE = "index_out_of_range"
    SELF_CONNECTION = "self_connection"
    UNKNOWN_MUSCLE_TYPE = "unknown_muscle_type"
    AMPLITUDE_TOO_LARGE = "amplitude_too_large"
    TOO_MANY_MUSCLES_PER_JOINT = "too_many_muscles_per_joint"
    JOINTS_TOO_CLOSE = "joints_too_close"


@dataclass(frozen=True, kw_only=True)
class WalkerLimits:
    """What a valid walker may contain. Defaults follow the paper's interface limits where it gives them."""

    min_joints: int = 2
    max_joints: int = 100
    max_muscles: int = 300
    max_muscles_per_joint: int = 10
    max_amplitude: float = 10.0
    min_joint_distance: float = 0.1
    max_coordinate: float = 100.0  # |x| and |y| of every joint, in simulator length units
    max_phase: float = 1000.0  # |phase| in radians; bounded so sin() keeps its precision

    def __post_init__(self) -> None:
        if not 2 <= self.min_joints <= self.max_joints:
            raise ConfigError(f"need 2 <= min_joints <= max_joints, got {self.min_joints}, {self.max_joints}")
        for name in ("min_joints", "max_joints", "max_muscles", "max_muscles_per_joint"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_amplitude", "min_joint_distance", "max_coordinate", "max_phase"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


class MuscleKind(enum.StrEnum):
    DISTANCE = "distance"  # a passive, stiff bone
    MUSCLE = "muscle"  # an active spring whose rest length oscillates


@dataclass(frozen=True)
class Muscle:
    a: int
    b: int
    kind: MuscleKind
    amplitude: float = 0.0
    phase: float = 0.0

    def to_list(self) -> list[Any]:
        if self.kind is MuscleKind.DISTANCE:
            return [self.a, self.b, {"type": "distance"}]
        return [self.a, self.b, {"type": "muscle", "amplitude": self.amplitude, "phase": self.phase}]


@dataclass(frozen=True)
class Walker:
    """A validated walker: joint positions (x, y) and the springs between them."""

    joints: tuple[tuple[float, float], ...]
    muscles: tuple[Muscle, ...]
    _positions: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        positions = np.array(self.joints, dtype=np.float64).reshape(-1, 2)
        positions.setflags(write=False)
        object.__setattr__(self, "_positions", positions)

    @property
    def positions(self) -> np.ndarray:
        """Joint positions as a read-only (n, 2) float64 array."""
        return self._positions

    @property
    def width(self) -> float:
        return float(np.ptp(self._positions[:, 0]))

    @property
    def height(self) -> float:
        return float(np.ptp(self._positions[:, 1]))

    def spring_lengths(self) -> np.ndarray:
        ends = np.array([(m.a, m.b) for m in self.muscles], dtype=np.intp)
        return np.linalg.norm(self._positions[ends[:, 0]] - self._positions[ends[:, 1]], axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"joints": [[x, y] for x, y in self.joints], "muscles": [m.to_list() for m in self.muscles]}

    def digest(self) -> bytes:
        """Equal for equal walkers: the same joints and springs, in the same order (the order of springs
        changes the physics solver's results slightly, so reordered walkers are not equal)."""
        return walker_digest(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, limits: WalkerLimits | None = None) -> Walker:
        """Parse and validate the exchange format; raises InvalidWalkerError naming rule and element."""
        limits = limits or WalkerLimits()
        joints, raw_muscles = _split(data)
        _check_counts(joints, raw_muscles, limits)
        points = tuple(_parse_joint(k, j, limits) for k, j in enumerate(joints))
        muscles = tuple(_parse_muscle(k, m, len(points), limits) for k, m in enumerate(raw_muscles))
        _check_muscles_per_joint(muscles, len(points), limits)
        walker = cls(points, muscles)
        _check_joint_spacing(walker.positions, limits)
        return walker


def walker_digest(data: dict[str, Any]) -> bytes:
    """`Walker.digest()` of a walker in its dict form (as stored): no validation, no pymunk."""
    return hashlib.sha256(json.dumps(data, separators=(",", ":")).encode()).digest()


def _reject(rule: WalkerRule, element: str, detail: str) -> InvalidWalkerError:
    return InvalidWalkerError(rule.value, element, detail)


def _split(data: Any) -> tuple[list[Any], list[Any]]:
    if not isinstance(data, dict):
        raise _reject(WalkerRule.MALFORMED, "walker", f"expected a dict, got {type(data).__name__}")
    return _list(data, "joints"), _list(data, "muscles")


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list | tuple):
        raise _reject(WalkerRule.MALFORMED, key, f"expected a list, got {type(value).__name__}")
    return list(value)


def _check_counts(joints: list[Any], muscles: list[Any], limits: WalkerLimits) -> None:
    if len(joints) < limits.min_joints:
        raise _reject(WalkerRule.TOO_FEW_JOINTS, "joints", f"{len(joints)} < {limits.min_joints}")
    if len(joints) > limits.max_joints:
        raise _reject(WalkerRule.TOO_MANY_JOINTS, "joints", f"{len(joints)} > {limits.max_joints}")
    if not muscles:
        raise _reject(WalkerRule.NO_MUSCLES, "muscles", "a walker needs at least one muscle")
    if len(muscles) > limits.max_muscles:
        raise _reject(WalkerRule.TOO_MANY_MUSCLES, "muscles", f"{len(muscles)} > {limits.max_muscles}")


def _number(value: Any, rule_element: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _reject(WalkerRule.MALFORMED, rule_element, f"expected a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError as e:  # an int beyond float range, which JSON can carry
        raise _reject(WalkerRule.NON_FINITE, rule_element, "number too large for a float") from e
    if not math.isfinite(number):
        raise _reject(WalkerRule.NON_FINITE, rule_element, f"{number!r} is not finite")
    return number


def _parse_joint(k: int, joint: Any, limits: WalkerLimits) -> tuple[float, float]:
    element = f"joint {k}"
    if not isinstance(joint, list | tuple) or len(joint) != 2:
        raise _reject(WalkerRule.MALFORMED, element, "expected [x, y]")
    x, y = _number(joint[0], element), _number(joint[1], element)
    if max(abs(x), abs(y)) > limits.max_coordinate:
        raise _reject(WalkerRule.OUT_OF_BOUNDS, element, f"({x}, {y}) beyond ±{limits.max_coordinate}")
    return x, y


def _parse_index(value: Any, element: str, n_joints: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise _reject(
            WalkerRule.MALFORMED, element, f"joint index must be an int, got {type(value).__name__}"
        )
    index = int(value)
    if not 0 <= index < n_joints:
        raise _reject(WalkerRule.INDEX_OUT_OF_RANGE, element, f"joint index {index} not in [0, {n_joints})")
    return index


def _parse_muscle(k: int, muscle: Any, n_joints: int, limits: WalkerLimits) -> Muscle:
    element = f"muscle {k}"
    if not isinstance(muscle, list | tuple) or len(muscle) != 3 or not isinstance(muscle[2], dict):
        raise _reject(WalkerRule.MALFORMED, element, "expected [i, j, {'type': ...}]")
    a, b = _parse_index(muscle[0], element, n_joints), _parse_index(muscle[1], element, n_joints)
    if a == b:
        raise _reject(WalkerRule.SELF_CONNECTION, element, f"connects joint {a} to itself")
    params = muscle[2]
    kind = params.get("type")
    if kind == MuscleKind.DISTANCE:
        return Muscle(a, b, MuscleKind.DISTANCE)
    if kind != MuscleKind.MUSCLE:
        raise _reject(WalkerRule.UNKNOWN_MUSCLE_TYPE, element, f"type {kind!r} is not 'distance' or 'muscle'")
    amplitude = _number(params.get("amplitude"), f"{element} amplitude")
    phase = _number(params.get("phase"), f"{element} phase")
    if abs(amplitude) > limits.max_amplitude:
        raise _reject(WalkerRule.AMPLITUDE_TOO_LARGE, element, f"|{amplitude}| > {limits.max_amplitude}")
    if abs(phase) > limits.max_phase:
        raise _reject(WalkerRule.OUT_OF_BOUNDS, f"{element} phase", f"|{phase}| > {limits.max_phase}")
    return Muscle(a, b, MuscleKind.MUSCLE, amplitude, phase)


def _check_muscles_per_joint(muscles: tuple[Muscle, ...], n_joints: int, limits: WalkerLimits) -> None:
    counts = np.bincount([end for m in muscles for end in (m.a, m.b)], minlength=n_joints)
    worst = int(np.argmax(counts))
    if counts[worst] > limits.max_muscles_per_joint:
        raise _reject(
            WalkerRule.TOO_MANY_MUSCLES_PER_JOINT,
            f"joint {worst}",
            f"{counts[worst]} muscles > {limits.max_muscles_per_joint}",
        )


def _check_joint_spacing(positions: np.ndarray, limits: WalkerLimits) -> None:
    deltas = positions[:, None, :] - positions[None, :, :]
    distances = np.hypot(deltas[..., 0], deltas[..., 1])
    np.fill_diagonal(distances, np.inf)
    i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
    if distances[i, j] < limits.min_joint_distance:
        first, second = sorted((int(i), int(j)))
        raise _reject(
            WalkerRule.JOINTS_TOO_CLOSE,
            f"joints {first} and {second}",
            f"distance {distances[i, j]:.4g} < {limits.min_joint_distance}",
        )
