"""The embedded run: store, sandboxed evaluator pool and mutator in one process tree, driven by the one loop.

A run directory holds `elm.sqlite` (the store: config, archive, every individual and mutation, metrics),
`config.json` (a readable copy of the config) and, at the end, `report.html`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from elm_core.errors import ConfigError, NotFoundError, StateError
from elm_core.evaluation import EvaluatorPool
from elm_core.mutation import Mutator, build_mutator
from elm_core.qd import Evaluator, LoopStats, MapElites
from elm_core.report import write_run_report
from elm_core.sodarace import seed_source
from elm_core.spec import RunSpec, run_spec
from elm_core.store import MetricsRecord, RunStatus, SQLiteStore

STORE_FILE = "elm.sqlite"
CONFIG_FILE = "config.json"
REPORT_FILE = "report.html"


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    status: RunStatus
    report: Path
    stats: LoopStats
    report_seconds: float  # time spent writing the report


def seed_programs(seeds: tuple[str, ...]) -> list[str]:
    """Seed names (square, radial, cppn-fixed, cppn-mutable) or program files, as program text."""
    programs = []
    for seed in seeds:
        path = Path(seed)
        if path.is_file():
            programs.append(path.read_text(errors="replace"))
        else:
            try:
                programs.append(seed_source(seed))
            except NotFoundError as e:
                raise NotFoundError(f"{e}; or give a program file") from e
    return programs


def create_run(run_dir: Path, config: RunSpec) -> None:
    """Makes a new run directory; refuses one that already holds a run, or a spec it cannot honour."""
    if config.finetune.every_batches:
        raise ConfigError(
            "[finetune] every_batches: fine-tuning rounds during a run need a coordinator with a trainer; "
            "after an `elm run`, fine-tune with `elm train finetune --run DIR`"
        )
    seed_programs(config.seeds)  # fail now, not after the model has loaded
    if (run_dir / STORE_FILE).exists():
        raise StateError(f"{run_dir} already holds a run: resume it with `elm run --resume {run_dir}`")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(config.to_json() + "\n")
    with SQLiteStore(run_dir / STORE_FILE) as store:
        store.create_run(run_id=run_dir.name or "run", name=config.name, config_json=config.to_json(),
                         rng_seed=config.rng_seed, rng_state_json="{}")  # fmt: skip


def load_config(run_dir: Path) -> RunSpec:
    if not (run_dir / STORE_FILE).is_file():
        raise NotFoundError(f"{run_dir} holds no run ({STORE_FILE} is missing)")
    with SQLiteStore(run_dir / STORE_FILE) as store:
        (run,) = store.list_runs()
        return run_spec(store, run.run_id)


def execute_run(
    run_dir: Path,
    *,
    mutator: Mutator | None = None,
    evaluator: Evaluator | None = None,
    on_batch: Callable[[MetricsRecord], None] | None = None,
    on_start: Callable[[MapElites], None] | None = None,
) -> RunOutcome:
    """Runs (or continues) the run in `run_dir` until its budget, then writes the report. `evaluator` (one
    simulating in the run's world) replaces the run's own sandbox pool."""
    config = load_config(run_dir)
    mutation, evaluation = config.mutation, config.evaluation
    mutator = mutator or build_mutator(mutation.operator, model=mutation.model, style=mutation.style,
                                       sampling=mutation.sampling, backend=config.embedded.backend,
                                       parallel=config.loop.batch_size)  # fmt: skip
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(SQLiteStore(run_dir / STORE_FILE))
        if evaluator is None:
            pool = EvaluatorPool(
                sim_config=evaluation.sim, terrain=evaluation.terrain_model, workers=config.embedded.lanes
            )
            evaluator = stack.enter_context(pool)
        (run,) = store.list_runs()
        loop = MapElites(run_id=run.run_id, store=store, mutator=mutator, evaluator=evaluator,
                         archive_config=config.archive, loop_config=config.loop,
                         seed_sources=seed_programs(config.seeds), operators=mutation.operator_mix(),
                         on_batch=on_batch)  # fmt: skip
        if on_start is not None:
            on_start(loop)
        status = loop.run()
        started = time.perf_counter()
        report = write_run_report(store, run.run_id, run_dir / REPORT_FILE)
    return RunOutcome(run_dir, status, report, loop.stats, time.perf_counter() - started)


def set_budget(run_dir: Path, max_evaluations: int) -> None:
    """A resumed run may get a new budget (total evaluations, seeds included)."""
    config = load_config(run_dir)
    config = config.replace_in("loop", max_evaluations=max_evaluations)
    with SQLiteStore(run_dir / STORE_FILE) as store:
        (run,) = store.list_runs()
        store.update_config(run.run_id, config.to_json())
    (run_dir / CONFIG_FILE).write_text(config.to_json() + "\n")
