"""Turning what a user names on the command line (a program, a walker JSON, a seed) into a walker.

Programs run only in the sandbox; a walker JSON is parsed and validated here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from elm_core.errors import InvalidWalkerError, NotFoundError, StateError
from elm_core.sandbox import ExecutionResult, Outcome, Sandbox
from elm_core.sodarace import SEED_NAMES, Walker, seed_source


@dataclass(frozen=True)
class LoadedWalker:
    """A walker, or the typed reason there is none (`result.status` is not OK)."""

    name: str
    result: ExecutionResult


def load_walkers(specs: list[str]) -> list[LoadedWalker]:
    """Each spec is a .py program, a .json walker, or a seed name (square, radial, cppn-fixed, ...)."""
    sources: dict[int, tuple[str, str]] = {}
    loaded: dict[int, LoadedWalker] = {}
    for k, spec in enumerate(specs):
        path = Path(spec)
        if path.suffix == ".json" and path.is_file():
            loaded[k] = LoadedWalker(path.stem, _walker_from_json(path))
        elif path.is_file():
            sources[k] = (path.stem, path.read_text(errors="replace"))
        elif spec.replace("-", "_") in SEED_NAMES:
            sources[k] = (spec, seed_source(spec))
        else:
            raise NotFoundError(f"{spec!r} is neither a file nor a seed ({', '.join(SEED_NAMES)})")
    if sources:
        with Sandbox() as sandbox:
            for k, (name, source) in sources.items():
                loaded[k] = LoadedWalker(name, sandbox.run(source))
    return [loaded[k] for k in range(len(specs))]


def load_walker(spec: str) -> LoadedWalker:
    return load_walkers([spec])[0]


def seed_walkers() -> list[tuple[str, Walker]]:
    """The four seeds, built in the sandbox."""
    named = []
    for loaded in load_walkers(list(SEED_NAMES)):
        if loaded.result.walker is None:
            raise StateError(
                f"seed {loaded.name} does not build: {loaded.result.status}: {loaded.result.message}"
            )
        named.append((loaded.name, loaded.result.walker))
    return named


def _walker_from_json(path: Path) -> ExecutionResult:
    try:
        return ExecutionResult(Outcome.OK, walker=Walker.from_dict(json.loads(path.read_text())))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return ExecutionResult(Outcome.INVALID_WALKER, f"malformed: {path.name} is not JSON: {e}")
    except InvalidWalkerError as e:
        return ExecutionResult(Outcome.INVALID_WALKER, str(e))
