"""Turning what a user names on the command line (a program, a walker JSON, a seed) into a walker."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from elm_core.errors import InvalidWalkerError, NotFoundError
from elm_core.sodarace import SEED_NAMES, ProgramResult, ProgramStatus, Walker, run_program, seed_source

PROGRAM_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LoadedWalker:
    """A walker, or the typed reason there is none (`result.status` is not OK)."""

    name: str
    result: ProgramResult


def load_walker(spec: str) -> LoadedWalker:
    """`spec` is a .py program, a .json walker, or the name of a seed (square, radial, cppn-fixed, ...)."""
    path = Path(spec)
    if path.suffix == ".json" and path.is_file():
        return LoadedWalker(path.stem, _walker_from_json(path))
    if path.is_file():
        return LoadedWalker(path.stem, run_program(path.read_text(), timeout_s=PROGRAM_TIMEOUT_S))
    if spec.replace("-", "_") in SEED_NAMES:
        return LoadedWalker(spec, run_program(seed_source(spec), timeout_s=PROGRAM_TIMEOUT_S))
    raise NotFoundError(f"{spec!r} is neither a file nor a seed ({', '.join(SEED_NAMES)})")


def _walker_from_json(path: Path) -> ProgramResult:
    try:
        return ProgramResult(ProgramStatus.OK, walker=Walker.from_dict(json.loads(path.read_text())))
    except json.JSONDecodeError as e:
        return ProgramResult(ProgramStatus.INVALID_WALKER, f"malformed: {path.name} is not JSON: {e}")
    except InvalidWalkerError as e:
        return ProgramResult(ProgramStatus.INVALID_WALKER, str(e))
