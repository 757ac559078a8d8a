"""Sandbox configuration, the typed outcomes, and the result record."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from elm_core.errors import ConfigError
from elm_core.sodarace import Walker, WalkerLimits


class Outcome(enum.StrEnum):
    OK = "OK"
    SYNTAX_ERROR = "SYNTAX_ERROR"
    PROGRAM_ERROR = "PROGRAM_ERROR"
    NO_ENTRY_POINT = "NO_ENTRY_POINT"
    INVALID_WALKER = "INVALID_WALKER"
    CPU_TIMEOUT = "CPU_TIMEOUT"
    WALL_TIMEOUT = "WALL_TIMEOUT"
    MEMORY_LIMIT = "MEMORY_LIMIT"
    PROCESS_LIMIT = "PROCESS_LIMIT"
    OUTPUT_LIMIT = "OUTPUT_LIMIT"
    RESULT_TOO_LARGE = "RESULT_TOO_LARGE"
    FORBIDDEN_OPERATION = "FORBIDDEN_OPERATION"
    CRASH = "CRASH"
    NO_RESULT = "NO_RESULT"
    SANDBOX_ERROR = "SANDBOX_ERROR"  # infrastructure, never the program's fault


class Layer(enum.StrEnum):
    """The isolation layers applied to each program's process."""

    RLIMITS = "rlimits"  # CPU, address space, file size, open files, core, processes
    DEDICATED_UID = "dedicated_uid"  # a non-root uid/gid (only possible when the sandbox runs as root)
    OOM_SCORE = "oom_score_adj"
    NEW_SESSION = "new_session"  # own session and process group, killed as a whole
    EMPTY_ENVIRONMENT = "empty_environment"
    SCRATCH_DIRECTORY = "scratch_directory"
    CLOSED_DESCRIPTORS = "closed_descriptors"
    NO_NEW_PRIVS = "no_new_privs"
    SECCOMP = "seccomp"
    NETWORK_NAMESPACE = "network_namespace"


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """Limits for one program. Defaults suit walker programs: they build a few dozen joints and return."""

    wall_time_s: float = 5.0
    cpu_time_s: int = 2  # RLIMIT_CPU counts whole seconds
    memory_mb: int = 512  # address space of the program's process
    open_files: int = 64
    processes: int = 64  # RLIMIT_NPROC (threads count); the seccomp filter forbids new processes anyway
    output_limit_bytes: int = 64 * 1024  # stdout + stderr
    result_limit_bytes: int = 1024 * 1024  # the walker JSON
    source_limit_bytes: int = 256 * 1024
    sandbox_uid: int = 65534  # nobody
    sandbox_gid: int = 65534
    required_layers: frozenset[Layer] = frozenset()  # a required layer the host lacks is a startup error
    walker_limits: WalkerLimits = field(default_factory=WalkerLimits)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.wall_time_s) and self.wall_time_s > 0):
            raise ConfigError(f"wall_time_s must be a finite number > 0, got {self.wall_time_s!r}")
        for name in (
            "cpu_time_s",
            "memory_mb",
            "open_files",
            "processes",
            "output_limit_bytes",
            "result_limit_bytes",
            "source_limit_bytes",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
        if self.open_files < 8:
            raise ConfigError(f"open_files must be >= 8 (the interpreter needs a few), got {self.open_files}")
        unknown = {str(layer) for layer in self.required_layers} - {layer.value for layer in Layer}
        if unknown:
            raise ConfigError(f"unknown layers in required_layers: {sorted(unknown)}")


@dataclass(frozen=True)
class ExecutionResult:
    """What running one program produced. `walker` is validated and set only when status is OK."""

    status: Outcome
    message: str = ""
    walker: Walker | None = None
    output: str = ""  # the start of the program's stdout and stderr, sanitised
    pid: int = 0  # the program's process (gone by the time this exists)
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds

    @property
    def ok(self) -> bool:
        return self.status is Outcome.OK
