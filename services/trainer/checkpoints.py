"""The checkpoints a trainer wrote: subdirectories of its checkpoints directory holding a `manifest.json`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger()

MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True, kw_only=True)
class CheckpointInfo:
    path: Path
    job_id: str
    run_id: str
    base_model: str
    metrics: dict[str, float]
    created_at: float  # unix seconds


def list_checkpoints(directory: Path, run_id: str = "") -> list[CheckpointInfo]:
    """Every checkpoint under `directory` (of `run_id`, if given), oldest first; unreadable manifests are
    skipped with a warning."""
    if not directory.is_dir():
        return []
    found = [_read(sub) for sub in sorted(directory.iterdir()) if (sub / MANIFEST_FILE).is_file()]
    return sorted(
        (c for c in found if c is not None and (not run_id or c.run_id == run_id)),
        key=lambda c: (c.created_at, c.path),
    )


def _read(path: Path) -> CheckpointInfo | None:
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("the manifest is not a JSON object")
        return CheckpointInfo(
            path=path,
            job_id=_text(manifest, "job_id"),
            run_id=_text(manifest, "run_id"),
            base_model=_text(manifest, "base_model"),
            metrics={str(k): float(v) for k, v in dict(manifest.get("metrics") or {}).items() if _number(v)},
            created_at=float(manifest["created_at"]) if _number(manifest.get("created_at")) else 0.0,
        )
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as e:  # JSONDecodeError is a ValueError
        log.warning("skipping an unreadable checkpoint manifest", path=str(path), error=str(e))
        return None


def _text(manifest: dict[str, Any], key: str) -> str:
    value = manifest.get(key, "")
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a string, got {type(value).__name__}")
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
