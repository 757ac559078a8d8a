"""Active muscles whose rest lengths are all written with one numpy assignment per step.

Setting `DampedSpring.rest_length` through pymunk costs a Python property call plus a cffi call per
spring per step, which for a typical walker costs more than the physics step itself. Here the
muscles are Chipmunk damped springs initialised *in place* inside one numpy buffer at a fixed stride,
so the `restLength` fields of all of them form one strided float64 view: a step's update is
`view[:] = table[k]`. Bones (passive springs) never change and stay ordinary pymunk objects.

Chipmunk's struct is opaque to cffi, so the field offset is found once by experiment and verified
(write through the API, read through the view, and back); a pymunk whose layout differs is refused
with a StateError rather than simulated wrongly. Sleeping must stay disabled in the space: the
in-place write does not wake bodies the way `cpDampedSpringSetRestLength` does.
"""

from __future__ import annotations

import functools

import numpy as np
import pymunk
from pymunk._chipmunk_cffi import ffi, lib

from elm_core.errors import StateError

# sizeof(cpDampedSpring) is 248 bytes in Chipmunk 7 / Munk2D (malloc_usable_size of a pymunk spring
# reads 248 on pymunk 7.3); twice that leaves room for added fields.
_STRIDE = 512
_PROBE = 1234.5678901234


@functools.cache
def _rest_length_offset() -> int:
    """Byte offset of `restLength` inside cpDampedSpring, found and cross-checked once per process."""
    a, b = pymunk.Body(1.0, 1.0), pymunk.Body(1.0, 1.0)
    spring = pymunk.DampedSpring(a, b, (0, 0), (0, 0), _PROBE, 1.0, 1.0)
    raw = np.frombuffer(ffi.buffer(ffi.cast("char *", spring._constraint), 240), dtype=np.float64)
    hits = np.flatnonzero(raw == _PROBE)
    if len(hits) != 1:
        raise StateError(f"pymunk {pymunk.version}: cannot locate DampedSpring.restLength in memory")
    return int(hits[0]) * 8


class MuscleBank:
    """N damped springs between given bodies, with a writable strided view of their rest lengths."""

    def __init__(
        self,
        space: pymunk.Space,
        ends: list[tuple[pymunk.Body, pymunk.Body]],
        rest_lengths: np.ndarray,
        stiffness: float,
        damping: float,
    ) -> None:
        offset = _rest_length_offset()
        self._space = space
        self._buffer = np.zeros(max(1, len(ends)) * _STRIDE, dtype=np.uint8)
        self._constraints: list[object] = []
        base = self._buffer.ctypes.data
        try:
            for k, ((a, b), rest) in enumerate(zip(ends, rest_lengths.tolist(), strict=True)):
                spring = ffi.cast("cpDampedSpring *", base + k * _STRIDE)
                lib.cpDampedSpringInit(
                    spring, a._body, b._body, (0.0, 0.0), (0.0, 0.0), rest, stiffness, damping
                )
                constraint = ffi.cast("cpConstraint *", spring)
                lib.cpSpaceAddConstraint(space._space, constraint)
                self._constraints.append(constraint)
        except BaseException:
            self.detach()
            raise
        self.rest_lengths = np.ndarray(
            (len(ends),), dtype=np.float64, buffer=self._buffer, offset=offset, strides=(_STRIDE,)
        )
        self._verify()

    def _verify(self) -> None:
        if not self._constraints:
            return
        first = self._constraints[0]
        saved = float(self.rest_lengths[0])
        lib.cpDampedSpringSetRestLength(first, _PROBE)
        seen_by_view = float(self.rest_lengths[0])
        self.rest_lengths[0] = saved
        if seen_by_view != _PROBE or lib.cpDampedSpringGetRestLength(first) != saved:
            self.detach()
            raise StateError(f"pymunk {pymunk.version}: DampedSpring memory layout is not the expected one")

    def detach(self) -> None:
        """Remove the springs from the space. Must run before the buffer or the space goes away."""
        while self._constraints:
            lib.cpSpaceRemoveConstraint(self._space._space, self._constraints.pop())
