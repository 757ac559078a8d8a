"""Walker programs: the namespace they run in, and running one in a child process.

A program defines `make_walker()` returning a walker dict or a `walker_creator`. It can use
`walker_creator`, `query_cppn` and `math` without importing them, and the import lines other ELM
code uses for the creator (`from walk_creator import walker_creator`,
`from openelm.environments.sodaracer.walker.walk_creator import walker_creator`, ...) resolve to it.

`run_program` runs the program in a child process with a wall-clock deadline and gets back only
JSON; the parent validates it. It isolates crashes and hangs, not hostile code: the locked-down
sandbox (elm_core.sandbox) is what runs untrusted programs.
"""

from __future__ import annotations

import builtins
import enum
import json
import math
import multiprocessing
import types
from dataclasses import dataclass
from typing import Any

from elm_core.errors import InvalidWalkerError
from elm_core.sodarace._cppn import query_cppn
from elm_core.sodarace._creator import walker_creator
from elm_core.sodarace._walker import Walker, WalkerLimits

ENTRY_POINT = "make_walker"
_CREATOR_MODULE_NAMES = frozenset({"walk_creator", "walker_creator", "walker"})


class ProgramStatus(enum.StrEnum):
    OK = "OK"
    SYNTAX_ERROR = "SYNTAX_ERROR"
    NO_ENTRY_POINT = "NO_ENTRY_POINT"
    PROGRAM_ERROR = "PROGRAM_ERROR"
    INVALID_WALKER = "INVALID_WALKER"
    WALL_TIMEOUT = "WALL_TIMEOUT"
    CRASH = "CRASH"


@dataclass(frozen=True)
class ProgramResult:
    status: ProgramStatus
    message: str = ""
    walker: Walker | None = None

    @property
    def ok(self) -> bool:
        return self.status is ProgramStatus.OK


class ProgramFailure(Exception):
    """Raised inside the program's process; carries the typed status to report."""

    def __init__(self, status: ProgramStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _creator_module() -> types.ModuleType:
    module = types.ModuleType("walk_creator")
    module.__dict__.update(walker_creator=walker_creator, query_cppn=query_cppn)
    return module


def _program_import(name: str, globals=None, locals=None, fromlist=(), level=0):  # noqa: ANN001
    parts = name.split(".")
    if level != 0 or parts[-1] not in _CREATOR_MODULE_NAMES:
        return builtins.__import__(name, globals, locals, fromlist, level)
    module = _creator_module()
    if fromlist:  # `from a.b.walk_creator import walker_creator` wants the leaf
        return module
    for i in range(len(parts) - 2, -1, -1):  # `import a.b.walk_creator [as m]` wants the top package
        package = types.ModuleType(parts[i])
        setattr(package, parts[i + 1], module)
        module = package
    return module


def program_namespace() -> dict[str, Any]:
    """The globals a program starts with."""
    program_builtins = dict(vars(builtins))
    program_builtins["__import__"] = _program_import
    return {
        "__builtins__": program_builtins,
        "__name__": "__walker_program__",
        "walker_creator": walker_creator,
        "query_cppn": query_cppn,
        "math": math,
    }


def walker_data(source: str) -> Any:
    """Executes `source` in this process and returns what make_walker() built, as plain data."""
    try:
        code = compile(source, "<program>", "exec")
    except (SyntaxError, ValueError) as e:
        raise ProgramFailure(ProgramStatus.SYNTAX_ERROR, f"{type(e).__name__}: {e}") from e
    namespace = program_namespace()
    try:
        exec(code, namespace)  # noqa: S102 - running programs is this module's job
        entry = namespace.get(ENTRY_POINT)
        if not callable(entry):
            raise ProgramFailure(ProgramStatus.NO_ENTRY_POINT, f"the program defines no {ENTRY_POINT}()")
        built = entry()
        if isinstance(built, walker_creator):
            built = built.get_walker()
        return built
    except ProgramFailure:
        raise
    except BaseException as e:  # the program's own failure, whatever it raised
        raise ProgramFailure(ProgramStatus.PROGRAM_ERROR, f"{type(e).__name__}: {e}") from e


def _child(source: str, connection: Any) -> None:
    try:
        payload = {"status": ProgramStatus.OK, "walker": walker_data(source)}
        connection.send_bytes(json.dumps(payload).encode())
    except ProgramFailure as failure:
        connection.send_bytes(json.dumps({"status": failure.status, "message": failure.message}).encode())
    except (TypeError, ValueError, RecursionError) as e:
        message = f"make_walker() did not return walker data: {e}"
        connection.send_bytes(
            json.dumps({"status": ProgramStatus.PROGRAM_ERROR, "message": message}).encode()
        )


def run_program(source: str, *, timeout_s: float = 10.0, limits: WalkerLimits | None = None) -> ProgramResult:
    """Runs a walker program in a child process; every failure is a typed result, never an exception."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(source, sender), daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            return ProgramResult(ProgramStatus.WALL_TIMEOUT, f"no result within {timeout_s:g} s")
        raw = receiver.recv_bytes()
    except EOFError:
        process.join()
        return ProgramResult(
            ProgramStatus.CRASH, f"the program's process died (exit code {process.exitcode})"
        )
    finally:
        receiver.close()
        process.kill()  # after a reply there is nothing left to wait for; after a timeout, no waiting
        process.join()
    return _parse_reply(raw, limits)


def _parse_reply(raw: bytes, limits: WalkerLimits | None) -> ProgramResult:
    reply = json.loads(raw)
    status = ProgramStatus(reply["status"])
    if status is not ProgramStatus.OK:
        return ProgramResult(status, str(reply.get("message", "")))
    try:
        return ProgramResult(ProgramStatus.OK, walker=Walker.from_dict(reply["walker"], limits))
    except InvalidWalkerError as e:
        return ProgramResult(ProgramStatus.INVALID_WALKER, str(e))
