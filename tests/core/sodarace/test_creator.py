"""walker_creator: the API generated programs call to build walkers."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from elm_core.sodarace import Joint, MuscleKind, Walker, walker_creator

DISTANCE = {"type": "distance"}


def muscle(amplitude: float, phase: float) -> dict[str, Any]:
    return {"type": "muscle", "amplitude": amplitude, "phase": phase}


def two_joints() -> tuple[walker_creator, Joint, Joint]:
    wc = walker_creator()
    return wc, wc.add_joint(0, 0), wc.add_joint(3, 0)


# ---- both call forms of add_muscle ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        # the paper's form: add_muscle(j0, j1, active, amplitude, phase)
        ((True, 2.0, 0.5), {}, muscle(2.0, 0.5)),
        ((False, 0, 0), {}, DISTANCE),
        ((False, 0.0, 0.0), {}, DISTANCE),
        ((False, 3.0, 1.0), {}, DISTANCE),  # not active: a bone whatever the amplitude
        ((True,), {"amplitude": 2.0, "phase": 0.5}, muscle(2.0, 0.5)),
        ((), {"active": True, "amplitude": 4.0, "phase": -1.0}, muscle(4.0, -1.0)),
        ((), {"active": False, "amplitude": 4.0, "phase": -1.0}, DISTANCE),
        ((), {"active": True, "amplitude": 4, "phase": 1}, muscle(4.0, 1.0)),
        # the re-implementation's form: add_muscle(j0, j1, amplitude=0.0, phase=0.0)
        ((), {}, DISTANCE),
        ((), {"amplitude": 3.0, "phase": 1.0}, muscle(3.0, 1.0)),
        ((3.0, 1.0), {}, muscle(3.0, 1.0)),
        ((3.0,), {"phase": 1.0}, muscle(3.0, 1.0)),
        ((3,), {}, muscle(3.0, 0.0)),
        ((0.0, 0.0), {}, DISTANCE),
        ((0, 0), {}, DISTANCE),
        ((), {"amplitude": 0.0, "phase": 0.0}, DISTANCE),
    ],
)
def test_add_muscle_call_forms(
    args: tuple[Any, ...], kwargs: dict[str, Any], expected: dict[str, Any]
) -> None:
    wc, a, b = two_joints()
    wc.add_muscle(a, b, *args, **kwargs)
    data = wc.get_walker()
    assert data["muscles"] == [[0, 1, expected]]
    walker = Walker.from_dict(data)
    expected_kind = MuscleKind.DISTANCE if expected["type"] == "distance" else MuscleKind.MUSCLE
    assert walker.muscles[0].kind is expected_kind


def test_add_muscle_returns_the_muscle_it_added() -> None:
    wc, a, b = two_joints()
    assert wc.add_muscle(a, b, True, 2.0, 0.5) == [0, 1, muscle(2.0, 0.5)]
    assert wc.add_muscle(b, a) == [1, 0, DISTANCE]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((True, 1.0, 0.0, 5.0), {}),  # too many positional arguments
        ((1.0, 0.0, 0.0), {}),  # three numbers: the third must be the bool 'active'
        ((), {"amplitude": 1.0, "frequency": 2.0}),  # unknown keyword
        ((1.0,), {"amplitude": 2.0}),  # amplitude given twice
        ((True,), {"active": False}),  # active given twice
        (("strong", 0.0), {}),
        ((True, "2", 0.5), {}),
        ((True, 2.0, None), {}),
        ((), {"amplitude": [1.0]}),
        ((1.0, True), {}),  # a bool is not a phase
    ],
)
def test_bad_muscle_arguments_are_type_errors(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    wc, a, b = two_joints()
    with pytest.raises(TypeError):
        wc.add_muscle(a, b, *args, **kwargs)
    assert wc.get_walker()["muscles"] == []


# ---- joints and handles -----------------------------------------------------------------------------


def test_joint_handles_behave_like_xy_tuples() -> None:
    wc = walker_creator()
    wc.add_joint(0, 0)
    joint = wc.add_joint(1.5, -2)
    assert isinstance(joint, tuple)
    assert joint == (1.5, -2.0)
    assert len(joint) == 2
    assert joint[0] == 1.5 and joint[1] == -2.0 and joint[-1] == -2.0
    assert (joint.x, joint.y) == (1.5, -2.0)
    x, y = joint
    assert (x, y) == (1.5, -2.0)
    assert list(joint) == [1.5, -2.0]
    assert math.hypot(*joint) == pytest.approx(2.5)
    assert hash(joint) == hash((1.5, -2.0))
    assert joint in {(1.5, -2.0)}
    assert json.loads(json.dumps(joint)) == [1.5, -2.0]
    assert joint[:1] == (1.5,)
    assert isinstance(joint.x, float) and isinstance(joint.y, float)


def test_joint_handles_can_be_copied_like_tuples() -> None:
    wc, a, b = two_joints()
    for duplicate in (copy.copy(b), copy.deepcopy(b)):
        assert duplicate == (3.0, 0.0)
        # a copy still names the same joint, at least by its position
        assert wc.add_muscle(a, duplicate) == [0, 1, DISTANCE]


def test_plain_indices_and_xy_pairs_are_accepted_as_handles() -> None:
    wc = walker_creator()
    wc.add_joint(0, 0)
    wc.add_joint(3, 0)
    wc.add_joint(1.5, 2.5)
    assert wc.add_muscle(0, 1) == [0, 1, DISTANCE]
    assert wc.add_muscle((3, 0), (1.5, 2.5), True, 1.0, 0.0) == [1, 2, muscle(1.0, 0.0)]
    assert wc.add_muscle([1.5, 2.5], 0) == [2, 0, DISTANCE]
    Walker.from_dict(wc.get_walker())


def test_handles_from_another_creator_are_rejected() -> None:
    wc, a, _ = two_joints()
    other = walker_creator()
    other.add_joint(10, 10)
    stranger = other.add_joint(20, 20)  # index 1 exists in wc too, but at another position
    with pytest.raises(ValueError):
        wc.add_muscle(a, stranger)
    assert wc.get_walker()["muscles"] == []


@pytest.mark.parametrize(
    "handle",
    [2, -1, 100, True, False, None, "0", 0.0, 1.0, (7, 7), (0, 0, 0), [0], {"x": 0, "y": 0}, object()],
)
def test_junk_handles_are_rejected(handle: Any) -> None:
    wc, a, _ = two_joints()
    with pytest.raises((ValueError, TypeError)):
        wc.add_muscle(a, handle)
    with pytest.raises((ValueError, TypeError)):
        wc.add_muscle(handle, a, True, 1.0, 0.0)
    assert wc.get_walker()["muscles"] == []


@pytest.mark.parametrize(("x", "y"), [("1", 0), (0, None), (True, 0), (0, [1]), (1j, 0)])
def test_add_joint_rejects_non_numbers(x: Any, y: Any) -> None:
    wc = walker_creator()
    with pytest.raises(TypeError):
        wc.add_joint(x, y)
    assert wc.get_walker()["joints"] == []


def test_add_joint_stores_floats_and_numbers_joints_in_order() -> None:
    wc = walker_creator()
    joints = [wc.add_joint(k, 2 * k) for k in range(5)]
    assert [j.number for j in joints] == list(range(5))
    assert wc.get_walker()["joints"] == [[float(k), float(2 * k)] for k in range(5)]
    assert all(isinstance(v, float) for pair in wc.get_walker()["joints"] for v in pair)


def test_runaway_loops_are_stopped() -> None:
    wc = walker_creator()
    with pytest.raises(ValueError):
        for k in range(20_000):
            wc.add_joint(k % 100, k // 100)
    assert 100 < len(wc.get_walker()["joints"]) < 20_000
    wc2, a, b = two_joints()
    with pytest.raises(ValueError):
        for _ in range(20_000):
            wc2.add_muscle(a, b)
    assert 100 < len(wc2.get_walker()["muscles"]) < 20_000


# ---- get_walker -----------------------------------------------------------------------------------


def test_get_walker_output_passes_validation() -> None:
    wc = walker_creator()
    corners = [wc.add_joint(x, y) for x, y in ((0, 0), (0, 4), (4, 4), (4, 0))]
    centre = wc.add_joint(2, 2)
    for k in range(4):
        wc.add_muscle(corners[k], corners[(k + 1) % 4], False, 0.0, 0.0)
        wc.add_muscle(corners[k], centre, amplitude=1.0 + k, phase=k * math.pi / 2)
    data = wc.get_walker()
    walker = Walker.from_dict(data)
    assert walker.to_dict() == data
    assert Walker.from_dict(json.loads(json.dumps(data))) == walker
    assert [m.kind for m in walker.muscles].count(MuscleKind.MUSCLE) == 4


def test_get_walker_is_a_snapshot() -> None:
    wc, a, b = two_joints()
    wc.add_muscle(a, b, True, 1.0, 0.0)
    first = wc.get_walker()
    first["joints"].append([9, 9])
    first["muscles"][0][2]["amplitude"] = 99.0
    second = wc.get_walker()
    assert second == {"joints": [[0.0, 0.0], [3.0, 0.0]], "muscles": [[0, 1, muscle(1.0, 0.0)]]}
    wc.add_joint(5, 5)
    assert len(second["joints"]) == 2
