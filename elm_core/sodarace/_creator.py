"""`walker_creator`: the small API that generated programs call to build a walker.

Both published call forms of `add_muscle` are accepted, told apart by the type of the third argument:

    add_muscle(j0, j1, active: bool, amplitude, phase)     # the paper's form
    add_muscle(j0, j1, amplitude=0.0, phase=0.0)           # the public re-implementation's form
                                                           # (zero amplitude and phase = passive)

Nothing here is trusted: `get_walker()` returns the plain exchange dict, which is validated by
`Walker.from_dict` on the trusted side. The creator only refuses what would make it misbehave
(non-handles, runaway sizes) with the ordinary exceptions a programmer expects.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

# Far above any valid walker; stops a runaway loop from filling memory before validation sees it.
_RUNAWAY_LIMIT = 10_000


class Joint(tuple):
    """A joint handle. It is also the (x, y) tuple, since published programs index it like one."""

    number: int  # position in the creator's joint list (not `index`: that is tuple.index)

    def __new__(cls, x: float, y: float, number: int) -> Joint:
        joint = super().__new__(cls, (x, y))
        joint.number = number
        return joint

    def __getnewargs__(self) -> tuple[float, float, int]:  # copy, deepcopy and pickle rebuild through this
        return (self[0], self[1], self.number)

    @property
    def x(self) -> float:
        return self[0]

    @property
    def y(self) -> float:
        return self[1]


class walker_creator:  # noqa: N801 - the name programs are written against
    """Builds a walker from joints and muscles; see the module docstring for the call forms."""

    def __init__(self) -> None:
        self.joints: list[Joint] = []
        self.muscles: list[list[Any]] = []

    def add_joint(self, x: float, y: float) -> Joint:
        if len(self.joints) >= _RUNAWAY_LIMIT:
            raise ValueError(f"add_joint: more than {_RUNAWAY_LIMIT} joints")
        joint = Joint(_as_float("x", x), _as_float("y", y), len(self.joints))
        self.joints.append(joint)
        return joint

    def add_muscle(self, j0: Any, j1: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if len(self.muscles) >= _RUNAWAY_LIMIT:
            raise ValueError(f"add_muscle: more than {_RUNAWAY_LIMIT} muscles")
        active, amplitude, phase = _muscle_arguments(args, kwargs)
        params: dict[str, Any] = {"type": "muscle", "amplitude": amplitude, "phase": phase}
        if not active:
            params = {"type": "distance"}
        muscle = [self._index_of(j0, "j0"), self._index_of(j1, "j1"), params]
        self.muscles.append(muscle)
        return muscle

    def get_walker(self) -> dict[str, Any]:
        return {
            "joints": [[j.x, j.y] for j in self.joints],
            "muscles": [[a, b, dict(params)] for a, b, params in self.muscles],
        }

    def _index_of(self, handle: Any, name: str) -> int:
        if (
            isinstance(handle, Joint)
            and handle.number < len(self.joints)
            and self.joints[handle.number] is handle
        ):
            return handle.number
        if isinstance(handle, int) and not isinstance(handle, bool) and 0 <= handle < len(self.joints):
            return handle
        if isinstance(handle, tuple | list) and len(handle) == 2:
            for joint in self.joints:  # a plain (x, y) pair: find the joint at that position
                if (joint.x, joint.y) == tuple(handle):
                    return joint.number
        raise ValueError(f"add_muscle: {name}={handle!r} is not a joint returned by add_joint")


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def _muscle_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, float, float]:
    """Returns (active, amplitude, phase) for either call form."""
    paper_form = bool(args and isinstance(args[0], bool)) or "active" in kwargs
    names: tuple[str, ...] = ("active", "amplitude", "phase") if paper_form else ("amplitude", "phase")
    if len(args) > 3:
        raise TypeError(f"add_muscle takes at most 5 positional arguments, got {len(args) + 2}")
    if len(args) > len(names):
        raise TypeError("add_muscle(j0, j1, amplitude, phase): third argument must be a bool for 'active'")
    positional = dict(zip(names, args, strict=False))
    for key in kwargs:
        if key not in names:
            raise TypeError(f"add_muscle got an unexpected keyword argument {key!r}")
        if key in positional:
            raise TypeError(f"add_muscle got multiple values for argument {key!r}")
    values = {"amplitude": 0.0, "phase": 0.0} | positional | kwargs
    amplitude, phase = _as_float("amplitude", values["amplitude"]), _as_float("phase", values["phase"])
    active = bool(values["active"]) if paper_form else (amplitude != 0.0 or phase != 0.0)
    return active, amplitude, phase
