"""Radial: eight joints on a circle around a centre joint."""


def make_walker():
    wc = walker_creator()

    centre = wc.add_joint(0, 0)
    rim = []
    for k in range(8):
        angle = 2 * math.pi * k / 8
        rim.append(wc.add_joint(5 * math.cos(angle), 5 * math.sin(angle)))

    for k in range(8):
        # each rim joint is tied to its neighbour by a bone ...
        wc.add_muscle(rim[k], rim[(k + 1) % 8], False, 0.0, 0.0)
        # ... and to the centre by a muscle whose amplitude and phase grow around the rim
        strength = (k + 1) / 8
        wc.add_muscle(rim[k], centre, True, strength, strength)

    return wc.get_walker()
