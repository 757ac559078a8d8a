"""The supervisor: one warm zygote process, one program at a time, every failure a typed result.

`Sandbox.run(source)` sends the program to the zygote (see _zygote.py), which forks a locked-down
child, enforces the deadline and the caps, and reports raw facts (signal, exit code, CPU time,
result bytes, output). This side classifies them into an Outcome, parses the result strictly and
validates the walker. A dead or hung zygote is restarted and reported as SANDBOX_ERROR.
"""

from __future__ import annotations

import functools
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from elm_core.errors import BackendUnavailableError, InvalidRequestError, InvalidWalkerError, StateError
from elm_core.sandbox import _zygote
from elm_core.sandbox._config import ExecutionResult, Layer, Outcome, SandboxConfig
from elm_core.sandbox._seccomp import compile_filter, self_pid_offsets
from elm_core.sodarace import Walker

_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])
_ZYGOTE_GRACE_S = 10.0  # on top of the program's wall time, before the zygote itself counts as hung
_CHILD_STATUSES = {"OK", "SYNTAX_ERROR", "NO_ENTRY_POINT", "PROGRAM_ERROR", "MEMORY_LIMIT", "PROCESS_LIMIT",
                   "RESULT_TOO_LARGE"}  # fmt: skip
_ANSI_OR_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_MESSAGE_CHARS = 240


def check_source(source: str | bytes, config: SandboxConfig) -> str:
    """The program text, or InvalidRequestError for a request no program could be made of."""
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidRequestError(f"the program is not UTF-8: {e}") from e
    if not isinstance(source, str):
        raise InvalidRequestError(f"the program must be text, got {type(source).__name__}")
    try:
        size = len(source.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise InvalidRequestError(f"the program is not valid Unicode: {e}") from e
    if size > config.source_limit_bytes:
        raise InvalidRequestError(
            f"the program is {size} bytes, over the limit of {config.source_limit_bytes}"
        )
    if "\x00" in source:  # Python cannot compile it, and it is a classic smuggling byte on the wire
        raise InvalidRequestError("the program contains NUL bytes")
    return source


class Sandbox:
    """Runs walker programs one at a time in a warm zygote. Thread-safe; use as a context manager."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._lock = threading.Lock()
        self._filter_hex = _compiled_filter_hex()
        self._process: subprocess.Popen[bytes] | None = None
        self._scratch_root = ""
        self.layers = self._start()
        missing = sorted(str(layer) for layer in self.config.required_layers if not self.layers[layer][0])
        if missing:
            self.close()
            details = "; ".join(f"{name}: {self.layers[Layer(name)][1]}" for name in missing)
            raise StateError(f"required sandbox layers are unavailable on this host: {details}")

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def zygote_pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def _start(self) -> dict[Layer, tuple[bool, str]]:
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", _zygote.__file__, _SOURCE_ROOT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={}, cwd="/", close_fds=True,
        )  # fmt: skip
        c = self.config
        bpf = bytes.fromhex(self._filter_hex)
        settings = {"bpf_hex": self._filter_hex, "self_pid_offsets": self_pid_offsets(bpf) if bpf else [],
                    "uid": c.sandbox_uid, "gid": c.sandbox_gid,
                    "cpu_time_s": c.cpu_time_s, "memory_mb": c.memory_mb, "open_files": c.open_files,
                    "processes": c.processes, "output_limit_bytes": c.output_limit_bytes,
                    "result_limit_bytes": c.result_limit_bytes, "wall_time_s": c.wall_time_s}  # fmt: skip
        try:
            self._send(settings)
            reply = self._receive(time.monotonic() + _ZYGOTE_GRACE_S)
        except (OSError, EOFError, TimeoutError, ValueError) as e:
            self._stop()
            raise BackendUnavailableError(f"the sandbox zygote did not start: {e}") from e
        layers = {
            Layer(name): (bool(active), str(detail)) for name, (active, detail) in reply["layers"].items()
        }
        self._scratch_root = layers[Layer.SCRATCH_DIRECTORY][1]
        return layers

    def run(self, source: str | bytes) -> ExecutionResult:
        """Runs one program. Raises InvalidRequestError for unusable text; everything else is a result."""
        text = check_source(source, self.config)
        started = time.perf_counter()
        with self._lock:
            if self._process is None:
                raise StateError("the sandbox is closed")
            try:
                self._send({"source": text})
                reply = self._receive(time.monotonic() + self.config.wall_time_s + _ZYGOTE_GRACE_S)
            except (OSError, EOFError, TimeoutError, ValueError) as e:
                self._restart()
                return ExecutionResult(
                    Outcome.SANDBOX_ERROR, f"the sandbox zygote failed and was restarted: {e}"
                )
        result = self._interpret(reply)
        timings = dict(reply["timings"], total_ms=(time.perf_counter() - started) * 1e3)
        return ExecutionResult(result.status, _clean(result.message), result.walker, _clean(reply["output"]),
                               reply["pid"], timings)  # fmt: skip

    def _interpret(self, reply: dict[str, Any]) -> ExecutionResult:
        c = self.config
        if reply["survivors"]:
            return ExecutionResult(Outcome.SANDBOX_ERROR, "a process of the program survived the kill")
        killed_for = reply["killed_for"]
        if killed_for:
            limits = {"WALL_TIMEOUT": f"no result within the wall-clock limit of {c.wall_time_s:g} s",
                      "OUTPUT_LIMIT": f"more than {c.output_limit_bytes} bytes on stdout/stderr",
                      "RESULT_TOO_LARGE": f"a result of more than {c.result_limit_bytes} bytes"}  # fmt: skip
            return ExecutionResult(Outcome(killed_for), limits[killed_for])
        raw = reply["result"]
        if not raw.startswith(_zygote.LAYERS_APPLIED.decode()):
            return ExecutionResult(
                Outcome.SANDBOX_ERROR, f"the child failed before it was locked down ({_how(reply)})"
            )
        if reply["signal"] is not None:
            return _signalled(reply, c)
        return self._parse(raw[1:], reply)

    def _parse(self, raw: str, reply: dict[str, Any]) -> ExecutionResult:
        if not raw:
            return ExecutionResult(Outcome.NO_RESULT, f"the program ended ({_how(reply)}) without a result")
        try:
            frame = json.loads(raw)
            status = frame["status"]
        except (ValueError, TypeError, KeyError, RecursionError):
            return ExecutionResult(Outcome.NO_RESULT, "the program's process sent a malformed result")
        if status not in _CHILD_STATUSES:
            return ExecutionResult(Outcome.NO_RESULT, "the program's process sent a malformed result")
        if status != "OK":
            return ExecutionResult(Outcome(status), _clean(str(frame.get("message", "")))[:_MESSAGE_CHARS])
        try:
            walker = Walker.from_dict(json.loads(frame["walker"]), self.config.walker_limits)
        except InvalidWalkerError as e:
            return ExecutionResult(Outcome.INVALID_WALKER, str(e)[:_MESSAGE_CHARS])
        except (ValueError, TypeError, KeyError, RecursionError):
            return ExecutionResult(Outcome.INVALID_WALKER, "malformed: the walker is not a JSON object")
        return ExecutionResult(Outcome.OK, walker=walker)

    def _send(self, message: dict[str, Any]) -> None:
        assert self._process is not None and self._process.stdin is not None
        _zygote.write_frame(self._process.stdin.fileno(), message)

    def _receive(self, deadline: float) -> dict[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        fd = self._process.stdout.fileno()
        (size,) = struct.unpack(">I", _read_until(fd, 4, deadline))
        return json.loads(_read_until(fd, size, deadline))

    def _restart(self) -> None:
        self._stop()
        self._start()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        try:
            process.wait(timeout=self.config.wall_time_s + _ZYGOTE_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._scratch_root:  # a zygote that was killed could not remove its scratch directory itself
            shutil.rmtree(self._scratch_root, ignore_errors=True)
            self._scratch_root = ""

    def close(self) -> None:
        with self._lock:
            self._stop()


def run_program(source: str | bytes, config: SandboxConfig | None = None) -> ExecutionResult:
    """Runs one program in a fresh sandbox (starting a zygote costs ~0.1 s: use a Sandbox for many)."""
    with Sandbox(config) as sandbox:
        return sandbox.run(source)


def _signalled(reply: dict[str, Any], config: SandboxConfig) -> ExecutionResult:
    number = reply["signal"]
    if number == signal.SIGSYS:
        return ExecutionResult(
            Outcome.FORBIDDEN_OPERATION, "a forbidden operation (system call denied by seccomp)"
        )
    if number == signal.SIGXCPU or (number == signal.SIGKILL and reply["cpu_s"] >= config.cpu_time_s):
        return ExecutionResult(Outcome.CPU_TIMEOUT, f"CPU time limit of {config.cpu_time_s} s")
    if number == signal.SIGXFSZ:
        return ExecutionResult(Outcome.OUTPUT_LIMIT, "file size limit")
    return ExecutionResult(Outcome.CRASH, f"killed by {_signal_name(number)}")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _how(reply: dict[str, Any]) -> str:
    if reply["signal"] is not None:
        return f"killed by {_signal_name(reply['signal'])}"
    return f"exit code {reply['exit_code']}"


def _clean(text: str) -> str:
    """Printable, valid UTF-8: no terminal escapes (7- or 8-bit), no controls, no lone surrogates."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    return _ANSI_OR_CONTROL.sub("", text).replace("\ufffd", "?")


def _read_until(fd: int, size: int, deadline: float) -> bytes:
    data = b""
    while len(data) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise TimeoutError("the sandbox zygote did not answer in time")
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError("the sandbox zygote exited")
        data += chunk
    return data


@functools.cache
def _compiled_filter_hex() -> str:
    """The seccomp filter as hex, compiled once per process; empty when libseccomp is unavailable."""
    try:
        return compile_filter().hex()
    except StateError:
        return ""
