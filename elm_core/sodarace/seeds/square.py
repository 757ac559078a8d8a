"""Square: a square of four joints around a centre joint."""


def make_walker():
    wc = walker_creator()

    corners = [wc.add_joint(x, y) for x, y in ((0, 0), (0, 10), (10, 10), (10, 0))]
    centre = wc.add_joint(5, 5)

    # the edges of the square are passive
    for k in range(4):
        wc.add_muscle(corners[k], corners[(k + 1) % 4], False, 0.0, 0.0)

    # one prong to the centre is passive, the other three are active
    wc.add_muscle(corners[3], centre, False, 0.0, 0.0)
    for corner, amplitude in zip(corners[:3], (5.0, 10.0, 2.0)):
        wc.add_muscle(corner, centre, True, amplitude, 0.0)

    return wc.get_walker()
