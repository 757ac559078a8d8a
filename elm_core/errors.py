"""The project's exceptions, chosen by what the caller does about them.

A generated program that fails is a *value* (an outcome), never one of these: these are for bad
configuration, bad requests and broken infrastructure.
"""

from __future__ import annotations


class ElmError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(ElmError):
    """A configuration value is out of range or inconsistent; fix the config and retry."""


class NotFoundError(ElmError):
    """A named thing (seed, run, file, model) does not exist."""


class StateError(ElmError):
    """The operation does not fit the current state (or the host cannot provide what it needs)."""


class InvalidWalkerError(ElmError):
    """A walker breaks a validation rule. `rule` names the rule, `element` the offending part."""

    def __init__(self, rule: str, element: str, detail: str) -> None:
        self.rule = rule
        self.element = element
        self.detail = detail
        super().__init__(f"{rule}: {element}: {detail}" if element else f"{rule}: {detail}")


class InvalidRequestError(ElmError):
    """A request is malformed before anything runs (oversized or non-UTF-8 program, bad argument)."""


class BackpressureError(ElmError):
    """A bounded queue is full; retry later or slow down."""


class BackendUnavailableError(ElmError):
    """Infrastructure the call depends on (a sandbox zygote, a worker) failed; retrying may succeed."""
