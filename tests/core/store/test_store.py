"""SQLiteStore on real files: round trips, atomic batches, lineage, paging, migrations and export."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from elm_core.errors import InvalidRequestError, NotFoundError, StateError
from elm_core.store import (
    SCHEMA_VERSION,
    BatchRecord,
    EliteRecord,
    IndividualRecord,
    MetricsRecord,
    MutationRecord,
    RunStatus,
    SQLiteStore,
    export_run,
)
from elm_core.store._sqlite import _SELECT_OPERATOR_STATS

RUN = "run-a"
CONFIG = json.dumps({"batch_size": 4, "seed": 7})
RNG_STATE = json.dumps({"bit_generator": "PCG64", "state": {"state": 1, "inc": 3}})


def individual(
    i: int, batch: int, parent: int | None = None, *, status: str = "OK", run_id: str = RUN
) -> IndividualRecord:
    ok = status == "OK"
    return IndividualRecord(
        run_id=run_id,
        individual_id=i,
        batch=batch,
        parent_id=parent,
        source=f"def make_walker():\n    return {i}\n",
        status=status,
        message="" if ok else "boom",
        fitness=float(i) / 3 if ok else None,
        descriptors=(0.1 * i, 2.5, 1e-9) if ok else None,
        cell=i % 5 if ok else None,
        walker_json=json.dumps({"joints": [[0, i]], "muscles": []}) if ok else None,
        timings_json=json.dumps({"sandbox_s": 0.01, "simulate_s": 0.2}),
        created_at=1000.0 + i,
    )


def mutation(batch: int, parent: int, child: int | None, *, outcome: str = "OK") -> MutationRecord:
    ok = outcome == "OK"
    return MutationRecord(
        run_id=RUN,
        batch=batch,
        parent_id=parent,
        child_id=child,
        operator="llm",
        style="diff",
        message="Make the legs longer",
        raw_output="<diff>\n@@ -1 +1 @@\n",
        mutation_outcome=outcome,
        applied=ok,
        ran=ok,
        inserted=ok and child is not None and child % 2 == 0,
        fitness_delta=0.25 if ok else None,
    )


def elite(record: IndividualRecord) -> EliteRecord:
    assert record.cell is not None and record.fitness is not None and record.descriptors is not None
    return EliteRecord(
        run_id=record.run_id,
        cell=record.cell,
        individual_id=record.individual_id,
        fitness=record.fitness,
        descriptors=record.descriptors,
    )


def metrics(batch: int, *, run_id: str = RUN) -> MetricsRecord:
    return MetricsRecord(
        run_id=run_id,
        batch=batch,
        evaluations=4 * (batch + 1),
        filled=batch + 1,
        coverage=(batch + 1) / 100,
        qd_score=1.5 * batch,
        max_fitness=None if batch == 0 else float(batch),
        applied_fraction=0.75,
        ran_fraction=0.5,
        inserted_fraction=0.25,
        elapsed_s=2.0 * batch,
        evaluations_per_s=12.5,
        created_at=2000.0 + batch,
    )


def batch_record(
    batch: int,
    individuals: Sequence[IndividualRecord],
    *,
    mutations: Sequence[MutationRecord] = (),
    elites: Sequence[EliteRecord] = (),
    run_id: str = RUN,
) -> BatchRecord:
    return BatchRecord(
        run_id=run_id,
        batch=batch,
        individuals=tuple(individuals),
        mutations=tuple(mutations),
        elites=tuple(elites),
        metrics=metrics(batch, run_id=run_id),
        rng_state_json=json.dumps({"after_batch": batch}),
    )


def seeds_batch(*, run_id: str = RUN) -> BatchRecord:
    seeds = [individual(i, 0, run_id=run_id) for i in range(4)]
    return batch_record(0, seeds, elites=[elite(s) for s in seeds], run_id=run_id)


def children_batch(batch: int, first_id: int, parents: Sequence[int]) -> BatchRecord:
    children = [individual(first_id + k, batch, parent) for k, parent in enumerate(parents)]
    muts = [mutation(batch, c.parent_id or 0, c.individual_id) for c in children]
    return batch_record(batch, children, mutations=muts)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "elm.sqlite") as s:
        s.create_run(run_id=RUN, name="first", config_json=CONFIG, rng_seed=7, rng_state_json=RNG_STATE)
        yield s


def counts(store: SQLiteStore, run_id: str = RUN) -> tuple[int, int, int, int]:
    return (
        len(store.individuals(run_id)),
        len(store.mutations(run_id)),
        len(store.elites(run_id)),
        len(store.metrics(run_id)),
    )


# -- runs --------------------------------------------------------------------------------------------------


def test_create_and_get_run(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "elm.sqlite", clock=lambda: 123.5) as s:
        created = s.create_run(
            run_id="r1", name="n", config_json=CONFIG, rng_seed=2**63 - 1, rng_state_json=RNG_STATE
        )
        assert created == s.get_run("r1")
        assert (created.status, created.evaluations, created.batches) == (RunStatus.CREATED, 0, 0)
        assert (created.config_json, created.rng_state_json, created.rng_seed) == (
            CONFIG,
            RNG_STATE,
            2**63 - 1,
        )
        assert created.created_at == created.updated_at == 123.5


def test_several_runs_in_one_file(store: SQLiteStore) -> None:
    store.create_run(run_id="run-b", name="second", config_json="{}", rng_seed=1, rng_state_json="{}")
    store.commit_batch(seeds_batch())
    store.commit_batch(seeds_batch(run_id="run-b"))  # the same individual ids, another run
    assert [r.run_id for r in store.list_runs()] == [RUN, "run-b"]
    assert store.get_run("run-b").evaluations == 4
    assert {i.run_id for i in store.individuals("run-b")} == {"run-b"}


def test_duplicate_and_unknown_runs(store: SQLiteStore) -> None:
    with pytest.raises(StateError, match="already exists"):
        store.create_run(run_id=RUN, name="again", config_json="{}", rng_seed=1, rng_state_json="{}")
    assert store.get_run(RUN).name == "first"
    for call in (
        lambda: store.get_run("nope"),
        lambda: store.set_status("nope", RunStatus.RUNNING),
        lambda: store.individuals("nope"),
        lambda: store.next_individual_id("nope"),
    ):
        with pytest.raises(NotFoundError, match="nope"):
            call()


def test_set_status(store: SQLiteStore) -> None:
    for status in RunStatus:
        store.set_status(RUN, status)
        assert store.get_run(RUN).status is status


def test_seed_out_of_range_is_refused(store: SQLiteStore) -> None:
    with pytest.raises(InvalidRequestError, match="rng_seed"):
        store.create_run(run_id="big", name="n", config_json="{}", rng_seed=2**64, rng_state_json="{}")


# -- batches -----------------------------------------------------------------------------------------------


def test_batch_round_trip(store: SQLiteStore) -> None:
    seeds = seeds_batch()
    store.commit_batch(seeds)
    failed = individual(5, 1, 1, status="SYNTAX_ERROR")
    muts = [
        mutation(1, 0, 4),
        mutation(1, 1, 5, outcome="OK"),
        mutation(1, 2, None, outcome="DIFF_DID_NOT_APPLY"),
    ]
    children = batch_record(1, [individual(4, 1, 0), failed], mutations=muts)
    store.commit_batch(children)

    assert store.individuals(RUN) == [*seeds.individuals, *children.individuals]
    assert store.individual(RUN, 5) == failed
    assert store.mutations(RUN) == muts
    assert store.elites(RUN) == list(seeds.elites)
    assert store.metrics(RUN) == [seeds.metrics, children.metrics]
    run = store.get_run(RUN)
    assert (run.evaluations, run.batches, run.rng_state_json) == (6, 2, children.rng_state_json)


def test_elites_are_upserted_per_cell(store: SQLiteStore) -> None:
    store.commit_batch(seeds_batch())
    better = individual(5, 1, 0)  # cell 0, like seed 0
    store.commit_batch(batch_record(1, [better], elites=[elite(better)]))
    assert {e.cell: e.individual_id for e in store.elites(RUN)} == {0: 5, 1: 1, 2: 2, 3: 3}
    assert [e.individual_id for e in store.top_elites(RUN, 2)] == [5, 3]


def test_batch_with_duplicate_id_leaves_nothing(store: SQLiteStore) -> None:
    store.commit_batch(seeds_batch())
    before, run_before = counts(store), store.get_run(RUN)
    bad = batch_record(1, [individual(4, 1, 0), individual(4, 1, 1)], mutations=[mutation(1, 0, 4)])
    with pytest.raises(StateError, match="UNIQUE"):
        store.commit_batch(bad)
    assert counts(store) == before
    assert store.get_run(RUN) == run_before
    store.commit_batch(children_batch(1, 4, [0, 1]))  # the batch number is still free
    assert store.get_run(RUN).batches == 2


def test_unknown_parent_is_refused_at_commit(store: SQLiteStore) -> None:
    store.commit_batch(seeds_batch())
    before = counts(store)
    with pytest.raises(StateError, match="FOREIGN KEY"):
        store.commit_batch(children_batch(1, 4, [99]))
    assert counts(store) == before
    assert store.get_run(RUN).batches == 1


def test_batch_number_must_be_the_next(store: SQLiteStore) -> None:
    store.commit_batch(seeds_batch())
    before, run_before = counts(store), store.get_run(RUN)
    with pytest.raises(StateError, match="already committed"):
        store.commit_batch(children_batch(0, 4, [0]))
    with pytest.raises(StateError, match="out of order"):
        store.commit_batch(children_batch(2, 4, [0]))
    assert (counts(store), store.get_run(RUN)) == (before, run_before)


def test_batch_parts_must_belong_to_the_batch() -> None:
    with pytest.raises(InvalidRequestError, match="run_id"):
        batch_record(0, [individual(0, 0, run_id="other")])
    with pytest.raises(InvalidRequestError, match="batch"):
        batch_record(1, [individual(0, 0)])
    with pytest.raises(InvalidRequestError, match="NaN"):
        dataclasses.replace(individual(0, 0), fitness=math.nan)


# -- queries -----------------------------------------------------------------------------------------------


def test_lineage_over_three_generations(store: SQLiteStore) -> None:
    store.commit_batch(seeds_batch())  # 0..3
    store.commit_batch(children_batch(1, 4, [2, 3]))  # 4 <- 2, 5 <- 3
    store.commit_batch(children_batch(2, 6, [4, 5, 4]))  # 6 <- 4, 7 <- 5, 8 <- 4
    assert [i.individual_id for i in store.lineage(RUN, 8)] == [2, 4, 8]
    assert [i.individual_id for i in store.lineage(RUN, 7)] == [3, 5, 7]
    assert store.lineage(RUN, 1) == [store.individual(RUN, 1)]
    with pytest.raises(NotFoundError, match="42"):
        store.lineage(RUN, 42)


def test_paging_and_status_filter(store: SQLiteStore) -> None:
    store.commit_batch(seeds_batch())
    kids = [individual(i, 1, 0, status="OK" if i % 3 else "SIMULATION_TIMEOUT") for i in range(4, 14)]
    store.commit_batch(batch_record(1, kids, mutations=[mutation(1, 0, k.individual_id) for k in kids]))

    pages = [store.individuals(RUN, limit=5, offset=o) for o in range(0, 15, 5)]
    assert [[i.individual_id for i in p] for p in pages] == [
        list(range(0, 5)),
        list(range(5, 10)),
        [10, 11, 12, 13],
    ]
    assert store.individuals(RUN, offset=12) == store.individuals(RUN)[12:]
    timeouts = store.individuals(RUN, status="SIMULATION_TIMEOUT")
    assert [i.individual_id for i in timeouts] == [6, 9, 12]
    assert [
        i.individual_id for i in store.individuals(RUN, status="SIMULATION_TIMEOUT", limit=1, offset=1)
    ] == [9]
    assert [m.child_id for m in store.mutations(RUN, limit=3, offset=8)] == [12, 13]


def test_metrics_are_ordered_by_batch(store: SQLiteStore) -> None:
    store.commit_batch(seeds_batch())
    for b in range(1, 6):
        store.commit_batch(batch_record(b, []))
    assert [m.batch for m in store.metrics(RUN)] == list(range(6))
    assert [m.batch for m in store.metrics(RUN, after_batch=3)] == [4, 5]
    assert store.metrics(RUN, after_batch=5) == []


def test_the_mutation_that_made_a_child(store: SQLiteStore) -> None:
    store.commit_batch(seeds_batch())
    store.commit_batch(children_batch(1, 4, [2, 3]))  # 4 <- 2, 5 <- 3
    made = store.mutation_of(RUN, 5)
    assert made is not None and (made.parent_id, made.child_id, made.batch) == (3, 5, 1)
    assert store.mutation_of(RUN, 2) is None  # a seed


def test_counts_and_next_id(store: SQLiteStore) -> None:
    assert store.next_individual_id(RUN) == 0
    assert store.mutation_outcome_counts(RUN) == {}
    store.commit_batch(seeds_batch())
    muts = [
        mutation(1, 0, 4),
        mutation(1, 1, None, outcome="NO_DIFF"),
        mutation(1, 2, None, outcome="NO_DIFF"),
    ]
    store.commit_batch(batch_record(1, [individual(4, 1, 0)], mutations=muts))
    assert store.next_individual_id(RUN) == 5
    assert store.mutation_outcome_counts(RUN) == {"NO_DIFF": 2, "OK": 1}


def test_readers_on_other_threads(store: SQLiteStore) -> None:
    store.commit_batch(seeds_batch())
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                run = store.get_run(RUN)
                assert len(store.individuals(RUN)) >= run.evaluations - 2
            except BaseException as e:  # collected and re-raised on the test's thread
                errors.append(e)
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for b in range(1, 30):
        store.commit_batch(children_batch(b, 4 + 2 * (b - 1), [0, 1]))
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert store.get_run(RUN).evaluations == 4 + 2 * 29


# -- files -------------------------------------------------------------------------------------------------


def test_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "elm.sqlite"
    with SQLiteStore(path) as s:
        s.create_run(run_id=RUN, name="first", config_json=CONFIG, rng_seed=7, rng_state_json=RNG_STATE)
        s.commit_batch(seeds_batch())
        run = s.get_run(RUN)
    with SQLiteStore(path) as s:
        assert s.get_run(RUN) == run
        assert len(s.individuals(RUN)) == 4


def test_closed_store_is_a_state_error(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "elm.sqlite")
    s.close()
    s.close()
    with pytest.raises(StateError, match="closed"):
        s.list_runs()


def test_fresh_file_gets_the_latest_schema(tmp_path: Path) -> None:
    path = tmp_path / "elm.sqlite"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "elm.sqlite"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StateError, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade"):
        SQLiteStore(path)


def test_garbage_file_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"this is not a database, just some text\n" * 100)
    with pytest.raises(StateError, match="notes.sqlite"):
        SQLiteStore(path)


def test_missing_directory_is_a_state_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="cannot open"):
        SQLiteStore(tmp_path / "no" / "such" / "elm.sqlite")


def test_export_writes_flat_jsonl(store: SQLiteStore, tmp_path: Path) -> None:
    store.commit_batch(seeds_batch())
    store.commit_batch(children_batch(1, 4, [0, 1, 2]))
    paths = export_run(store, RUN, tmp_path / "export")

    tables = {
        paths.individuals: (7, "individual_id"),
        paths.mutations: (3, "mutation_outcome"),
        paths.elites: (4, "cell"),
        paths.metrics: (2, "qd_score"),
    }
    for path, (rows, column) in tables.items():
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert len(lines) == rows, path.name
        assert all(list(line) == list(lines[0]) for line in lines), (
            f"{path.name}: columns differ between rows"
        )
        assert column in lines[0]
    first = json.loads(paths.individuals.read_text().splitlines()[0])
    assert first["descriptors"] == [0.0, 2.5, 1e-9] and first["parent_id"] is None
    run = json.loads(paths.run.read_text())
    assert (run["run_id"], run["status"], run["batches"]) == (RUN, "CREATED", 2)
    assert sorted(p.name for p in tmp_path.joinpath("export").iterdir()) == [
        "elites.jsonl",
        "individuals.jsonl",
        "metrics.jsonl",
        "mutations.jsonl",
        "run.json",
    ]


def test_operator_tallies_read_only_their_index(store: SQLiteStore) -> None:
    """The per-operator table must not scan the wide mutation rows (model output): an index serves it."""
    with sqlite3.connect(store.path) as conn:
        plan = " ".join(
            row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {_SELECT_OPERATOR_STATS}", (RUN,))
        )
    conn.close()
    assert "COVERING INDEX mutations_operator_tally" in plan
