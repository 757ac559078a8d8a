"""Runs: the embedded run (`elm run`) wiring store, evaluators and mutator."""

from elm_core.run._embedded import (
    CONFIG_FILE,
    REPORT_FILE,
    STORE_FILE,
    RunOutcome,
    create_run,
    execute_run,
    load_config,
    seed_programs,
    set_budget,
)

__all__ = [
    "CONFIG_FILE",
    "REPORT_FILE",
    "STORE_FILE",
    "RunOutcome",
    "create_run",
    "execute_run",
    "load_config",
    "seed_programs",
    "set_budget",
]
