"""A persistent process that simulates validated walkers and never runs program text.

Started with the `spawn` method, so it inherits nothing from a process that may have run anything,
and given its own limits: an address-space rlimit, and a deadline per walker enforced from outside
(pymunk's C code cannot be interrupted from inside): an overrun kills and replaces the process.
"""

from __future__ import annotations

import multiprocessing
import resource
import signal
from multiprocessing.connection import Connection

from elm_core.errors import BackendUnavailableError
from elm_core.sodarace import SimConfig, SimResult, SimStatus, Terrain, Walker, describe, simulate


def _serve(connection: Connection, memory_mb: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us in order
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    while True:
        try:
            walker, config, terrain = connection.recv()
        except EOFError:
            return
        connection.send(simulate(walker, config, terrain))


class SimulationProcess:
    """Simulates one walker at a time in its own process; see the module docstring. `config` and `terrain`
    are the world a walker is simulated in unless `simulate` is given another."""

    def __init__(
        self, config: SimConfig, terrain: Terrain, *, memory_mb: int = 1024, deadline_s: float = 30.0
    ) -> None:
        self.config, self.terrain = config, terrain
        self.memory_mb, self.deadline_s = memory_mb, deadline_s
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child_end = context.Pipe()
        self._process = context.Process(target=_serve, args=(child_end, self.memory_mb), daemon=True)
        self._process.start()
        child_end.close()

    def simulate(
        self, walker: Walker, config: SimConfig | None = None, terrain: Terrain | None = None
    ) -> SimResult:
        config = config or self.config
        try:
            self._connection.send((walker, config, terrain or self.terrain))
            if self._connection.poll(self.deadline_s):
                return self._connection.recv()
        except (EOFError, OSError) as e:
            self._restart()
            raise BackendUnavailableError(f"the simulation process died: {e}") from e
        self._restart()
        message = f"no result within {self.deadline_s:g} s; the simulation process was replaced"
        return SimResult(SimStatus.TIMEOUT, 0.0, describe(walker, config), 0, message)

    def _restart(self) -> None:
        self.close()
        self._start()

    def close(self) -> None:
        self._connection.close()
        self._process.join(timeout=5.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
