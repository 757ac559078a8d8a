"""A writer killed with SIGKILL at arbitrary moments leaves a store that opens, is consistent, and resumes.

The writer is a real child process: this file run as a script (`python test_crash.py DB RUN_ID`) commits
batches of BATCH_SIZE individuals and BATCH_SIZE mutations as fast as it can, until it is killed.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from elm_core.store import (
    BatchRecord,
    EliteRecord,
    IndividualRecord,
    MetricsRecord,
    MutationRecord,
    SQLiteStore,
)

RUN = "crash"
BATCH_SIZE = 20
KILLS = 3
BATCHES_BEFORE_KILL = 3  # the child commits at least this many batches in each life before it may die
KILL_JITTER_S = 0.03  # then it dies at a random moment within this window


def make_batch(run_id: str, batch: int, first_id: int) -> BatchRecord:
    """Individual i descends from i - 1 (the first from nothing), so every batch hangs off the previous."""
    ids = range(first_id, first_id + BATCH_SIZE)
    individuals = tuple(_individual(run_id, batch, i) for i in ids)
    mutations = tuple(_mutation(run_id, batch, i) for i in ids)
    elites = tuple(
        EliteRecord(run_id=run_id, cell=i % 7, individual_id=i, fitness=float(i), descriptors=(1.0, 2.0, 3.0))
        for i in ids
    )
    return BatchRecord(
        run_id=run_id,
        batch=batch,
        individuals=individuals,
        mutations=mutations,
        elites=elites,
        metrics=_metrics(run_id, batch),
        rng_state_json=json.dumps({"after_batch": batch}),
    )


def _individual(run_id: str, batch: int, i: int) -> IndividualRecord:
    return IndividualRecord(
        run_id=run_id,
        individual_id=i,
        batch=batch,
        parent_id=i - 1 if i > 0 else None,
        source="def make_walker():\n    pass\n" * 20,
        status="OK",
        message="",
        fitness=float(i),
        descriptors=(1.0, 2.0, 3.0),
        cell=i % 7,
        walker_json=json.dumps({"joints": [[0.0, 0.0]] * 10, "muscles": []}),
        timings_json=json.dumps({"simulate_s": 0.1}),
        created_at=time.time(),
    )


def _mutation(run_id: str, batch: int, i: int) -> MutationRecord:
    return MutationRecord(
        run_id=run_id,
        batch=batch,
        parent_id=max(i - 1, 0),
        child_id=i,
        operator="llm",
        style="diff",
        message="Tweak a muscle",
        raw_output="@@ -1 +1 @@\n" * 10,
        mutation_outcome="OK",
        applied=True,
        ran=True,
        inserted=i % 2 == 0,
        fitness_delta=1.0,
    )


def _metrics(run_id: str, batch: int) -> MetricsRecord:
    return MetricsRecord(
        run_id=run_id,
        batch=batch,
        evaluations=(batch + 1) * BATCH_SIZE,
        filled=7,
        coverage=0.07,
        qd_score=1.0,
        max_fitness=1.0,
        applied_fraction=1.0,
        ran_fraction=1.0,
        inserted_fraction=0.5,
        elapsed_s=0.0,
        evaluations_per_s=0.0,
        created_at=time.time(),
    )


def commit_next(store: SQLiteStore, run_id: str) -> int:
    """Commit the run's next batch, numbered and identified from what the store holds; return its number."""
    batch = store.get_run(run_id).batches
    store.commit_batch(make_batch(run_id, batch, store.next_individual_id(run_id)))
    return batch


def _write_forever(path: str, run_id: str) -> None:
    with SQLiteStore(path) as store:
        while True:
            commit_next(store, run_id)


def _wait_for_batches(store: SQLiteStore, at_least: int, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while store.get_run(RUN).batches < at_least:
        assert child.poll() is None, (
            f"the writer exited early: {child.stderr.read() if child.stderr else ''!r}"
        )
        assert time.monotonic() < deadline, "the writer committed too slowly"
        time.sleep(0.002)


def _assert_consistent(path: Path) -> None:
    with SQLiteStore(path) as store:
        run = store.get_run(RUN)
        individuals = store.individuals(RUN)
        per_batch = Counter(i.batch for i in individuals)
        assert run.batches == len(per_batch) == len(store.metrics(RUN))
        assert sorted(per_batch) == [m.batch for m in store.metrics(RUN)] == list(range(run.batches))
        assert set(per_batch.values()) == {BATCH_SIZE}
        assert set(Counter(m.batch for m in store.mutations(RUN)).values()) == {BATCH_SIZE}
        assert run.evaluations == len(individuals) == store.next_individual_id(RUN)
        assert json.loads(run.rng_state_json) == {"after_batch": run.batches - 1}
        assert commit_next(store, RUN) == run.batches  # resume: the next batch number is free
        assert store.get_run(RUN).batches == run.batches + 1


def test_sigkill_mid_run_leaves_a_consistent_resumable_store(tmp_path: Path) -> None:
    path = tmp_path / "elm.sqlite"
    jitter = random.Random(20240501)
    with SQLiteStore(path) as watcher:
        watcher.create_run(run_id=RUN, name="crash", config_json="{}", rng_seed=0, rng_state_json="{}")
        for _ in range(KILLS):
            start = watcher.get_run(RUN).batches
            child = subprocess.Popen([sys.executable, __file__, str(path), RUN], stderr=subprocess.PIPE)
            try:
                _wait_for_batches(watcher, start + BATCHES_BEFORE_KILL, child)
                time.sleep(jitter.uniform(0, KILL_JITTER_S))
                child.send_signal(signal.SIGKILL)
            finally:
                child.kill()
                child.wait()
                assert child.stderr is not None
                child.stderr.close()
            assert child.returncode == -signal.SIGKILL
            _assert_consistent(path)


if __name__ == "__main__":
    _write_forever(sys.argv[1], sys.argv[2])
