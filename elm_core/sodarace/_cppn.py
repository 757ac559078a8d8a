"""`query_cppn`: the fixed, hidden pattern function behind the CPPN-Fixed seed.

Programs call it without seeing it, so evolution can change only its arguments. It wires a grid of
joints: neighbours (8-neighbourhood) get a spring, diagonal springs are muscles with amplitude
max(|dx|, |dy|), and the phase is the sign of the spring's midpoint x (the halves beat in opposition).
"""

from __future__ import annotations

from typing import Any

_MAX_GRID = 100  # runaway guard; validation applies the configured walker limits afterwards


def query_cppn(wc: Any, width: int, height: int, spacing: float) -> list[Any]:
    """Adds a width x height grid of joints `spacing` apart to `wc`, wires it, returns the joints."""
    if not (isinstance(width, int) and isinstance(height, int)) or not (
        1 <= width <= _MAX_GRID and 1 <= height <= _MAX_GRID
    ):
        raise ValueError(f"query_cppn: width and height must be ints in [1, {_MAX_GRID}]")
    points = [(x - (width - 1) / 2, float(y)) for x in range(width) for y in range(height)]
    joints = [wc.add_joint(x * spacing, y * spacing) for x, y in points]
    for i, (x0, y0) in enumerate(points):
        for j in range(i + 1, len(points)):
            x1, y1 = points[j]
            if (x0 - x1) ** 2 + (y0 - y1) ** 2 > 2:
                continue
            diagonal = x0 != x1 and y0 != y1
            amplitude = max(abs(x0 - x1), abs(y0 - y1)) if diagonal else 0.0
            middle = (x0 + x1) / 2
            wc.add_muscle(joints[i], joints[j], diagonal, amplitude, float((middle > 0) - (middle < 0)))
    return joints
