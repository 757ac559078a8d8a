"""The MAP-Elites loop end to end: real sandboxed evaluators, a real SQLite store, GP and tiny-LLM."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from elm_core.errors import StateError
from elm_core.mutation import Child, MutationOutcome
from elm_core.qd import MIX_OPERATORS, LoopConfig, OperatorMix
from elm_core.run import STORE_FILE, create_run, execute_run, load_config, set_budget
from elm_core.sodarace import SimConfig
from elm_core.spec import EmbeddedSpec, EvaluationSpec, MutationSpec, RunSpec
from elm_core.store import MetricsRecord, RunStatus, SQLiteStore

GP = RunSpec(mutation=MutationSpec(operator="gp"), evaluation=EvaluationSpec(sim=SimConfig(seconds=4.0)),
             embedded=EmbeddedSpec(workers=2), seeds=("square", "radial"),
             loop=LoopConfig(batch_size=6, pipeline_depth=1, max_evaluations=32))  # fmt: skip


def history(run_dir: Path) -> list[tuple]:
    with SQLiteStore(run_dir / STORE_FILE) as store:
        (run,) = store.list_runs()
        return [
            (i.individual_id, i.parent_id, i.source, i.status, i.fitness)
            for i in store.individuals(run.run_id)
        ]


def run(run_dir: Path, config: RunSpec = GP) -> None:
    create_run(run_dir, config)
    execute_run(run_dir)


def test_a_gp_run_fills_the_archive_and_commits_every_batch(tmp_path: Path) -> None:
    run(tmp_path / "r")
    with SQLiteStore(tmp_path / "r" / STORE_FILE) as store:
        (record,) = store.list_runs()
        individuals = store.individuals(record.run_id)
        metrics = store.metrics(record.run_id)
        mutations = store.mutations(record.run_id)
        elites = store.elites(record.run_id)
    assert record.status is RunStatus.FINISHED
    assert record.evaluations == len(individuals) == 32 == metrics[-1].evaluations
    assert [m.batch for m in metrics] == list(range(record.batches))
    assert len(elites) > 1 and metrics[-1].filled == len(elites)
    assert len(mutations) >= 30 and all(m.parent_id is not None for m in mutations)
    assert {m.operator for m in mutations} == {"gp"}
    assert (tmp_path / "r" / "report.html").stat().st_size > 1000


def test_a_sequential_run_is_reproducible_and_resumes_exactly(tmp_path: Path) -> None:
    run(tmp_path / "whole")
    half = dataclasses.replace(GP, loop=dataclasses.replace(GP.loop, max_evaluations=20))
    run(tmp_path / "split", half)
    set_budget(tmp_path / "split", 32)
    execute_run(tmp_path / "split")
    assert history(tmp_path / "split") == history(tmp_path / "whole")
    assert load_config(tmp_path / "split").loop.max_evaluations == 32


def test_a_pipelined_run_keeps_its_budget_and_counts(tmp_path: Path) -> None:
    config = dataclasses.replace(GP, loop=dataclasses.replace(GP.loop, pipeline_depth=3, max_evaluations=40))
    run(tmp_path / "p", config)
    rows = history(tmp_path / "p")
    assert len(rows) == 40 and [r[0] for r in rows] == list(range(40))


def test_an_existing_run_directory_is_not_overwritten(tmp_path: Path) -> None:
    create_run(tmp_path / "r", GP)
    with pytest.raises(StateError, match="--resume"):
        create_run(tmp_path / "r", GP)


def test_a_stop_request_ends_after_the_batch_in_flight(tmp_path: Path) -> None:
    create_run(
        tmp_path / "r", dataclasses.replace(GP, loop=dataclasses.replace(GP.loop, max_evaluations=None))
    )
    loops = []

    def pause_after_two(metrics: MetricsRecord) -> None:
        if metrics.batch >= 2:
            loops[0].request_stop(RunStatus.PAUSED)

    outcome = execute_run(tmp_path / "r", on_start=loops.append, on_batch=pause_after_two)
    assert outcome.status is RunStatus.PAUSED
    assert len({r[0] for r in history(tmp_path / "r")}) == len(history(tmp_path / "r")) > 0


def test_a_tiny_model_run_logs_every_mutation(tmp_path: Path, model_cache: Path) -> None:
    from elm_core.models import SamplingConfig

    loop = dataclasses.replace(GP.loop, max_evaluations=None, max_seconds=3.0, max_barren_batches=10_000)
    mutation = MutationSpec(model="tiny", sampling=SamplingConfig(max_new_tokens=16))
    config = dataclasses.replace(GP, mutation=mutation, seeds=("square",), loop=loop)
    run(tmp_path / "t", config)
    with SQLiteStore(tmp_path / "t" / STORE_FILE) as store:
        (record,) = store.list_runs()
        mutations = store.mutations(record.run_id)
    assert record.status is RunStatus.FINISHED and record.batches >= 2
    assert mutations and all(m.operator in MIX_OPERATORS and m.raw_output for m in mutations)
    assert all(m.child_id is None for m in mutations if not m.applied)


def test_a_hard_kill_mid_run_loses_nothing_committed(tmp_path: Path) -> None:
    run_dir = tmp_path / "k"
    config = dataclasses.replace(GP, loop=dataclasses.replace(GP.loop, max_evaluations=400, batch_size=4))
    create_run(run_dir, config)
    script = "import sys, pathlib, elm_core.run as r; r.execute_run(pathlib.Path(sys.argv[1]))"
    child = subprocess.Popen([sys.executable, "-c", script, str(run_dir)], start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(history(run_dir)) < 30:
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)  # the run and its sandboxes, mid-batch
    child.wait()
    before = history(run_dir)
    assert len(before) >= 30
    with SQLiteStore(run_dir / STORE_FILE) as store:
        (record,) = store.list_runs()
        assert record.status is RunStatus.RUNNING and record.evaluations == len(before)
    set_budget(run_dir, len(before) + 12)
    execute_run(run_dir)
    after = history(run_dir)
    assert after[: len(before)] == before  # nothing committed was lost or changed
    assert [r[0] for r in after] == list(range(len(after))) and len(after) == len(before) + 12


class Barren:
    """A real Mutator whose every child failed: the loop must stop, not spin forever."""

    name = "barren"

    def mutate(self, parents: list[str], rng: object) -> list[Child]:
        return [Child(parent=p, source=None, outcome=MutationOutcome.NO_DIFF, operator="barren", style="-")
                for p in parents]  # fmt: skip


def test_an_operator_that_never_produces_a_program_fails_the_run_clearly(tmp_path: Path) -> None:
    create_run(tmp_path / "b", GP)
    with pytest.raises(StateError, match="produced no new program in 25 batches"):
        execute_run(tmp_path / "b", mutator=Barren())
    with SQLiteStore(tmp_path / "b" / STORE_FILE) as store:
        (record,) = store.list_runs()
        assert record.status is RunStatus.FAILED and record.evaluations == 2
        assert len(store.mutations(record.run_id)) == 25 * GP.loop.batch_size


def test_a_seed_added_to_a_running_loop_is_committed_as_its_own_batch(tmp_path: Path) -> None:
    from elm_core.sodarace import seed_source

    create_run(tmp_path / "r", dataclasses.replace(GP, seeds=("square",)))
    loops, added = [], []

    def add_after_first(metrics: MetricsRecord) -> None:
        if metrics.batch == 1:
            added.append(loops[0].add_seed(seed_source("radial")))

    outcome = execute_run(tmp_path / "r", on_start=loops.append, on_batch=add_after_first)
    assert outcome.status is RunStatus.FINISHED
    added[0].result(timeout=0)  # committed before the run ended
    rows = history(tmp_path / "r")
    seeds = [r for r in rows if r[1] is None]
    assert [s[2] for s in seeds] == [seed_source("square"), seed_source("radial")]
    assert [r[0] for r in rows] == list(range(32))
    with pytest.raises(StateError, match="not running"):
        loops[0].add_seed(seed_source("radial"))


class SameChild:
    """A CodeGenerator whose every answer is one program, laid out and commented differently each time."""

    name = "same-child"

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, prompts: list, sampling: object, *, seed: int | None = None) -> list:
        from elm_core.models import Generation
        from elm_core.sodarace import seed_source

        child = seed_source("square").replace("5.0, 10.0, 2.0", "6.0, 10.0, 2.0")
        answers = []
        for _ in prompts:
            self.calls += 1
            text = child.replace(
                "    wc = walker_creator()", f"    wc = walker_creator()  # take {self.calls}"
            )
            answers.append(
                Generation(text=f"```python\n{text}\n\n```", finish_reason="stop", completion_tokens=9)
            )
        return answers


def test_duplicate_children_are_logged_and_not_evaluated_again(tmp_path: Path) -> None:
    from elm_core.mutation import LLMMutator

    loop = LoopConfig(batch_size=4, pipeline_depth=2, max_evaluations=None, max_mutations=12)
    config = dataclasses.replace(GP, mutation=MutationSpec(model="tiny"), seeds=("square",), loop=loop)
    create_run(tmp_path / "d", config)
    model = SameChild()
    execute_run(tmp_path / "d", mutator=LLMMutator(model))
    with SQLiteStore(tmp_path / "d" / STORE_FILE) as store:
        (record,) = store.list_runs()
        individuals = store.individuals(record.run_id)
        mutations = store.mutations(record.run_id)
        (stats,) = [s for s in store.operator_stats(record.run_id) if s.operator == "directed"] or [None]
    assert model.calls == len(mutations) == 12  # the budget in LLM calls
    assert len(individuals) == 2  # the seed and the one new program: evaluated once
    outcomes = [m.mutation_outcome for m in mutations]
    assert outcomes.count("OK") == 1 and outcomes.count("DUPLICATE") == 11
    assert all(
        m.child_id is None and m.applied and not m.ran for m in mutations if m.mutation_outcome == "DUPLICATE"
    )
    assert all(m.generated_tokens == 9 for m in mutations)
    assert stats is None or stats.duplicates <= stats.mutations


class SameWalker(SameChild):
    """A CodeGenerator whose every answer is a new program (a spare variable of its own) that builds one
    walker."""

    def generate(self, prompts: list, sampling: object, *, seed: int | None = None) -> list:
        answers = super().generate(prompts, sampling, seed=seed)
        return [
            dataclasses.replace(a, text=re.sub(r"  # take (\d+)", r"\n    spare = \1", a.text))
            for a in answers
        ]


def test_new_programs_that_build_a_walker_already_evaluated_are_logged_and_never_inserted(
    tmp_path: Path,
) -> None:
    from elm_core.mutation import LLMMutator

    loop = LoopConfig(batch_size=4, pipeline_depth=1, max_evaluations=None, max_mutations=12)
    config = dataclasses.replace(GP, mutation=MutationSpec(model="tiny"), seeds=("square",), loop=loop)
    create_run(tmp_path / "w", config)
    execute_run(tmp_path / "w", mutator=LLMMutator(SameWalker()))
    with SQLiteStore(tmp_path / "w" / STORE_FILE) as store:
        (record,) = store.list_runs()
        seed, first, *again = store.individuals(record.run_id)
        mutations = store.mutations(record.run_id)
        (stats,) = store.operator_stats(record.run_id)
        elites = store.elites(record.run_id)
    assert len(again) == 11 and len({i.source for i in [first, *again]}) == 12  # all new programs
    assert {i.walker_json for i in [first, *again]} == {first.walker_json} != {seed.walker_json}
    assert [m.mutation_outcome for m in mutations].count("DUPLICATE_WALKER") == 11
    for individual in again:  # evaluated in the sandbox: new programs, one walker
        assert individual.message == f"builds the same walker as individual {first.individual_id}"
        assert (individual.status, individual.fitness) == ("OK", first.fitness)
    simulated = ["simulate_ms" in json.loads(i.timings_json) for i in [first, *again]]
    assert simulated.count(True) == 1  # whichever lane met it first; the others took its result
    duplicates = [m for m in mutations if m.mutation_outcome == "DUPLICATE_WALKER"]
    assert all(m.applied and m.ran and not m.inserted and m.child_id is not None for m in duplicates)
    assert {e.individual_id for e in elites} <= {seed.individual_id, first.individual_id}
    assert stats.duplicates == 11 and stats.inserted <= 1


def test_a_resumed_run_still_knows_the_walkers_evaluated_before(tmp_path: Path) -> None:
    from elm_core.mutation import LLMMutator

    loop = LoopConfig(batch_size=4, pipeline_depth=1, max_evaluations=3)
    config = dataclasses.replace(GP, mutation=MutationSpec(model="tiny"), seeds=("square",), loop=loop)
    create_run(tmp_path / "r", config)
    model = SameWalker()
    execute_run(tmp_path / "r", mutator=LLMMutator(model))
    set_budget(tmp_path / "r", 7)
    execute_run(tmp_path / "r", mutator=LLMMutator(model))  # a new process would have an empty pool too
    with SQLiteStore(tmp_path / "r" / STORE_FILE) as store:
        (record,) = store.list_runs()
        _, first, second, *resumed = store.individuals(record.run_id)
        outcomes = [m.mutation_outcome for m in store.mutations(record.run_id)]
    assert len(resumed) == 4 and {i.batch for i in resumed} == {2}
    assert all(i.message == f"builds the same walker as individual {first.individual_id}" for i in resumed)
    assert outcomes == ["OK"] + ["DUPLICATE_WALKER"] * 5 and second.individual_id == 2


def test_a_short_tiny_model_run_uses_every_operator(tmp_path: Path) -> None:
    from elm_core.models import SamplingConfig

    loop = LoopConfig(batch_size=8, pipeline_depth=2, max_evaluations=None, max_mutations=24)
    mix = OperatorMix(directed=0.5, crossover=0.25, paper=0.25)
    mutation = MutationSpec(model="tiny", sampling=SamplingConfig(max_new_tokens=8), operators=mix)
    config = dataclasses.replace(GP, mutation=mutation, seeds=("square", "cppn_fixed"), loop=loop)
    run(tmp_path / "t", config)
    with SQLiteStore(tmp_path / "t" / STORE_FILE) as store:
        (record,) = store.list_runs()
        mutations = store.mutations(record.run_id)
        stats = {s.operator: s for s in store.operator_stats(record.run_id)}
    assert record.status is RunStatus.FINISHED and len(mutations) == 24
    assert set(stats) == set(MIX_OPERATORS) and sum(s.mutations for s in stats.values()) == 24
    directed = [m.message for m in mutations if m.operator == "directed"]
    assert all(m.startswith(("Make", "Change the walker's shape.")) for m in directed)
    assert all(m.generated_tokens > 0 for m in mutations)
    assert "directed" in (tmp_path / "t" / "report.html").read_text()
