"""Sandboxed evaluation: execute a program in the sandbox, validate its walker, simulate it elsewhere.

Simulation is deterministic, so a pool keeps its latest simulations by walker and world: a walker it meets
again in the same world gets the earlier result without being simulated again (`EvalResult.reused`)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from elm_core.errors import InvalidRequestError
from elm_core.evaluation._simulation_process import SimulationProcess
from elm_core.sandbox import ExecutionResult, Outcome, Sandbox, SandboxConfig, WorkerPool, check_source
from elm_core.sodarace import Descriptors, SimConfig, SimResult, SimStatus, Terrain, Walker


@dataclass(frozen=True)
class EvalResult:
    """One program's evaluation: how it ran, and (when it built a valid walker) how the walker did."""

    execution: Outcome
    simulation: SimStatus | None
    message: str = ""
    fitness: float | None = None
    descriptors: Descriptors | None = None
    walker: Walker | None = None
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds
    reused: bool = False  # the walker was simulated before in this world: this is that simulation's result

    @property
    def ok(self) -> bool:
        return self.execution is Outcome.OK and self.simulation is SimStatus.OK

    @property
    def status(self) -> str:
        """OK, or the first thing that went wrong (an Outcome or a SimStatus value)."""
        if self.execution is not Outcome.OK or self.simulation is None:
            return self.execution.value
        return self.simulation.value


_SimKey = tuple[bytes, SimConfig, Terrain]


class SimulationCache:
    """The latest `capacity` simulations, by walker and world. The first lane to ask for a simulation runs it
    and the others wait for its result, so a walker is simulated once even when two lanes meet it at the
    same time. A timeout or a failure is not kept: it says how the machine was, not how the walker walks."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._futures: OrderedDict[_SimKey, Future[SimResult]] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, key: _SimKey) -> tuple[Future[SimResult], bool]:
        """The simulation's future, and whether the caller is the first to ask (and must `settle` it)."""
        with self._lock:
            if (future := self._futures.get(key)) is not None:
                self._futures.move_to_end(key)
                return future, False
            future = Future()
            if self.capacity > 0:
                self._futures[key] = future
                while len(self._futures) > self.capacity:
                    self._futures.popitem(last=False)
            return future, True

    def settle(self, key: _SimKey, future: Future[SimResult], outcome: SimResult | BaseException) -> None:
        if isinstance(outcome, BaseException) or outcome.status is SimStatus.TIMEOUT:
            with self._lock:
                if self._futures.get(key) is future:
                    del self._futures[key]
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class _Lane:
    """A sandbox and a simulation process working as a pair."""

    def __init__(
        self, sandbox_config: SandboxConfig, sim_config: SimConfig, terrain: Terrain, cache: SimulationCache
    ) -> None:
        self.cache = cache
        self.sandbox = Sandbox(sandbox_config)
        try:
            self.simulator = SimulationProcess(sim_config, terrain)
        except BaseException:
            self.sandbox.close()
            raise

    def evaluate(self, source: str, sim_config: SimConfig | None, terrain: Terrain | None) -> EvalResult:
        execution = self.sandbox.run(source)
        if not execution.ok or execution.walker is None:
            return EvalResult(execution.status, None, execution.message, timings=execution.timings)
        walker = execution.walker
        key = (walker.digest(), sim_config or self.simulator.config, terrain or self.simulator.terrain)
        future, first = self.cache.claim(key)
        if not first:
            return dataclasses.replace(_combine(execution, walker, future.result(), None), reused=True)
        started = time.perf_counter()
        try:
            simulation = self.simulator.simulate(walker, sim_config, terrain)
        except BaseException as e:
            self.cache.settle(key, future, e)
            raise
        self.cache.settle(key, future, simulation)
        return _combine(execution, walker, simulation, (time.perf_counter() - started) * 1e3)

    def close(self) -> None:
        self.sandbox.close()
        self.simulator.close()


def _combine(
    execution: ExecutionResult, walker: Walker, simulation: SimResult, sim_ms: float | None
) -> EvalResult:
    timings = dict(execution.timings) if sim_ms is None else dict(execution.timings, simulate_ms=sim_ms)
    fitness = simulation.fitness if simulation.ok else None
    descriptors = simulation.descriptors
    return EvalResult(
        Outcome.OK, simulation.status, simulation.message, fitness, descriptors, walker, timings
    )


class EvaluatorPool(WorkerPool[_Lane]):
    """`workers` lanes (sandbox + simulation process) evaluate programs in parallel, with back-pressure.

    Walkers are simulated with `sim_config` on `terrain` unless a call names another world: one pool serves
    runs with different settings. The latest `cache_size` simulations are kept (see the module docstring)."""

    def __init__(
        self,
        sandbox_config: SandboxConfig | None = None,
        sim_config: SimConfig | None = None,
        terrain: Terrain | None = None,
        *,
        workers: int = 2,
        queue_size: int = 16,
        cache_size: int = 4096,
    ) -> None:
        self.sandbox_config = sandbox_config or SandboxConfig()
        self.sim_config, self.terrain = sim_config or SimConfig(), terrain or Terrain()
        self.cache = SimulationCache(cache_size)
        super().__init__(
            lambda: _Lane(self.sandbox_config, self.sim_config, self.terrain, self.cache),
            workers=workers,
            queue_size=queue_size,
        )

    def evaluate(
        self,
        sources: Sequence[str | bytes],
        *,
        sim_config: SimConfig | None = None,
        terrain: Terrain | None = None,
    ) -> list[EvalResult]:
        """Evaluates a batch in parallel, results in order; text no program can be made of is a result too."""
        futures: list[Future[EvalResult] | EvalResult] = []
        for source in sources:
            try:
                futures.append(self.submit(source, block=True, sim_config=sim_config, terrain=terrain))
            except InvalidRequestError as e:
                futures.append(EvalResult(Outcome.SYNTAX_ERROR, None, str(e)))
        return [f if isinstance(f, EvalResult) else f.result() for f in futures]

    def submit(
        self,
        source: str | bytes,
        *,
        block: bool = False,
        sim_config: SimConfig | None = None,
        terrain: Terrain | None = None,
    ) -> Future[EvalResult]:
        text = check_source(source, self.sandbox_config)
        return self.submit_job(lambda lane: lane.evaluate(text, sim_config, terrain), block=block)
