"""The four seed programs of the paper, shipped as program files next to this module."""

from __future__ import annotations

from importlib import resources

from elm_core.errors import NotFoundError

SEED_NAMES = ("square", "radial", "cppn_fixed", "cppn_mutable")


def seed_source(name: str) -> str:
    """Source text of a seed program; accepts `cppn-fixed` as well as `cppn_fixed`."""
    key = name.replace("-", "_")
    if key not in SEED_NAMES:
        raise NotFoundError(f"unknown seed {name!r}; choose one of {', '.join(SEED_NAMES)}")
    return resources.files("elm_core.sodarace").joinpath("seeds", f"{key}.py").read_text()
