"""Hostile programs: each gets a clear typed outcome, the sandbox keeps serving, and nothing of it survives.

Every program runs through ONE module-scoped Sandbox, so one program's damage would show in the next.
The threat model's 28 "cases a test suite must cover" are mapped to case ids in REFERENCE_CASES at the
end of this file; a test checks that the map is complete.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from elm_core.errors import InvalidRequestError
from elm_core.sandbox import ExecutionResult, Outcome, Sandbox, SandboxConfig, run_program
from elm_core.sodarace import Walker, seed_source

from . import programs as P

CONFIG = SandboxConfig(
    wall_time_s=2.0,
    cpu_time_s=1,
    memory_mb=256,
    output_limit_bytes=64 * 1024,
    result_limit_bytes=1 << 20,
    source_limit_bytes=64 * 1024,
)
# A run may take its wall-clock limit plus start-up and clean-up; anything much slower means a limit
# was not enforced from outside.
MAX_RUN_S = CONFIG.wall_time_s + 1.5
MAX_MESSAGE = 300

SQUARE_SOURCE = seed_source("square")


# ---- helpers ------------------------------------------------------------------------------------------


def process_table() -> dict[int, tuple[int, int, int, str]]:
    """pid -> (ppid, pgrp, session, state) for every process now alive (zombies included)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # comm may hold spaces and parentheses
        state, ppid, pgrp, session = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
        table[int(entry.name)] = (ppid, pgrp, session, state)
    return table


def children_of(pid: int) -> list[int]:
    return [child for child, (ppid, *_rest) in process_table().items() if ppid == pid]


def assert_nothing_survives(result: ExecutionResult, sandbox: Sandbox) -> None:
    """(c): the program's process is gone (reaped, not a zombie) and so is its whole process group."""
    assert isinstance(result.pid, int) and result.pid > 0, f"no program pid reported: {result.pid!r}"
    with pytest.raises(ProcessLookupError):
        os.kill(result.pid, 0)
    survivors = {
        pid: info
        for pid, info in process_table().items()
        if info[1] == result.pid or info[2] == result.pid  # same process group or session
    }
    assert not survivors, f"processes of program {result.pid} still alive: {survivors}"
    zygote_children = children_of(sandbox.zygote_pid)
    assert len(zygote_children) <= 1, f"zygote {sandbox.zygote_pid} has children {zygote_children}"


def assert_clean_text(result: ExecutionResult) -> None:
    """(b) and the output contract: short message without a traceback; output a clean, valid str."""
    assert isinstance(result.message, str)
    assert len(result.message) < MAX_MESSAGE, (
        f"message of {len(result.message)} chars: {result.message[:400]!r}"
    )
    assert "Traceback" not in result.message, result.message
    assert isinstance(result.output, str)
    assert "\x00" not in result.output, f"NUL in output: {result.output[:200]!r}"
    assert "\x1b" not in result.output, f"ESC in output: {result.output[:200]!r}"
    result.output.encode("utf-8")  # no lone surrogates
    assert len(result.output) <= CONFIG.output_limit_bytes
    assert isinstance(result.timings, dict)
    assert all(isinstance(v, float) for v in result.timings.values()), result.timings


def assert_square(result: ExecutionResult) -> Walker:
    assert result.status is Outcome.OK, f"{result.status}: {result.message}"
    assert isinstance(result.walker, Walker)
    assert len(result.walker.joints) == 5 and len(result.walker.muscles) == 8
    assert result.walker.joints[4] == (5.0, 5.0)
    return result.walker


def run_timed(sandbox: Sandbox, source: str | bytes) -> ExecutionResult:
    start = time.monotonic()
    result = sandbox.run(source)
    elapsed = time.monotonic() - start
    assert isinstance(result, ExecutionResult)
    assert elapsed < MAX_RUN_S, f"run took {elapsed:.2f} s ({result.status}: {result.message})"
    return result


def still_serves(sandbox: Sandbox) -> None:
    """(d): right after anything, the well-formed program still works."""
    result = run_timed(sandbox, SQUARE_SOURCE)
    assert_square(result)
    assert_nothing_survives(result, sandbox)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    # planted before the zygote starts, so it would inherit it: no program may ever see it
    os.environ[P.SECRET_ENV] = P.SECRET_VALUE
    try:
        with Sandbox(CONFIG) as box:
            yield box
    finally:
        os.environ.pop(P.SECRET_ENV, None)


@pytest.fixture(scope="module")
def library_fingerprint() -> dict[str, tuple[int, float, str]]:
    """Library files programs attack; checked unchanged after every case."""
    import elm_core.sodarace._creator as creator

    for leftover in (P.WRITE_TARGET, P.SHM_TARGET):  # from an earlier, broken run: start clean
        if os.path.lexists(leftover):
            os.unlink(leftover)
    fingerprints = {}
    for path in (creator.__file__,):
        data = Path(path).read_bytes()
        st = os.stat(path)
        fingerprints[path] = (st.st_mode, st.st_mtime, hashlib.sha256(data).hexdigest())
    return fingerprints


# ---- the cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    expected: frozenset[Outcome]  # one outcome, except where the design admits two
    says: tuple[str, ...] = ()  # the message contains at least one of these
    needs_uid: bool = False  # relies on the program running as another uid than the sandbox

    def param(self):  # noqa: ANN201
        return pytest.param(self, id=self.id)


def case(
    id: str, source: str, *expected: Outcome, says: str | tuple[str, ...] = (), needs_uid: bool = False
) -> Case:
    return Case(id, source, frozenset(expected), (says,) if isinstance(says, str) else says, needs_uid)


def missing_layer(hostile: Case) -> str | None:
    """Why the host cannot provide a layer this case relies on, or None."""
    if hostile.needs_uid and os.geteuid() != 0:
        return "dedicated_uid layer: the sandbox can only switch to another uid when the tests run as root"
    if Outcome.FORBIDDEN_OPERATION in hostile.expected:
        with open("/proc/self/status") as f:
            if "Seccomp:" not in f.read():
                return "seccomp layer: this kernel has no seccomp support"
    return None


HOSTILE = [
    # 1-4
    case("well-formed-square", SQUARE_SOURCE, Outcome.OK),
    case("well-formed-returns-creator", P.WELL_FORMED_CREATOR_RETURNED, Outcome.OK),
    case("control-libc-prelude", P.LIBC_CONTROL, Outcome.OK),
    case("control-syscall-prelude", P.SYSCALLS_CONTROL, Outcome.OK),
    case("syntax-error", P.SYNTAX_ERROR, Outcome.SYNTAX_ERROR, says="SyntaxError"),
    case("syntax-nested-parentheses", P.NESTED_PARENS, Outcome.SYNTAX_ERROR, says="SyntaxError"),
    case("raises", P.RAISES, Outcome.PROGRAM_ERROR, says="ZeroDivisionError"),
    case("raises-huge-message", P.HUGE_EXCEPTION_MESSAGE, Outcome.PROGRAM_ERROR, says="ValueError"),
    case("raises-unprintable", P.EXCEPTION_STR_RAISES, Outcome.PROGRAM_ERROR, says="Nasty"),
    case("no-entry-point", P.NO_ENTRY_POINT, Outcome.NO_ENTRY_POINT),
    case("entry-point-not-callable", P.ENTRY_POINT_NOT_CALLABLE, Outcome.NO_ENTRY_POINT),
    # 5
    case("returns-nan", P.RETURNS_NAN, Outcome.INVALID_WALKER, says="non_finite"),
    case("returns-inf", P.RETURNS_INF, Outcome.INVALID_WALKER, says="non_finite"),
    case("returns-set", P.RETURNS_SET, Outcome.PROGRAM_ERROR),
    case("returns-object", P.RETURNS_OBJECT, Outcome.PROGRAM_ERROR),
    case("returns-cycle", P.RETURNS_CYCLE, Outcome.PROGRAM_ERROR),
    # 6-8
    case("cpu-busy-loop", P.BUSY_LOOP, Outcome.CPU_TIMEOUT),
    case("cpu-busy-loop-top-level", P.TOP_LEVEL_BUSY_LOOP, Outcome.CPU_TIMEOUT),
    case("cpu-huge-pow", P.HUGE_POW, Outcome.CPU_TIMEOUT),
    case("cpu-pbkdf2", P.PBKDF2, Outcome.CPU_TIMEOUT),
    case("cpu-regex-backtracking", P.REGEX_BACKTRACKING, Outcome.CPU_TIMEOUT),
    case("wall-sleep", P.SLEEP, Outcome.WALL_TIMEOUT),
    case("wall-sleep-ignoring-signals", P.SLEEP_IGNORING_SIGNALS, Outcome.WALL_TIMEOUT),
    case("wall-stops-itself", P.STOPS_ITSELF, Outcome.WALL_TIMEOUT),
    # 9-10
    case("memory-4gib-at-once", P.ALLOCATE_4_GIB, Outcome.MEMORY_LIMIT),
    case("memory-4gib-of-pointers", P.ALLOCATE_4_GIB_OF_POINTERS, Outcome.MEMORY_LIMIT),
    case("memory-numpy-or-bytes-at-once", P.ALLOCATE_NUMPY_OR_BYTES, Outcome.MEMORY_LIMIT),
    case("memory-gradual", P.GROW_GRADUALLY, Outcome.MEMORY_LIMIT),
    case("memory-doubling-string", P.GROW_BY_DOUBLING, Outcome.MEMORY_LIMIT),
    # 11-12
    case("fork", P.FORK, Outcome.FORBIDDEN_OPERATION),
    case("fork-bomb", P.FORK_BOMB, Outcome.FORBIDDEN_OPERATION),
    case("fork-top-level", P.TOP_LEVEL_FORK, Outcome.FORBIDDEN_OPERATION),
    case("multiprocessing", P.MULTIPROCESSING, Outcome.FORBIDDEN_OPERATION),
    case("many-threads", P.THREADS, Outcome.PROCESS_LIMIT, Outcome.PROGRAM_ERROR),
    case("subprocess", P.SUBPROCESS, Outcome.FORBIDDEN_OPERATION),
    case("os-system", P.OS_SYSTEM, Outcome.FORBIDDEN_OPERATION),
    case("posix-spawn", P.POSIX_SPAWN, Outcome.FORBIDDEN_OPERATION),
    case("execv", P.EXECV, Outcome.FORBIDDEN_OPERATION),
    # 13-14
    case("tcp-connect", P.TCP_CONNECT, Outcome.FORBIDDEN_OPERATION),
    case("tcp6-connect", P.TCP6_CONNECT, Outcome.FORBIDDEN_OPERATION),
    case("udp-socket", P.UDP_SOCKET, Outcome.FORBIDDEN_OPERATION),
    case("netlink-socket", P.NETLINK_SOCKET, Outcome.FORBIDDEN_OPERATION),
    case("dns-getaddrinfo", P.DNS_LOOKUP, Outcome.FORBIDDEN_OPERATION),
    case("dns-gethostbyname", P.GETHOSTBYNAME, Outcome.FORBIDDEN_OPERATION),
    case("unix-socketpair-allowed", P.UNIX_SOCKETPAIR, Outcome.OK),
    # 15
    case("read-etc-shadow", P.READ_SHADOW, Outcome.PROGRAM_ERROR, says="PermissionError"),
    case(
        "read-service-account-token",
        P.READ_SERVICE_ACCOUNT_TOKEN,
        Outcome.PROGRAM_ERROR,
        says=("FileNotFoundError", "PermissionError"),
    ),
    case("read-proc-1-environ", P.READ_PID1_ENVIRON, Outcome.PROGRAM_ERROR, says="PermissionError"),
    case(
        "read-zygote-environ",
        P.READ_PARENT_ENVIRON,
        Outcome.PROGRAM_ERROR,
        says="PermissionError",
        needs_uid=True,
    ),
    case(
        "read-zygote-memory",
        P.READ_PARENT_MEMORY,
        Outcome.PROGRAM_ERROR,
        says="PermissionError",
        needs_uid=True,
    ),
    case("environment-is-empty", P.SHOW_ENVIRONMENT, Outcome.OK),
    # 16-18
    case("write-outside-scratch", P.WRITE_OUTSIDE_SCRATCH, Outcome.FORBIDDEN_OPERATION),
    case("write-dev-shm", P.OS_OPEN_SHM, Outcome.FORBIDDEN_OPERATION),
    case("write-in-scratch", P.WRITE_IN_SCRATCH, Outcome.FORBIDDEN_OPERATION),
    case("overwrite-library", P.OVERWRITE_LIBRARY, Outcome.FORBIDDEN_OPERATION),
    case("huge-file", P.HUGE_FILE, Outcome.FORBIDDEN_OPERATION),
    case("too-many-open-files", P.TOO_MANY_OPEN_FILES, Outcome.PROGRAM_ERROR, says="OSError"),
    # 19-20
    case("flood-stdout", P.FLOOD_STDOUT, Outcome.OUTPUT_LIMIT),
    case("flood-stderr-raw-bytes", P.FLOOD_STDERR_RAW, Outcome.OUTPUT_LIMIT),
    case("one-huge-print", P.ONE_HUGE_PRINT, Outcome.OUTPUT_LIMIT),
    case("stderr-invalid-utf8-nul-ansi", P.STDERR_GARBAGE, Outcome.OK),
    # 21-22
    case("exit-before-return", P.EXIT_BEFORE_RETURN, Outcome.NO_RESULT),
    case("exit-top-level", P.TOP_LEVEL_EXIT, Outcome.NO_RESULT),
    case("result-10mb-walker", P.TEN_MB_WALKER, Outcome.RESULT_TOO_LARGE),
    case("result-millions-of-joints", P.MILLIONS_OF_JOINTS, Outcome.RESULT_TOO_LARGE),
    case("result-10mb-string", P.TEN_MB_STRING, Outcome.RESULT_TOO_LARGE),
    case("result-too-many-joints", P.TOO_MANY_JOINTS, Outcome.INVALID_WALKER, says="too_many_joints"),
    case("creator-runaway", P.CREATOR_RUNAWAY, Outcome.PROGRAM_ERROR, says="ValueError"),
    # 23-25
    case("segfault-ctypes", P.SEGFAULT, Outcome.CRASH, says="SIGSEGV"),
    case("abort", P.ABORT, Outcome.CRASH, says="SIGABRT"),
    case("c-stack-overflow", P.C_STACK_OVERFLOW, Outcome.CRASH, says="SIGSEGV"),
    case("unbounded-recursion", P.UNBOUNDED_RECURSION, Outcome.PROGRAM_ERROR, says="RecursionError"),
    # 26
    case("setuid-root", P.SETUID_ROOT, Outcome.PROGRAM_ERROR, Outcome.FORBIDDEN_OPERATION),
    case("setresuid-root", P.SETRESUID_ROOT, Outcome.PROGRAM_ERROR, Outcome.FORBIDDEN_OPERATION),
    # signals reach the program itself only, even under the zygote's uid (as in a non-root container)
    case("kill-zygote", P.KILL_PARENT, Outcome.FORBIDDEN_OPERATION),
    case("signal-pid-1", P.SIGNAL_PID_1, Outcome.FORBIDDEN_OPERATION),
    case("signal-every-process", P.SIGNAL_EVERY_PROCESS, Outcome.FORBIDDEN_OPERATION),
    case("pidfd-of-zygote", P.PIDFD_OF_PARENT, Outcome.FORBIDDEN_OPERATION),
    case("unshare", P.UNSHARE, Outcome.FORBIDDEN_OPERATION),
    case("setns", P.SETNS, Outcome.FORBIDDEN_OPERATION),
    case("ptrace", P.PTRACE, Outcome.FORBIDDEN_OPERATION),
    case("mount", P.MOUNT, Outcome.FORBIDDEN_OPERATION),
    case("bpf", P.BPF, Outcome.FORBIDDEN_OPERATION),
    case("keyctl", P.KEYCTL, Outcome.FORBIDDEN_OPERATION),
    case("io-uring", P.IO_URING, Outcome.FORBIDDEN_OPERATION),
    case("userfaultfd", P.USERFAULTFD, Outcome.FORBIDDEN_OPERATION),
    case("perf-event-open", P.PERF_EVENT_OPEN, Outcome.FORBIDDEN_OPERATION),
    case("process-vm-readv", P.PROCESS_VM_READV, Outcome.FORBIDDEN_OPERATION),
    case("process-vm-writev", P.PROCESS_VM_WRITEV, Outcome.FORBIDDEN_OPERATION),
    # 27
    case("nan-joint-from-creator", P.NAN_JOINT_FROM_CREATOR, Outcome.INVALID_WALKER, says="non_finite"),
    case("inf-amplitude", P.INF_AMPLITUDE, Outcome.INVALID_WALKER, says="non_finite"),
    case("nan-phase", P.NAN_PHASE, Outcome.INVALID_WALKER, says="non_finite"),
    case("negative-joint-index", P.NEGATIVE_INDEX, Outcome.INVALID_WALKER, says="index_out_of_range"),
    case(
        "huge-negative-coordinate", P.HUGE_NEGATIVE_COORDINATE, Outcome.INVALID_WALKER, says="out_of_bounds"
    ),
]

# Cases whose outcome the design leaves open between a few typed outcomes; they must still get one of
# them, keep the message short, leave nothing behind, and leave the sandbox serving.
EDGE = [
    # killed, or refused with ENOSYS/EPERM (so that libc falls back to clone(2)): no process either way
    case(
        "clone3",
        P.CLONE3,
        Outcome.FORBIDDEN_OPERATION,
        Outcome.PROGRAM_ERROR,
        says=("forbidden", "clone3 refused"),
    ),
    # chmod of a root-owned file: denied by the kernel (not the owner) or killed by the filter
    case(
        "chmod-library",
        P.CHMOD_LIBRARY,
        Outcome.PROGRAM_ERROR,
        Outcome.FORBIDDEN_OPERATION,
        says=("PermissionError", "forbidden"),
        needs_uid=True,
    ),
    case("ignores-sigxcpu", P.IGNORE_SIGXCPU, Outcome.CPU_TIMEOUT, Outcome.WALL_TIMEOUT),
    case("kills-itself", P.KILL_SELF, Outcome.CRASH, Outcome.MEMORY_LIMIT),
    case("sys-exit", P.SYS_EXIT, Outcome.PROGRAM_ERROR, Outcome.NO_RESULT),
    case("keyboard-interrupt", P.KEYBOARD_INTERRUPT, Outcome.PROGRAM_ERROR, Outcome.NO_RESULT),
    case("closes-all-descriptors", P.CLOSE_ALL_DESCRIPTORS, Outcome.NO_RESULT, Outcome.PROGRAM_ERROR),
    case("returns-none", P.RETURNS_NONE, Outcome.INVALID_WALKER, Outcome.PROGRAM_ERROR),
    case("returns-deep-nesting", P.RETURNS_DEEP_NESTING, Outcome.PROGRAM_ERROR, Outcome.INVALID_WALKER),
    case("returns-huge-int", P.RETURNS_HUGE_INT, Outcome.INVALID_WALKER, Outcome.PROGRAM_ERROR),
    case(
        "compile-deep-expression",
        P.DEEP_EXPRESSION,
        Outcome.SYNTAX_ERROR,
        Outcome.PROGRAM_ERROR,
        Outcome.CRASH,
    ),
]


def check_case(sandbox: Sandbox, hostile: Case, fingerprint: dict[str, tuple[int, float, str]]) -> None:
    reason = missing_layer(hostile)
    if reason:
        pytest.skip(reason)
    result = run_timed(sandbox, hostile.source)
    expected = " or ".join(sorted(hostile.expected))
    # (a) the typed outcome
    assert result.status in hostile.expected, (
        f"{hostile.id}: expected {expected}, got {result.status}: {result.message!r} "
        f"(output {result.output[:300]!r})"
    )
    if hostile.says:
        assert any(word in result.message for word in hostile.says), (
            f"{hostile.id}: message {result.message!r} names none of {hostile.says}"
        )
    if result.status is Outcome.OK:
        assert isinstance(result.walker, Walker)
    else:
        assert result.walker is None, f"{hostile.id}: a walker came with {result.status}"
    # (b) short message, no traceback; clean output
    assert_clean_text(result)
    # (c) nothing of the program is alive
    assert_nothing_survives(result, sandbox)
    # no secret and no damage, whatever the outcome
    for text in (result.message, result.output):
        assert P.SECRET_VALUE not in text
        assert "root:*" not in text and "root:$" not in text, "/etc/shadow content leaked"
    for path in (P.WRITE_TARGET, P.SHM_TARGET):
        assert not os.path.lexists(path), f"{hostile.id} created {path}"
    for path, before in fingerprint.items():
        st = os.stat(path)
        after = (st.st_mode, st.st_mtime, hashlib.sha256(Path(path).read_bytes()).hexdigest())
        assert after == before, f"{hostile.id} changed {path}"
    # (d) the sandbox still serves
    still_serves(sandbox)


@pytest.mark.parametrize("hostile", [c.param() for c in HOSTILE])
def test_hostile_program(sandbox: Sandbox, library_fingerprint, hostile: Case) -> None:
    check_case(sandbox, hostile, library_fingerprint)


@pytest.mark.parametrize("hostile", [c.param() for c in EDGE])
def test_edge_program(sandbox: Sandbox, library_fingerprint, hostile: Case) -> None:
    check_case(sandbox, hostile, library_fingerprint)


def test_there_are_at_least_30_hostile_programs() -> None:
    assert len(HOSTILE) + len(EDGE) >= 30
    assert len({c.id for c in HOSTILE + EDGE}) == len(HOSTILE) + len(EDGE)


# ---- specific checks on some outcomes -----------------------------------------------------------------


def test_output_is_sanitised_but_kept(sandbox: Sandbox) -> None:
    """20: invalid UTF-8, NUL, ANSI (7- and 8-bit CSI, OSC) on stderr and stdout: clean text, words kept."""
    result = run_timed(sandbox, P.STDERR_GARBAGE)
    assert_square(result)
    assert_clean_text(result)
    assert "marker-visible" in result.output, result.output
    assert "marker-stdout" in result.output, result.output
    assert "\x9b" not in result.output, f"8-bit CSI (U+009B) in output: {result.output!r}"
    assert "\x07" not in result.output, f"BEL in output: {result.output!r}"
    assert all(ch in "\n\t" or ch >= " " for ch in result.output if ord(ch) < 0x20), repr(result.output)


def test_message_is_clean_text(sandbox: Sandbox) -> None:
    """The message is program-controlled text too (the exception's): it reaches logs and the wire (gRPC
    strings must be valid UTF-8), so it gets the output's treatment."""
    result = run_timed(sandbox, P.EXCEPTION_WITH_CONTROLS)
    assert result.status is Outcome.PROGRAM_ERROR, f"{result.status}: {result.message}"
    assert "marker-message" in result.message, result.message
    for char, name in (("\x00", "NUL"), ("\x1b", "ESC"), ("\x9b", "8-bit CSI (U+009B)"), ("\x07", "BEL")):
        assert char not in result.message, f"{name} in message {result.message!r}"
    try:
        result.message.encode("utf-8")
    except UnicodeEncodeError as e:
        raise AssertionError(f"message is not valid UTF-8 text ({e}): {result.message!r}") from None


def test_flooded_output_is_capped(sandbox: Sandbox) -> None:
    result = run_timed(sandbox, P.FLOOD_STDOUT)
    assert result.status is Outcome.OUTPUT_LIMIT, f"{result.status}: {result.message}"
    assert result.output.startswith("x" * 1000), result.output[:100]
    assert len(result.output.encode()) <= CONFIG.output_limit_bytes


# names a runner may set on purpose; anything else inherited could carry a credential
HARMLESS_VARIABLES = {
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "HOME",
    "PYTHONHASHSEED",
    "PYTHONIOENCODING",
}


def test_secrets_stay_secret(sandbox: Sandbox) -> None:
    """15: the program sees no inherited environment and cannot read the shadow file's content."""
    result = run_timed(sandbox, P.SHOW_ENVIRONMENT)
    assert_square(result)
    assert "secret visible: False" in result.output, result.output
    assert P.SECRET_VALUE not in result.output
    names = result.output.split("environment:", 1)[1].split("\n", 1)[0]
    inherited = {name for name in os.environ if repr(name) in names} - HARMLESS_VARIABLES
    assert not inherited, f"the program inherits the test process's variables {sorted(inherited)}"
    shadow = run_timed(sandbox, P.READ_SHADOW)
    assert shadow.status is Outcome.PROGRAM_ERROR, f"{shadow.status}: {shadow.message}"
    assert "root:" not in shadow.output and "root:" not in shadow.message


def test_child_layers(sandbox: Sandbox) -> None:
    """The per-program layers of the threat model, seen from inside the program's process."""
    import json

    result = run_timed(sandbox, P.LAYERS)
    assert_square(result)
    lines = [line for line in result.output.splitlines() if line.startswith("LAYERS ")]
    assert lines, result.output
    info = json.loads(lines[0][len("LAYERS ") :])
    problems = []
    # a dedicated uid is only possible when the sandbox runs as root
    ids = (info["uid"], info["euid"], info["gid"], info["egid"], *info["groups"])
    if os.geteuid() == 0 and 0 in ids:
        problems.append(f"runs as root: uid {info['uid']}/{info['euid']} gid {info['gid']}/{info['egid']}")
    if info["no_new_privs"] != "1":
        problems.append(f"NoNewPrivs {info['no_new_privs']!r}")
    if info["seccomp"] != "2":
        problems.append(f"Seccomp {info['seccomp']!r} (2 = filter)")
    if int(info["cap_eff"] or "0", 16) != 0:
        problems.append(f"effective capabilities {info['cap_eff']}")
    limits = {name: tuple(value) for name, value in info["rlimits"].items()}
    infinity = -1  # resource.RLIM_INFINITY on Linux
    if limits["RLIMIT_CORE"][0] != 0:
        problems.append(f"RLIMIT_CORE {limits['RLIMIT_CORE']}")
    if not 0 <= limits["RLIMIT_CPU"][0] <= CONFIG.cpu_time_s + 1:
        problems.append(f"RLIMIT_CPU {limits['RLIMIT_CPU']}")
    for name in ("RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC"):
        if limits[name][0] == infinity:
            problems.append(f"{name} unlimited")
    if not info["pid"] == info["pgrp"] == info["sid"]:
        problems.append(f"not its own session: pid {info['pid']} pgrp {info['pgrp']} sid {info['sid']}")
    if info["cwd"] in ("/", os.getcwd(), str(Path(__file__).resolve().parents[3])):
        problems.append(f"working directory {info['cwd']} is not a scratch directory")
    if P.SECRET_ENV in info["environment"]:
        problems.append("inherits the test process's environment")
    # the listing itself holds one descriptor; beyond it only the result channel may be open
    extra = [fd for fd in info["descriptors"] if fd > 2]
    if len(extra) > 2:
        problems.append(f"descriptors open beyond stdio: {extra}")
    if info["oom_score_adj"] != "1000":
        problems.append(f"oom_score_adj {info['oom_score_adj']}")
    assert not problems, "; ".join(problems)
    assert_nothing_survives(result, sandbox)


# ---- cross-program state and forged results -------------------------------------------------------------


def test_a_program_cannot_change_what_later_programs_see(sandbox: Sandbox) -> None:
    before = run_timed(sandbox, P.CHECKER)
    assert_square(before)  # the checker itself passes on a clean sandbox
    polluter = run_timed(sandbox, P.POLLUTER)
    assert polluter.status not in (Outcome.OK, Outcome.SANDBOX_ERROR), (
        f"{polluter.status}: {polluter.message}"
    )
    assert_nothing_survives(polluter, sandbox)
    for _ in range(3):
        after = run_timed(sandbox, P.CHECKER)
        assert_square(after)
    still_serves(sandbox)


FORGED = tuple(tuple(joint) for joint in P.FORGED_JOINTS)


def assert_not_forged(result: ExecutionResult) -> None:
    assert result.status is not Outcome.SANDBOX_ERROR, (
        f"a program forged an infrastructure fault: {result.message}"
    )
    if result.walker is not None:
        assert result.walker.joints != FORGED, f"forged walker accepted with {result.status}"


# (source, outcomes the design fixes or None, whether the program's real outcome is a failure)
FORGERIES = [
    pytest.param(P.FORGE_STDOUT_THEN_RAISE, {Outcome.PROGRAM_ERROR}, True, id="stdout-then-raise"),
    pytest.param(P.FORGE_STDOUT_THEN_RETURN, {Outcome.OK}, False, id="stdout-then-return"),
    pytest.param(P.FORGE_DESCRIPTORS_THEN_RAISE, None, True, id="fds-then-raise"),
    pytest.param(P.FORGE_DESCRIPTORS_THEN_EXIT, None, True, id="fds-then-exit"),
    pytest.param(P.FORGE_DESCRIPTORS_THEN_RETURN, None, False, id="fds-then-return"),
    pytest.param(P.FORGE_RETURN_STATUS_RECORD, {Outcome.INVALID_WALKER}, True, id="returns-status-record"),
    pytest.param(P.FORGE_PATCH_SERIALISERS, None, True, id="patches-serialisers"),
]


@pytest.mark.parametrize(("source", "expected", "fails"), FORGERIES)
def test_a_program_cannot_forge_its_result(
    sandbox: Sandbox, source: str, expected: set[Outcome] | None, fails: bool
) -> None:
    """Fake results on stdout, on descriptors 1..20, as its return value or through patched serialisers:
    never a forged walker, never an infrastructure fault, never OK for a program that raised or exited;
    where the design fixes the outcome, that one. (The real program returns the square, raises or exits.)"""
    result = run_timed(sandbox, source)
    assert_not_forged(result)
    assert_clean_text(result)
    if expected is not None:
        assert result.status in expected, f"{result.status}: {result.message}"
    if fails:
        assert result.status is not Outcome.OK, f"a failing program reported OK: {result.message}"
    if result.status is Outcome.OK:
        assert_square(result)
    assert_nothing_survives(result, sandbox)
    still_serves(sandbox)


# ---- 28: bad requests at the API ---------------------------------------------------------------------


def padded_square(size: int, pad: str = "#") -> str:
    """The square program, padded with a trailing comment to exactly `size` UTF-8 bytes."""
    base = SQUARE_SOURCE.rstrip("\n") + "\n# "
    room = size - len(base.encode()) - 1
    assert room >= 0
    width = len(pad.encode())
    text = base + pad * (room // width) + "x" * (room % width) + "\n"
    assert len(text.encode()) == size
    return text


def test_source_at_the_limit_runs(sandbox: Sandbox) -> None:
    assert_square(run_timed(sandbox, padded_square(CONFIG.source_limit_bytes)))


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(padded_square(CONFIG.source_limit_bytes + 1), id="one-byte-over"),
        pytest.param("x" * (10 * 1024 * 1024), id="10mb"),
        # under the limit in characters, over it in UTF-8 bytes
        pytest.param(padded_square(CONFIG.source_limit_bytes + 2, pad="é"), id="multibyte-over"),
        pytest.param(b"def make_walker():\n    return '\xff\xfe'\n", id="bytes-not-utf8"),
        pytest.param(b"\xc0\xaf" + SQUARE_SOURCE.encode(), id="bytes-overlong-utf8"),
    ],
)
def test_bad_request_is_refused(sandbox: Sandbox, source: str | bytes) -> None:
    if isinstance(source, str) and len(source) <= CONFIG.source_limit_bytes:
        assert len(source.encode()) > CONFIG.source_limit_bytes
    with pytest.raises(InvalidRequestError):
        sandbox.run(source)
    still_serves(sandbox)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(SQUARE_SOURCE.replace("def make_walker", "\x00def make_walker"), id="nul-str"),
        pytest.param(SQUARE_SOURCE.encode() + b"\x00\n", id="nul-bytes"),
        pytest.param(SQUARE_SOURCE + "# \udcff lone surrogate\n", id="lone-surrogate"),
    ],
)
def test_nul_or_unencodable_source_is_a_syntax_error_or_refused(
    sandbox: Sandbox, source: str | bytes
) -> None:
    try:
        result = sandbox.run(source)
    except InvalidRequestError:
        pass
    else:
        assert result.status is Outcome.SYNTAX_ERROR, f"{result.status}: {result.message}"
        assert_clean_text(result)
        assert_nothing_survives(result, sandbox)
    still_serves(sandbox)


def test_bytes_source_that_is_utf8_runs(sandbox: Sandbox) -> None:
    assert_square(run_timed(sandbox, SQUARE_SOURCE.encode()))


# ---- run_program (one shot) -----------------------------------------------------------------------------


def descendants() -> set[int]:
    table = process_table()
    found, frontier = set(), [os.getpid()]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, *_rest) in table.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return found


def test_run_program_one_shot_leaves_nothing() -> None:
    before = descendants()
    assert_square(run_program(SQUARE_SOURCE, CONFIG))
    result = run_program(P.FORK, CONFIG)
    assert result.status is Outcome.FORBIDDEN_OPERATION, f"{result.status}: {result.message}"
    deadline = time.monotonic() + 2.0
    while descendants() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not descendants() - before, f"run_program left processes: {descendants() - before}"


# ---- coverage of the reference list -------------------------------------------------------------------

REFERENCE_CASES: dict[int, list[str]] = {
    1: [
        "well-formed-square",
        "well-formed-returns-creator",
        "control-libc-prelude",
        "control-syscall-prelude",
        "unix-socketpair-allowed",
    ],
    2: ["syntax-error", "syntax-nested-parentheses", "compile-deep-expression"],
    3: ["raises", "raises-huge-message", "raises-unprintable", "sys-exit", "keyboard-interrupt"],
    4: ["no-entry-point", "entry-point-not-callable"],
    5: [
        "returns-nan",
        "returns-inf",
        "returns-set",
        "returns-object",
        "returns-cycle",
        "returns-none",
        "returns-deep-nesting",
        "returns-huge-int",
    ],
    6: ["cpu-busy-loop", "cpu-busy-loop-top-level", "ignores-sigxcpu"],
    7: ["cpu-huge-pow", "cpu-pbkdf2", "cpu-regex-backtracking"],
    8: ["wall-sleep", "wall-sleep-ignoring-signals", "wall-stops-itself"],
    9: ["memory-4gib-at-once", "memory-4gib-of-pointers", "memory-numpy-or-bytes-at-once"],
    10: ["memory-gradual", "memory-doubling-string"],
    11: ["fork", "fork-bomb", "fork-top-level", "multiprocessing", "clone3", "many-threads"],
    12: ["subprocess", "os-system", "posix-spawn", "execv"],
    13: ["tcp-connect", "tcp6-connect", "udp-socket", "netlink-socket"],
    14: ["dns-getaddrinfo", "dns-gethostbyname"],
    15: [
        "read-etc-shadow",
        "read-service-account-token",
        "read-proc-1-environ",
        "read-zygote-environ",
        "read-zygote-memory",
        "environment-is-empty",
    ],
    16: ["write-outside-scratch", "write-dev-shm", "write-in-scratch", "overwrite-library", "chmod-library"],
    17: ["huge-file"],
    18: ["too-many-open-files"],
    19: ["flood-stdout", "flood-stderr-raw-bytes", "one-huge-print"],
    20: ["stderr-invalid-utf8-nul-ansi"],
    21: ["exit-before-return", "exit-top-level", "closes-all-descriptors"],
    22: [
        "result-10mb-walker",
        "result-millions-of-joints",
        "result-10mb-string",
        "result-too-many-joints",
        "creator-runaway",
    ],
    23: ["segfault-ctypes", "kills-itself"],
    24: ["abort"],
    25: ["unbounded-recursion", "c-stack-overflow"],
    26: [
        "setuid-root",
        "setresuid-root",
        "kill-zygote",
        "signal-pid-1",
        "signal-every-process",
        "pidfd-of-zygote",
        "unshare",
        "setns",
        "ptrace",
        "mount",
        "bpf",
        "keyctl",
        "io-uring",
        "userfaultfd",
        "perf-event-open",
        "process-vm-readv",
        "process-vm-writev",
    ],
    27: [
        "nan-joint-from-creator",
        "inf-amplitude",
        "nan-phase",
        "negative-joint-index",
        "huge-negative-coordinate",
    ],
    # 28 is tested at the API: test_source_at_the_limit_runs, test_bad_request_is_refused,
    # test_nul_or_unencodable_source_is_a_syntax_error_or_refused
    28: [],
}


def test_every_reference_case_is_covered() -> None:
    ids = {c.id for c in HOSTILE + EDGE}
    assert sorted(REFERENCE_CASES) == list(range(1, 29))
    for number, case_ids in REFERENCE_CASES.items():
        assert number == 28 or case_ids, f"reference case {number} has no program"
        assert set(case_ids) <= ids, f"reference case {number}: unknown ids {set(case_ids) - ids}"
    assert {i for ids_ in REFERENCE_CASES.values() for i in ids_} == ids, "a program is mapped to no case"
