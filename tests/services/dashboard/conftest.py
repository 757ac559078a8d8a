"""A dashboard served for real on loopback (uvicorn on a thread), and a plain HTTP client for it."""

from __future__ import annotations

import dataclasses
import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from elm_core.store import BatchRecord, EliteRecord, IndividualRecord, MutationRecord, SQLiteStore
from services.dashboard import DashboardThread, StoreSource, create_app


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None) -> Reply:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return Reply(reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


@pytest.fixture
def run_copy(gp_run: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A copy of the session's GP run store, to add batches to."""
    store_file, run_id = gp_run
    copy = tmp_path / "store.sqlite"
    shutil.copyfile(store_file, copy)
    return copy, run_id


@pytest.fixture
def store_dashboard(gp_run: tuple[Path, str]) -> Iterator[tuple[str, str]]:
    """The dashboard of the session's GP run: its base URL and the run id."""
    store_file, run_id = gp_run
    source = StoreSource(store_file)
    with DashboardThread(create_app(source, source_name="test store", poll_s=0.05)) as server:
        yield server.url, run_id
    source.close()


HOSTILE = '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def commit_child(store: SQLiteStore, run_id: str, *, source: str, raw_output: str) -> IndividualRecord:
    """Commits one more batch to the run: a child of its best elite, put in a cell that was empty, made by
    an 'llm' mutation that wrote `raw_output`. Returns the child."""
    run = store.get_run(run_id)
    best = store.top_elites(run_id, 1)[0]
    parent = store.individual(run_id, best.individual_id)
    taken = {e.cell for e in store.elites(run_id)}
    cell = next(c for c in range(1728) if c not in taken)
    child = dataclasses.replace(parent, individual_id=store.next_individual_id(run_id), batch=run.batches,
                                parent_id=parent.individual_id, source=source, cell=cell,
                                fitness=best.fitness - 1.0)  # fmt: skip
    mutation = MutationRecord(run_id=run_id, batch=run.batches, parent_id=parent.individual_id,
                              child_id=child.individual_id, operator="directed", style="rewrite",
                              message=HOSTILE, raw_output=raw_output, mutation_outcome="OK", applied=True,
                              ran=True, inserted=True, fitness_delta=-1.0, generated_tokens=42)  # fmt: skip
    last = store.metrics(run_id)[-1]
    metrics = dataclasses.replace(last, batch=run.batches, evaluations=last.evaluations + 1,
                                  filled=last.filled + 1)  # fmt: skip
    elite = EliteRecord(run_id=run_id, cell=cell, individual_id=child.individual_id,
                        fitness=child.fitness or 0, descriptors=child.descriptors or ())  # fmt: skip
    store.commit_batch(BatchRecord(run_id=run_id, batch=run.batches, individuals=(child,),
                                   mutations=(mutation,), elites=(elite,), metrics=metrics,
                                   rng_state_json=run.rng_state_json))  # fmt: skip
    return child
