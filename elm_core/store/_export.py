"""Export one run as flat JSON Lines files, which pandas and pyarrow read directly.

Each table file holds one JSON object per line with the record's fields as keys, the same keys in the same
order on every line (None as null, descriptors as an array of floats, `*_json` columns as strings):
`pandas.read_json(path, lines=True)` or `pyarrow.json.read_json(path)`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elm_core.store._sqlite import SQLiteStore


@dataclass(frozen=True, kw_only=True)
class RunExport:
    """Where `export_run` wrote each file."""

    run: Path  # run.json: the run record as one JSON object
    individuals: Path
    mutations: Path
    elites: Path
    metrics: Path


def export_run(store: SQLiteStore, run_id: str, out_dir: str | os.PathLike[str]) -> RunExport:
    """Write run.json and individuals/mutations/elites/metrics.jsonl for `run_id` under `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = RunExport(
        run=out / "run.json",
        individuals=out / "individuals.jsonl",
        mutations=out / "mutations.jsonl",
        elites=out / "elites.jsonl",
        metrics=out / "metrics.jsonl",
    )
    _write_atomic(paths.run, [json.dumps(dataclasses.asdict(store.get_run(run_id)), indent=2)])
    _write_jsonl(paths.individuals, store.iter_individuals(run_id))
    _write_jsonl(paths.mutations, store.iter_mutations(run_id))
    _write_jsonl(paths.elites, store.elites(run_id))
    _write_jsonl(paths.metrics, store.metrics(run_id))
    return paths


def _write_jsonl(path: Path, records: Iterable[Any]) -> None:
    _write_atomic(path, (json.dumps(dataclasses.asdict(record)) for record in records))


def _write_atomic(path: Path, lines: Iterable[str]) -> None:
    """Write the lines to a temporary sibling, then rename: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(tmp, path)
