"""ELM core library: Sodarace, sandbox, mutation, MAP-Elites, storage and training.

No gRPC, no containers: services wrap this library, they never reach past it.
"""

from elm_core.errors import (
    BackendUnavailableError,
    BackpressureError,
    ConfigError,
    ElmError,
    InvalidRequestError,
    InvalidWalkerError,
    NotFoundError,
    StateError,
)

__all__ = [
    "BackendUnavailableError",
    "BackpressureError",
    "ConfigError",
    "ElmError",
    "InvalidRequestError",
    "InvalidWalkerError",
    "NotFoundError",
    "StateError",
]
