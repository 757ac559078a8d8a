"""CPPN-Mutable: a grid of joints wired by pattern functions that are part of the program."""


def connect(x0, y0, x1, y1):
    """Whether grid points (x0, y0) and (x1, y1) get a spring."""
    return (x0 - x1) ** 2 + (y0 - y1) ** 2 <= 2


def amplitude(x0, y0, x1, y1):
    """Diagonal springs are muscles; springs along the grid are bones (amplitude 0)."""
    if x0 != x1 and y0 != y1:
        return max(abs(x0 - x1), abs(y0 - y1))
    return 0.0


def phase(x0, y0, x1, y1):
    """The two halves of the body beat in opposite directions."""
    middle = (x0 + x1) / 2
    return (middle > 0) - (middle < 0)


def make_walker(width=8, height=3, spacing=1.5):
    wc = walker_creator()

    points = [(x - (width - 1) / 2, y) for x in range(width) for y in range(height)]
    joints = [wc.add_joint(x * spacing, y * spacing) for x, y in points]

    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            p, q = points[i], points[j]
            if connect(*p, *q):
                a = amplitude(*p, *q)
                wc.add_muscle(joints[i], joints[j], a != 0, a, phase(*p, *q))

    return wc.get_walker()
