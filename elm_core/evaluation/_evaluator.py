"""Sandboxed evaluation: execute a program in the sandbox, validate its walker, simulate it elsewhere."""

from __future__ import annotations

import time
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

    @property
    def ok(self) -> bool:
        return self.execution is Outcome.OK and self.simulation is SimStatus.OK

    @property
    def status(self) -> str:
        """OK, or the first thing that went wrong (an Outcome or a SimStatus value)."""
        if self.execution is not Outcome.OK or self.simulation is None:
            return self.execution.value
        return self.simulation.value


class _Lane:
    """A sandbox and a simulation process working as a pair."""

    def __init__(self, sandbox_config: SandboxConfig, sim_config: SimConfig, terrain: Terrain) -> None:
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
        started = time.perf_counter()
        simulation = self.simulator.simulate(execution.walker, sim_config, terrain)
        return _combine(execution, execution.walker, simulation, (time.perf_counter() - started) * 1e3)

    def close(self) -> None:
        self.sandbox.close()
        self.simulator.close()


def _combine(execution: ExecutionResult, walker: Walker, simulation: SimResult, sim_ms: float) -> EvalResult:
    timings = dict(execution.timings, simulate_ms=sim_ms)
    fitness = simulation.fitness if simulation.ok else None
    descriptors = simulation.descriptors
    return EvalResult(
        Outcome.OK, simulation.status, simulation.message, fitness, descriptors, walker, timings
    )


class EvaluatorPool(WorkerPool[_Lane]):
    """`workers` lanes (sandbox + simulation process) evaluate programs in parallel, with back-pressure.

    Walkers are simulated with `sim_config` on `terrain` unless a call names another world: one pool serves
    runs with different settings."""

    def __init__(
        self,
        sandbox_config: SandboxConfig | None = None,
        sim_config: SimConfig | None = None,
        terrain: Terrain | None = None,
        *,
        workers: int = 2,
        queue_size: int = 16,
    ) -> None:
        self.sandbox_config = sandbox_config or SandboxConfig()
        self.sim_config, self.terrain = sim_config or SimConfig(), terrain or Terrain()
        super().__init__(
            lambda: _Lane(self.sandbox_config, self.sim_config, self.terrain),
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
