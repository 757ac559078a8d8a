"""The coordinator's runs: several MAP-Elites loops at once over one store, resumed after a restart.

Each active run is the same `MapElites` loop `elm run` drives, wired to the evaluator fleet and a mutator
(the model server for `llm` runs, in-process GP for `gp` runs). Seed programs are kept as files under the
data directory, named in the run's config, so a run can be resumed from the store and those files alone.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from elm_core.errors import ConfigError, ElmError, InvalidRequestError, NotFoundError, StateError
from elm_core.models import SamplingConfig
from elm_core.mutation import Mutator
from elm_core.qd import MapElites
from elm_core.run import seed_programs
from elm_core.sandbox import SandboxConfig, check_source
from elm_core.spec import RunSpec, run_spec
from elm_core.store import MetricsRecord, OperatorStats, RunRecord, RunStatus, SQLiteStore
from services.client import InRunWorld, WorldEvaluator
from services.common.metrics import RUN_COVERAGE, RUN_EVALUATIONS

log = structlog.get_logger()

RUN_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
ENDED = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.STOPPED})
MAX_SEEDS = 64


@dataclass(frozen=True)
class RunView:
    """A run as clients see it: the stored record, its latest progress, and why it failed (if it did)."""

    record: RunRecord
    progress: MetricsRecord | None
    message: str
    operators: list[OperatorStats] = field(default_factory=list)

    @property
    def config(self) -> RunSpec:
        return RunSpec.from_json(self.record.config_json)


@dataclass
class _Active:
    loop: MapElites
    thread: threading.Thread
    config: RunSpec


class RunManager:
    """Creates, starts, pauses, resumes and stops runs; tells watchers about every batch and status change."""

    def __init__(
        self,
        store: SQLiteStore,
        seeds_dir: Path,
        evaluator: WorldEvaluator,
        make_mutator: Callable[[RunSpec], Mutator],
        on_batch: Callable[[str, RunSpec, MetricsRecord], None] = lambda run_id, config, metrics: None,
        admit: Callable[[RunSpec], None] | None = None,
    ) -> None:
        self.store, self.seeds_dir, self.evaluator = store, seeds_dir, evaluator
        self.make_mutator = make_mutator
        # Refuses (ConfigError) a run this coordinator cannot honour; by default, one it cannot mutate.
        self.admit = admit or make_mutator
        self.on_batch = on_batch  # e.g. fine-tuning rounds
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._active: dict[str, _Active] = {}
        self._progress: dict[str, MetricsRecord] = {}
        self._messages: dict[str, str] = {}
        self._version: dict[str, int] = {}  # bumped on every event, so watchers know something changed
        self._draining = False
        self.stop_wait_s = 20.0

    # --- commands -------------------------------------------------------------------------------------
    def create(self, name: str, config_json: str, seeds: Sequence[str], *, paused: bool = False) -> RunView:
        config = RunSpec.from_json(config_json)
        _refuse_unhonoured(config)
        run_id = self._new_run_id(name)
        programs = [_checked(s) for s in seeds] or seed_programs(config.seeds)
        if len(programs) > MAX_SEEDS:
            raise InvalidRequestError(f"at most {MAX_SEEDS} seed programs, got {len(programs)}")
        self.admit(config)  # refuse it now, not when it starts
        files = self._write_seeds(run_id, programs, first=0)
        config = config.replace(name=name or run_id, seeds=tuple(files))
        self.store.create_run(run_id=run_id, name=config.name, config_json=config.to_json(),
                              rng_seed=config.rng_seed, rng_state_json="{}")  # fmt: skip
        log.info("run created", run=run_id, operator=config.mutation.operator, seeds=len(programs))
        if not paused:
            self._start(run_id)
        return self.view(run_id)

    def submit_seed(self, run_id: str, program: str, *, wait_s: float = 60.0) -> RunView:
        """Adds a seed: to the seed list of a run that has not started, live into a running one."""
        program = _checked(program)
        record = self.store.get_run(run_id)
        with self._lock:
            active = self._active.get(run_id)
        if active is not None:
            committed = active.loop.add_seed(program)
            with contextlib.suppress(TimeoutError):  # a slow batch ahead of it: it is queued, and will be
                committed.result(timeout=wait_s)
        elif record.batches == 0:
            config = run_spec(self.store, run_id)
            files = self._write_seeds(run_id, [program], first=len(config.seeds))
            self.store.update_config(run_id, config.replace(seeds=config.seeds + tuple(files)).to_json())
        else:
            raise StateError(f"run {run_id} is {record.status}: resume it to add seeds")
        self._notify(run_id)
        return self.view(run_id)

    def pause(self, run_id: str) -> RunView:
        return self._request_stop(run_id, RunStatus.PAUSED)

    def stop(self, run_id: str) -> RunView:
        return self._request_stop(run_id, RunStatus.STOPPED)

    def resume(self, run_id: str, budget: int | None = None) -> RunView:
        if budget:
            config = run_spec(self.store, run_id).replace_in("loop", max_evaluations=budget)
            self.store.update_config(run_id, config.to_json())
        self._start(run_id)
        return self.view(run_id)

    def resume_interrupted(self) -> list[str]:
        """At startup: restarts every run the store says is RUNNING (the coordinator stopped under it)."""
        interrupted = [r.run_id for r in self.store.list_runs() if r.status is RunStatus.RUNNING]
        for run_id in interrupted:
            log.info("resuming run interrupted by a restart", run=run_id)
            try:
                self._start(run_id)
            except ElmError as e:  # e.g. an llm run and no model server now: the other runs go on
                log.warning("cannot resume run", run=run_id, error=str(e))
                self.store.set_status(run_id, RunStatus.FAILED)
                with self._lock:
                    self._messages[run_id] = f"cannot resume after a restart: {e}"
        return interrupted

    def drain(self, timeout_s: float = 60.0) -> None:
        """Stops every run after its batches in flight commit, leaving it RUNNING so a restart resumes it."""
        with self._lock:
            self._draining = True
            active = list(self._active.values())
            self._changed.notify_all()
        for run in active:
            run.loop.request_stop(RunStatus.RUNNING)
        deadline = time.monotonic() + timeout_s
        for run in active:
            run.thread.join(max(0.0, deadline - time.monotonic()))

    # --- queries --------------------------------------------------------------------------------------
    def view(self, run_id: str) -> RunView:
        record = self.store.get_run(run_id)
        with self._lock:
            progress = self._progress.get(run_id)
            message = self._messages.get(run_id, "")
        if progress is None and record.batches:  # not seen since this coordinator started
            history = self.store.metrics(run_id)
            if history:
                progress = history[-1]
                with self._lock:
                    self._progress.setdefault(run_id, progress)
        return RunView(record, progress, message, self.store.operator_stats(run_id))

    def list(self) -> list[RunView]:
        return [self.view(r.run_id) for r in self.store.list_runs()]

    def watch(
        self, run_id: str, is_active: Callable[[], bool] = lambda: True
    ) -> Iterator[tuple[str, RunView]]:
        """("SNAPSHOT", view) now, then ("BATCH" | "STATUS", view) on every change, until the run ends."""
        seen = self._wait_for_change(run_id, -1, 0.0)
        view = self.view(run_id)
        yield "SNAPSHOT", view
        while seen is not None and view.record.status not in ENDED and is_active():
            version = self._wait_for_change(run_id, seen, 1.0)
            if version is not None and version != seen:
                latest = self.view(run_id)
                yield ("STATUS" if latest.record.status != view.record.status else "BATCH"), latest
                view = latest
            seen = version

    # --- internals ------------------------------------------------------------------------------------
    def _start(self, run_id: str) -> None:
        config = run_spec(self.store, run_id)
        with self._lock:
            if self._draining:
                raise StateError("the coordinator is shutting down")
            if run_id in self._active:
                raise StateError(f"run {run_id} is running already")
            loop = MapElites(run_id=run_id, store=self.store, mutator=self.make_mutator(config),
                             evaluator=InRunWorld(self.evaluator, config.evaluation),
                             archive_config=config.archive, loop_config=config.loop,
                             seed_sources=seed_programs(config.seeds),
                             operators=config.mutation.operator_mix(),
                             on_batch=lambda metrics: self._on_batch(run_id, metrics))  # fmt: skip
            thread = threading.Thread(
                target=self._drive, args=(run_id, loop), name=f"run-{run_id}", daemon=True
            )
            self._active[run_id] = _Active(loop, thread, config)
            self._messages.pop(run_id, None)
        thread.start()

    def _drive(self, run_id: str, loop: MapElites) -> None:
        self._notify(run_id)
        try:
            status = loop.run()
            log.info("run ended", run=run_id, status=str(status), evaluations=loop.stats.evaluations)
        except Exception as e:  # the loop marked the run FAILED; keep why, for GetRun and watchers
            if isinstance(e, ElmError):
                log.warning("run failed", run=run_id, error=str(e), kind=type(e).__name__)
            else:
                log.exception("run failed", run=run_id)
            with self._lock:
                self._messages[run_id] = f"{type(e).__name__}: {e}"
        finally:
            with self._lock:
                self._active.pop(run_id, None)
            self._notify(run_id)

    def _on_batch(self, run_id: str, metrics: MetricsRecord) -> None:
        RUN_EVALUATIONS.labels(run_id).set(metrics.evaluations)
        RUN_COVERAGE.labels(run_id).set(metrics.coverage)
        with self._lock:
            self._progress[run_id] = metrics
            config = self._active[run_id].config
        self._notify(run_id)
        self.on_batch(run_id, config, metrics)

    def _wait_for_change(self, run_id: str, seen: int, timeout_s: float) -> int | None:
        """The run's event counter once it differs from `seen` (or after the timeout); None when draining."""
        with self._lock:
            self._changed.wait_for(lambda: self._version.get(run_id, 0) != seen or self._draining, timeout_s)
            return None if self._draining else self._version.get(run_id, 0)

    def _notify(self, run_id: str) -> None:
        with self._lock:
            self._version[run_id] = self._version.get(run_id, 0) + 1
            self._changed.notify_all()

    def _request_stop(self, run_id: str, status: RunStatus) -> RunView:
        record = self.store.get_run(run_id)
        with self._lock:
            active = self._active.get(run_id)
        if active is not None:
            active.loop.request_stop(status)
            active.thread.join(self.stop_wait_s)  # batches in flight commit first; watchers see the end
        elif record.status in (RunStatus.CREATED, RunStatus.PAUSED) or status is RunStatus.STOPPED:
            if record.status not in ENDED:
                self.store.set_status(run_id, status)
        else:
            raise StateError(f"run {run_id} is {record.status}, not running")
        self._notify(run_id)
        return self.view(run_id)

    def _new_run_id(self, name: str) -> str:
        if not name:
            return time.strftime("run-%Y%m%d-%H%M%S-") + secrets.token_hex(2)
        if not RUN_ID.fullmatch(name):
            raise InvalidRequestError(
                f"run name {name!r} must be 1-64 of a-z, 0-9, '-' and '_', starting with a letter or digit"
            )
        try:
            self.store.get_run(name)
        except NotFoundError:
            return name
        raise StateError(f"a run named {name!r} exists already")

    def _write_seeds(self, run_id: str, programs: Sequence[str], *, first: int) -> list[str]:
        directory = self.seeds_dir / run_id
        directory.mkdir(parents=True, exist_ok=True)
        files = []
        for i, program in enumerate(programs, start=first):
            path = directory / f"seed-{i:03d}.py"
            path.write_text(program)
            files.append(str(path))
        return files


def _refuse_unhonoured(config: RunSpec) -> None:
    """Refuses settings no coordinator honours: `elm run`'s own, and sampling the model server owns."""
    given = config.embedded.settings_given()
    if given:
        raise ConfigError(f"{', '.join(given)}: only `elm run` uses these; a coordinator evaluates on its "
                          "evaluator fleet and mutates with its model server's model")  # fmt: skip
    sampling, default = config.mutation.sampling, SamplingConfig()
    server_owned = [name for name in ("top_p", "stop") if getattr(sampling, name) != getattr(default, name)]
    if config.mutation.operator == "llm" and server_owned:
        raise ConfigError(f"{', '.join(f'[mutation.sampling] {n}' for n in server_owned)}: the model server "
                          "samples with its own; a run sets only temperature and max_new_tokens")  # fmt: skip


_SEED_LIMITS = SandboxConfig()


def _checked(program: str | bytes) -> str:
    return check_source(program, _SEED_LIMITS)
