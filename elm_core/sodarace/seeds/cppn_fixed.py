"""CPPN-Fixed: a grid of joints wired by a fixed, hidden pattern function (query_cppn).

Only the arguments of the call can change: grid width and height in joints, and spacing.
"""


def make_walker():
    wc = walker_creator()
    query_cppn(wc, 8, 3, 1.5)
    return wc.get_walker()
