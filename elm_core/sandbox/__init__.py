"""The sandbox: the one way any program text is ever executed in this project.

`Sandbox(config).run(source)` runs a walker program in a locked-down child of a warm zygote and returns an
`ExecutionResult` with a typed `Outcome`; `SandboxPool` runs many in parallel with back-pressure.
"""

from elm_core.sandbox._config import ExecutionResult, Layer, Outcome, SandboxConfig
from elm_core.sandbox._pool import SandboxPool, WorkerPool
from elm_core.sandbox._sandbox import Sandbox, check_source, run_program

__all__ = [
    "ExecutionResult",
    "Layer",
    "Outcome",
    "Sandbox",
    "SandboxConfig",
    "SandboxPool",
    "WorkerPool",
    "check_source",
    "run_program",
]
