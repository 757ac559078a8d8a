"""Walker.from_dict: the validation every walker passes before it reaches the simulator."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from elm_core.errors import ConfigError, InvalidWalkerError
from elm_core.sodarace import MuscleKind, Walker, WalkerLimits, WalkerRule

BONE = {"type": "distance"}


def muscle(amplitude: Any = 1.0, phase: Any = 0.0) -> dict[str, Any]:
    return {"type": "muscle", "amplitude": amplitude, "phase": phase}


def triangle() -> dict[str, Any]:
    """A small valid walker: three joints, two bones and one active muscle."""
    return {
        "joints": [[0.0, 0.0], [2.0, 0.0], [0.5, 1.5]],
        "muscles": [[0, 1, dict(BONE)], [1, 2, dict(BONE)], [2, 0, muscle(2.0, 0.5)]],
    }


def chain(n: int, spacing: float = 1.0) -> dict[str, Any]:
    """n joints in a row, each tied to the next by a bone."""
    return {
        "joints": [[k * spacing, 0.0] for k in range(n)],
        "muscles": [[k, k + 1, dict(BONE)] for k in range(n - 1)],
    }


def star(spokes: int) -> dict[str, Any]:
    """A centre joint 0 tied to `spokes` rim joints."""
    rim = [
        [5 * math.cos(2 * math.pi * k / spokes), 5 * math.sin(2 * math.pi * k / spokes)]
        for k in range(spokes)
    ]
    return {"joints": [[0.0, 0.0], *rim], "muscles": [[0, k + 1, dict(BONE)] for k in range(spokes)]}


def with_joint(data: dict[str, Any], k: int, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["joints"][k] = value
    return data


def with_muscle(data: dict[str, Any], k: int, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["muscles"][k] = value
    return data


def rejected(data: Any, limits: WalkerLimits | None = None) -> InvalidWalkerError:
    with pytest.raises(InvalidWalkerError) as info:
        Walker.from_dict(data, limits)
    return info.value


# Every rule, with at least one walker that breaks it and the element the error must name.
RULE_CASES = [
    pytest.param(WalkerRule.MALFORMED, [1, 2], "walker", id="malformed-not-a-dict"),
    pytest.param(WalkerRule.MALFORMED, {"muscles": [[0, 1, BONE]]}, "joints", id="malformed-no-joints"),
    pytest.param(
        WalkerRule.MALFORMED, {"joints": [[0, 0], [1, 0]]}, "muscles", id="malformed-no-muscles-key"
    ),
    pytest.param(
        WalkerRule.MALFORMED, {**triangle(), "muscles": "0-1"}, "muscles", id="malformed-muscles-str"
    ),
    pytest.param(
        WalkerRule.MALFORMED, with_joint(triangle(), 1, [2.0]), "joint 1", id="malformed-short-joint"
    ),
    pytest.param(
        WalkerRule.MALFORMED, with_joint(triangle(), 2, [1, 2, 3]), "joint 2", id="malformed-long-joint"
    ),
    pytest.param(
        WalkerRule.MALFORMED,
        with_joint(triangle(), 1, {"x": 2, "y": 0}),
        "joint 1",
        id="malformed-dict-joint",
    ),
    pytest.param(
        WalkerRule.MALFORMED, with_muscle(triangle(), 1, [1, 2]), "muscle 1", id="malformed-short-muscle"
    ),
    pytest.param(
        WalkerRule.MALFORMED,
        with_muscle(triangle(), 0, [0, 1, "distance"]),
        "muscle 0",
        id="malformed-params",
    ),
    pytest.param(
        WalkerRule.MALFORMED,
        with_muscle(triangle(), 2, [2, 0.0, BONE]),
        "muscle 2",
        id="malformed-float-index",
    ),
    pytest.param(
        WalkerRule.MALFORMED, with_muscle(triangle(), 0, [0, "1", BONE]), "muscle 0", id="malformed-str-index"
    ),
    pytest.param(
        WalkerRule.MALFORMED,
        with_muscle(triangle(), 2, [2, 0, {"type": "muscle", "phase": 0.0}]),
        "muscle 2 amplitude",
        id="malformed-missing-amplitude",
    ),
    pytest.param(
        WalkerRule.TOO_FEW_JOINTS, {"joints": [[0, 0]], "muscles": [[0, 0, BONE]]}, "joints", id="too-few"
    ),
    pytest.param(WalkerRule.TOO_MANY_JOINTS, chain(101), "joints", id="too-many-joints"),
    pytest.param(
        WalkerRule.NO_MUSCLES, {"joints": [[0, 0], [1, 0]], "muscles": []}, "muscles", id="no-muscles"
    ),
    pytest.param(
        WalkerRule.TOO_MANY_MUSCLES,
        {"joints": [[0, 0], [1, 0]], "muscles": [[0, 1, BONE]] * 301},
        "muscles",
        id="too-many-muscles",
    ),
    pytest.param(WalkerRule.NON_FINITE, with_joint(triangle(), 1, [math.nan, 0]), "joint 1", id="non-finite"),
    pytest.param(
        WalkerRule.OUT_OF_BOUNDS, with_joint(triangle(), 2, [1.0, 100.5]), "joint 2", id="out-of-bounds-y"
    ),
    pytest.param(
        WalkerRule.OUT_OF_BOUNDS, with_joint(triangle(), 0, [-101, 0]), "joint 0", id="out-of-bounds-x"
    ),
    pytest.param(
        WalkerRule.OUT_OF_BOUNDS,
        with_muscle(triangle(), 2, [2, 0, muscle(1.0, 1000.5)]),
        "muscle 2 phase",
        id="out-of-bounds-phase",
    ),
    pytest.param(
        WalkerRule.INDEX_OUT_OF_RANGE,
        with_muscle(triangle(), 1, [1, 3, BONE]),
        "muscle 1",
        id="index-too-big",
    ),
    pytest.param(
        WalkerRule.INDEX_OUT_OF_RANGE,
        with_muscle(triangle(), 0, [-1, 1, BONE]),
        "muscle 0",
        id="index-negative",
    ),
    pytest.param(WalkerRule.SELF_CONNECTION, with_muscle(triangle(), 1, [2, 2, BONE]), "muscle 1", id="self"),
    pytest.param(
        WalkerRule.UNKNOWN_MUSCLE_TYPE,
        with_muscle(triangle(), 0, [0, 1, {"type": "spring"}]),
        "muscle 0",
        id="unknown-type",
    ),
    pytest.param(
        WalkerRule.UNKNOWN_MUSCLE_TYPE, with_muscle(triangle(), 2, [2, 0, {}]), "muscle 2", id="missing-type"
    ),
    pytest.param(
        WalkerRule.AMPLITUDE_TOO_LARGE,
        with_muscle(triangle(), 2, [2, 0, muscle(10.5, 0.0)]),
        "muscle 2",
        id="amplitude-too-large",
    ),
    pytest.param(
        WalkerRule.AMPLITUDE_TOO_LARGE,
        with_muscle(triangle(), 2, [2, 0, muscle(-11, 0.0)]),
        "muscle 2",
        id="amplitude-too-negative",
    ),
    pytest.param(WalkerRule.TOO_MANY_MUSCLES_PER_JOINT, star(11), "joint 0", id="too-many-per-joint"),
    pytest.param(
        WalkerRule.JOINTS_TOO_CLOSE,
        with_joint(triangle(), 2, [2.05, 0.0]),
        "joints 1 and 2",
        id="joints-too-close",
    ),
    pytest.param(
        WalkerRule.JOINTS_TOO_CLOSE,
        with_joint(triangle(), 0, [2.0, 0.0]),
        "joints 0 and 1",
        id="joints-coincide",
    ),
]


@pytest.mark.parametrize(("rule", "data", "element"), RULE_CASES)
def test_each_rule_rejects_with_rule_and_element(rule: WalkerRule, data: Any, element: str) -> None:
    error = rejected(data)
    assert error.rule == rule
    assert error.element == element
    message = str(error)
    assert rule.value in message
    assert element in message


def test_every_rule_has_a_failing_example() -> None:
    covered = {case.values[0] for case in RULE_CASES}
    assert covered == set(WalkerRule)


def test_the_examples_are_valid_apart_from_what_they_break() -> None:
    # the fixtures the rule cases are derived from must themselves pass
    for data in (triangle(), chain(100), star(10)):
        Walker.from_dict(data)


@pytest.mark.parametrize(
    ("path", "value", "element"),
    [
        (("joints", 0, 0), math.nan, "joint 0"),
        (("joints", 1, 1), math.inf, "joint 1"),
        (("joints", 2, 0), -math.inf, "joint 2"),
        (("muscles", 2, 2, "amplitude"), math.nan, "muscle 2 amplitude"),
        (("muscles", 2, 2, "amplitude"), math.inf, "muscle 2 amplitude"),
        (("muscles", 2, 2, "phase"), math.nan, "muscle 2 phase"),
        (("muscles", 2, 2, "phase"), -math.inf, "muscle 2 phase"),
    ],
)
def test_nan_and_inf_are_non_finite(path: tuple[Any, ...], value: float, element: str) -> None:
    data = triangle()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    error = rejected(data)
    assert error.rule == WalkerRule.NON_FINITE
    assert error.element == element


def test_nan_survives_json_and_is_still_rejected() -> None:
    # json.dumps writes NaN by default, so a program's NaN reaches the validator through the wire format
    data = json.loads(json.dumps(with_joint(triangle(), 1, [math.nan, 0.0])))
    assert rejected(data).rule == WalkerRule.NON_FINITE


@pytest.mark.parametrize("junk", [True, False, "1.0", None, [1.0], {"v": 1}, b"1", 1j])
@pytest.mark.parametrize(
    ("path", "element"),
    [
        (("joints", 1, 0), "joint 1"),
        (("joints", 0, 1), "joint 0"),
        (("muscles", 2, 2, "amplitude"), "muscle 2 amplitude"),
        (("muscles", 2, 2, "phase"), "muscle 2 phase"),
    ],
)
def test_non_numbers_where_numbers_belong_are_malformed(
    path: tuple[Any, ...], element: str, junk: Any
) -> None:
    data = triangle()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = junk
    error = rejected(data)
    assert error.rule == WalkerRule.MALFORMED
    assert error.element == element


@pytest.mark.parametrize("index", [True, False, "0", 1.0, None])
def test_non_int_joint_indices_are_malformed(index: Any) -> None:
    error = rejected(with_muscle(triangle(), 1, [index, 2, BONE]))
    assert error.rule == WalkerRule.MALFORMED
    assert error.element == "muscle 1"


@pytest.mark.parametrize(
    ("path", "value", "element"),
    [
        (("joints", 0, 0), 10**400, "joint 0"),
        (("joints", 1, 1), -(10**400), "joint 1"),
        (("muscles", 2, 2, "amplitude"), 10**400, "muscle 2"),
        (("muscles", 2, 2, "phase"), 10**400, "muscle 2 phase"),
    ],
    ids=["joint-x", "joint-y", "amplitude", "phase"],
)
def test_huge_integers_are_rejected_not_crashing(path: tuple[Any, ...], value: int, element: str) -> None:
    # JSON carries arbitrarily large integers; one too large for a float must be a validation error
    data = triangle()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    error = rejected(data)
    assert error.rule in {WalkerRule.OUT_OF_BOUNDS, WalkerRule.NON_FINITE, WalkerRule.AMPLITUDE_TOO_LARGE}
    assert error.element.startswith(element)


def test_valid_walker_parses_to_the_expected_record() -> None:
    walker = Walker.from_dict(triangle())
    assert walker.joints == ((0.0, 0.0), (2.0, 0.0), (0.5, 1.5))
    assert [m.kind for m in walker.muscles] == [MuscleKind.DISTANCE, MuscleKind.DISTANCE, MuscleKind.MUSCLE]
    active = walker.muscles[2]
    assert (active.a, active.b, active.amplitude, active.phase) == (2, 0, 2.0, 0.5)
    assert walker.positions.shape == (3, 2)
    assert walker.width == pytest.approx(2.0)
    assert walker.height == pytest.approx(1.5)
    assert walker.spring_lengths() == pytest.approx([2.0, math.hypot(1.5, 1.5), math.hypot(0.5, 1.5)])


@pytest.mark.parametrize(
    "data",
    [
        triangle(),
        chain(100),
        star(10),
        # tuples and ints are accepted on the way in
        {"joints": ((0, 0), (3, 4)), "muscles": ((0, 1, muscle(-10, -1000)),)},
        # the limits are inclusive
        {"joints": [[-100, 100], [100, -100]], "muscles": [[1, 0, muscle(10.0, 1000.0)]]},
        {"joints": [[0, 0], [0.1, 0]], "muscles": [[0, 1, BONE]]},
    ],
)
def test_valid_walkers_round_trip(data: dict[str, Any]) -> None:
    walker = Walker.from_dict(data)
    exported = walker.to_dict()
    assert Walker.from_dict(exported) == walker
    # the exchange format survives JSON unchanged
    assert Walker.from_dict(json.loads(json.dumps(exported))) == walker
    assert json.loads(json.dumps(exported)) == exported


def test_to_dict_writes_the_documented_format() -> None:
    exported = Walker.from_dict(triangle()).to_dict()
    assert exported == {
        "joints": [[0.0, 0.0], [2.0, 0.0], [0.5, 1.5]],
        "muscles": [
            [0, 1, {"type": "distance"}],
            [1, 2, {"type": "distance"}],
            [2, 0, {"type": "muscle", "amplitude": 2.0, "phase": 0.5}],
        ],
    }


def test_positions_cannot_be_modified() -> None:
    walker = Walker.from_dict(triangle())
    with pytest.raises(ValueError):
        walker.positions[0, 0] = 5.0


# ---- configurable limits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "rule", "looser"),
    [
        (chain(150, spacing=0.5), WalkerRule.TOO_MANY_JOINTS, WalkerLimits(max_joints=200)),
        (
            {"joints": [[0, 0], [1, 0]], "muscles": [[0, 1, BONE]] * 301},
            WalkerRule.TOO_MANY_MUSCLES,
            WalkerLimits(max_muscles=400, max_muscles_per_joint=400),
        ),
        (star(11), WalkerRule.TOO_MANY_MUSCLES_PER_JOINT, WalkerLimits(max_muscles_per_joint=11)),
        (
            with_muscle(triangle(), 2, [2, 0, muscle(15.0)]),
            WalkerRule.AMPLITUDE_TOO_LARGE,
            WalkerLimits(max_amplitude=15),
        ),
        (
            with_joint(triangle(), 2, [1.0, 150.0]),
            WalkerRule.OUT_OF_BOUNDS,
            WalkerLimits(max_coordinate=200.0),
        ),
        (
            with_muscle(triangle(), 2, [2, 0, muscle(1.0, 2000.0)]),
            WalkerRule.OUT_OF_BOUNDS,
            WalkerLimits(max_phase=3000),
        ),
        (
            with_joint(triangle(), 2, [2.05, 0.0]),
            WalkerRule.JOINTS_TOO_CLOSE,
            WalkerLimits(min_joint_distance=0.01),
        ),
    ],
)
def test_walker_rejected_by_default_passes_with_looser_limits(
    data: dict[str, Any], rule: WalkerRule, looser: WalkerLimits
) -> None:
    assert rejected(data).rule == rule
    walker = Walker.from_dict(data, looser)
    assert Walker.from_dict(walker.to_dict(), looser) == walker


@pytest.mark.parametrize(
    ("stricter", "rule", "element"),
    [
        (WalkerLimits(min_joints=4), WalkerRule.TOO_FEW_JOINTS, "joints"),
        (WalkerLimits(min_joints=2, max_joints=2), WalkerRule.TOO_MANY_JOINTS, "joints"),
        (WalkerLimits(max_muscles=2), WalkerRule.TOO_MANY_MUSCLES, "muscles"),
        (WalkerLimits(max_muscles_per_joint=1), WalkerRule.TOO_MANY_MUSCLES_PER_JOINT, "joint 0"),
        (WalkerLimits(max_amplitude=1.0), WalkerRule.AMPLITUDE_TOO_LARGE, "muscle 2"),
        (WalkerLimits(max_coordinate=1.5), WalkerRule.OUT_OF_BOUNDS, "joint 1"),
        (WalkerLimits(max_phase=0.25), WalkerRule.OUT_OF_BOUNDS, "muscle 2 phase"),
        (WalkerLimits(min_joint_distance=1.9), WalkerRule.JOINTS_TOO_CLOSE, "joints 0 and 2"),
    ],
)
def test_walker_valid_by_default_is_rejected_by_stricter_limits(
    stricter: WalkerLimits, rule: WalkerRule, element: str
) -> None:
    Walker.from_dict(triangle())
    error = rejected(triangle(), stricter)
    assert error.rule == rule
    assert error.element == element


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_joints": 1},
        {"min_joints": 0},
        {"min_joints": 10, "max_joints": 5},
        {"max_joints": 1},
        {"max_muscles": 0},
        {"max_muscles": -5},
        {"max_muscles_per_joint": 0},
        {"max_amplitude": 0.0},
        {"max_amplitude": -1.0},
        {"max_amplitude": math.nan},
        {"max_amplitude": math.inf},
        {"min_joint_distance": 0.0},
        {"min_joint_distance": -0.1},
        {"min_joint_distance": math.nan},
        {"max_coordinate": math.inf},
        {"max_coordinate": 0},
        {"max_phase": math.nan},
        {"max_phase": -1.0},
    ],
)
def test_nonsense_limits_are_config_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        WalkerLimits(**kwargs)


# ---- property: validation never fails with anything but InvalidWalkerError ----------------------

# Junk to put where the format wants something else: wrong types, non-finite and out-of-range numbers.
JUNK_TYPES = [None, True, False, "", "1", "distance", b"1", 1j, (), [], {}, [[]], {"type": None}]
JUNK_NUMBERS = [-1, 10**6, 150.0, 1e300, 2**1024, -(10**400), 10**400, math.nan, math.inf, -math.inf]
junk = st.one_of(
    st.sampled_from(JUNK_TYPES),
    st.sampled_from(JUNK_NUMBERS),
    st.floats(),
    st.text(max_size=3),
    st.integers(),
)
coordinate = st.one_of(st.floats(min_value=-99, max_value=99), st.integers(min_value=-99, max_value=99))
params = st.one_of(
    st.just({"type": "distance"}),
    st.fixed_dictionaries(
        {
            "type": st.just("muscle"),
            "amplitude": st.floats(min_value=-10, max_value=10),
            "phase": st.one_of(st.floats(min_value=-1000, max_value=1000), st.integers(-7, 7)),
        }
    ),
)


@st.composite
def walker_like(draw: st.DrawFn) -> Any:
    """Walker dicts of random size, mostly well formed, with up to two places replaced by junk."""
    n_joints = draw(st.integers(min_value=0, max_value=12))
    joints: list[Any] = [[draw(coordinate), draw(coordinate)] for _ in range(n_joints)]
    muscles: list[Any] = []
    for _ in range(draw(st.integers(min_value=0, max_value=14))):
        a = draw(st.integers(min_value=0, max_value=max(n_joints - 1, 0)))
        b = (a + draw(st.integers(min_value=1, max_value=max(n_joints - 1, 1)))) % max(n_joints, 1)
        muscles.append([a, b, draw(params)])
    data: dict[str, Any] = {"joints": joints, "muscles": muscles}
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        place = draw(
            st.sampled_from(["joint", "coordinate", "coordinate", "muscle", "index", "param", "key", "whole"])
        )
        value = draw(junk)
        if place == "joint" and joints:
            joints[draw(st.integers(0, len(joints) - 1))] = value
        elif place == "coordinate" and joints:
            joint = joints[draw(st.integers(0, len(joints) - 1))]
            if isinstance(joint, list) and len(joint) == 2:
                joint[draw(st.integers(0, 1))] = value
        elif place == "muscle" and muscles:
            muscles[draw(st.integers(0, len(muscles) - 1))] = value
        elif place == "index" and muscles:
            muscle = muscles[draw(st.integers(0, len(muscles) - 1))]
            if isinstance(muscle, list) and len(muscle) == 3:
                muscle[draw(st.integers(0, 1))] = value
        elif place == "param" and muscles:
            muscle = muscles[draw(st.integers(0, len(muscles) - 1))]
            if isinstance(muscle, list) and len(muscle) == 3 and isinstance(muscle[2], dict):
                muscle[2] = muscle[2] | {draw(st.sampled_from(["type", "amplitude", "phase"])): value}
        elif place == "key":
            data[draw(st.sampled_from(["joints", "muscles"]))] = value
        elif place == "whole":
            return value
    return data


@settings(max_examples=300, deadline=None)
@given(walker_like())
@example({"joints": [[0, 0], [2**1024, 0]], "muscles": [[0, 1, {"type": "distance"}]]})
@example(
    {"joints": [[0, 0], [1, 0]], "muscles": [[0, 1, {"type": "muscle", "amplitude": 0, "phase": -(10**400)}]]}
)
@example({"joints": [[0, 0], [1, 0]], "muscles": [[0, 10**400, {"type": "distance"}]]})
@example({"joints": [[0, 0], [1, 0]], "muscles": [[0, 1, {"type": ["muscle"]}]]})
@example(
    {"joints": [[0, 0], [1, 0]], "muscles": [[0, 1, {"type": "muscle", "amplitude": 1.0, "phase": "0"}]]}
)
def test_from_dict_either_parses_or_raises_invalid_walker(data: Any) -> None:
    try:
        walker = Walker.from_dict(data)
    except InvalidWalkerError as error:
        assert error.rule in set(WalkerRule)
        assert error.element
        assert error.element in str(error)
    else:
        assert Walker.from_dict(walker.to_dict()) == walker
