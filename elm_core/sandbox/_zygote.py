"""The zygote: a warm, minimal parent that forks one locked-down child per program.

Started by the supervisor as `python -I -S _zygote.py SOURCE_ROOT` with an empty environment. It
imports only the standard library and the walker creator (never numpy or pymunk, which would make
every fork slower), and never runs program text itself. Protocol on stdin/stdout: frames of a 4-byte
big-endian length and a JSON object. The first frame configures it; every later frame is one program.

In the child, outside in: new session, descriptors closed but stdin (/dev/null), stdout+stderr (the
output pipe) and fd 3 (the result pipe), oom_score_adj 1000, a private scratch directory, rlimits,
a dedicated uid/gid, an empty environment, no_new_privs, the seccomp filter. Then it writes one
marker byte to the result pipe (proof that every layer is in place) and runs the program.
The zygote enforces the wall-clock deadline and the output and result caps, kills the child's whole
process group, reaps everything, and reports raw facts; the supervisor classifies them.
"""

import builtins
import contextlib
import ctypes
import gc
import json
import math
import os
import resource
import select
import signal
import struct
import sys
import time
import types

LAYERS_APPLIED = b"\x01"
_PR_SET_DUMPABLE, _PR_SET_CHILD_SUBREAPER, _PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP = 4, 36, 38, 22
_SECCOMP_MODE_FILTER, _CLONE_NEWNET = 2, 0x40000000
_CREATOR_MODULE_NAMES = frozenset({"walk_creator", "walker_creator", "walker"})
_MESSAGE_CHARS = 240
# Imported before any fork, so programs can import them even when the dedicated uid cannot read the
# standard library's files (as with an interpreter installed under /root). Others may not import.
PRELOADED_MODULES = (
    "bisect", "cmath", "collections", "copy", "dataclasses", "decimal", "enum", "fractions", "functools",
    "heapq", "itertools", "json", "math", "numbers", "operator", "random", "re", "statistics", "string",
    "typing",
)  # fmt: skip

_libc = ctypes.CDLL(None, use_errno=True)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


# ---- the protocol --------------------------------------------------------------------------------


def _read_exactly(fd, n):
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_frame(fd):
    (size,) = struct.unpack(">I", _read_exactly(fd, 4))
    return json.loads(_read_exactly(fd, size))


def write_frame(fd, message):
    data = json.dumps(message).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(fd, data) :]


# ---- what runs in the child, after the layers ------------------------------------------------------


def _import_creator(source_root):
    """Imports the creator modules without running the packages' __init__ (which import numpy)."""
    for name in ("elm_core", "elm_core.sodarace"):
        package = types.ModuleType(name)
        package.__path__ = [os.path.join(source_root, *name.split("."))]
        sys.modules[name] = package
    from elm_core.sodarace._cppn import query_cppn
    from elm_core.sodarace._creator import walker_creator

    return walker_creator, query_cppn


def _program_import(creator_module):
    def program_import(name, globals=None, locals=None, fromlist=(), level=0):
        parts = name.split(".")
        if level != 0 or parts[-1] not in _CREATOR_MODULE_NAMES:
            return builtins.__import__(name, globals, locals, fromlist, level)
        module = creator_module
        if fromlist:  # `from a.b.walk_creator import walker_creator` wants the leaf
            return module
        for i in range(len(parts) - 2, -1, -1):  # `import a.b.walk_creator [as m]` wants the top package
            package = types.ModuleType(parts[i])
            setattr(package, parts[i + 1], module)
            module = package
        return module

    return program_import


def namespace_template(walker_creator, query_cppn):
    """The globals every program starts with; built once in the zygote, copied (shallowly) per child."""
    creator_module = types.ModuleType("walk_creator")
    creator_module.__dict__.update(walker_creator=walker_creator, query_cppn=query_cppn)
    program_builtins = dict(vars(builtins))
    program_builtins["__import__"] = _program_import(creator_module)
    return {
        "__builtins__": program_builtins,
        "__name__": "__walker_program__",
        "walker_creator": walker_creator,
        "query_cppn": query_cppn,
        "math": math,
    }


def _describe(error):
    try:
        text = f"{type(error).__name__}: {error}"
    except BaseException:  # a hostile __str__
        text = type(error).__name__
    return text[:_MESSAGE_CHARS]


def _classify(error):
    if isinstance(error, MemoryError):
        return "MEMORY_LIMIT"
    if isinstance(error, RuntimeError) and "can't start new thread" in str(error):
        return "PROCESS_LIMIT"
    return "PROGRAM_ERROR"


def run_program(source, template, result_limit):
    """Runs the program; returns the result frame (a dict) to send to the supervisor."""
    walker_creator = template["walker_creator"]
    try:
        code = compile(source, "<program>", "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        return {"status": "SYNTAX_ERROR", "message": _describe(e)}
    namespace = dict(template)
    try:
        exec(code, namespace)
        entry = namespace.get("make_walker")
        if not callable(entry):
            return {"status": "NO_ENTRY_POINT", "message": "the program defines no make_walker()"}
        built = entry()
        if isinstance(built, walker_creator):
            built = built.get_walker()
    except BaseException as e:  # whatever the program raised is its own failure
        return {"status": _classify(e), "message": _describe(e)}
    try:
        walker = json.dumps(built)
    except BaseException as e:
        return {
            "status": "PROGRAM_ERROR",
            "message": f"make_walker() returned no walker data: {_describe(e)}",
        }
    if len(walker) > result_limit:
        return {
            "status": "RESULT_TOO_LARGE",
            "message": f"the walker is {len(walker)} bytes > {result_limit}",
        }
    return {"status": "OK", "walker": walker}


def _apply_layers(settings, scratch, result_w, output_w, devnull):
    os.setsid()
    os.dup2(devnull, 0)
    os.dup2(output_w, 1)
    os.dup2(output_w, 2)
    os.dup2(result_w, 3)
    os.closerange(4, settings["max_fd"])
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    os.chdir(scratch)
    cpu = settings["cpu_time_s"]
    for limit, value in (
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (settings["memory_mb"] << 20,) * 2),
        (resource.RLIMIT_FSIZE, (0, 0)),
        (resource.RLIMIT_NOFILE, (settings["open_files"],) * 2),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_NPROC, (settings["processes"],) * 2),
    ):
        resource.setrlimit(limit, value)
    if settings["drop_uid"]:
        os.setgroups([])
        os.setgid(settings["gid"])
        os.setuid(settings["uid"])
    os.environ.clear()
    sys.dont_write_bytecode = True
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "no_new_privs")
    if settings["seccomp"]:
        for offset in settings["self_pid_offsets"]:  # see SELF_PID_STAND_IN in _seccomp.py
            struct.pack_into("=I", settings["filter_buffer"], offset, os.getpid())
    if settings["seccomp"] and _libc.prctl(
        _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(settings["fprog"]), 0, 0
    ):
        raise OSError(ctypes.get_errno(), "seccomp")


def _child(settings, source, scratch, pipes, devnull, template):
    result_r, result_w, output_r, output_w = pipes
    try:
        _apply_layers(settings, scratch, result_w, output_w, devnull)
        os.write(3, LAYERS_APPLIED)
        reply = run_program(source, template, settings["result_limit_bytes"])
        data = json.dumps(reply).encode()
        while data:
            data = data[os.write(3, data) :]
    finally:
        for stream in (sys.stdout, sys.stderr):  # what the program printed is still in Python's buffers
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(0)


# ---- the zygote's side: fork, watch, kill, reap ------------------------------------------------------


def _watch(pid, result_r, output_r, settings):
    """Collects result and output until the child exits or breaks a limit; returns (result, output, why)."""
    pidfd = os.pidfd_open(pid)
    deadline = time.monotonic() + settings["wall_time_s"]
    streams = {result_r: bytearray(), output_r: bytearray()}
    caps = {result_r: settings["result_limit_bytes"] + 4096, output_r: settings["output_limit_bytes"]}
    reasons = {result_r: "RESULT_TOO_LARGE", output_r: "OUTPUT_LIMIT"}
    watched, why = [result_r, output_r, pidfd], None
    try:
        while pidfd in watched:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                why = "WALL_TIMEOUT"
                break
            ready, _, _ = select.select(watched, [], [], remaining)
            for fd in ready:
                if fd == pidfd:
                    watched.remove(pidfd)
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    watched.remove(fd)
                streams[fd] += chunk
                if len(streams[fd]) > caps[fd]:
                    why = reasons[fd]
            if why:
                break
        if why is None:  # exited: take what is left in the pipes
            for fd in (result_r, output_r):
                while len(streams[fd]) <= caps[fd] and (chunk := os.read(fd, 65536)):
                    streams[fd] += chunk
    finally:
        os.close(pidfd)
    return bytes(streams[result_r]), bytes(streams[output_r][: caps[output_r]]), why


def _reap(pid):
    """Kills the child's process group, reaps it and anything orphaned to us; returns (status, rusage)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    while True:  # orphans of the program (we are a subreaper); none exist while seccomp is on
        try:
            orphan, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if orphan == 0:
            break
    survivors = True
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        survivors = False
    return status, usage, survivors


def _remove_tree(path):
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            _remove_tree(entry.path)
        else:
            os.unlink(entry.path)
    os.rmdir(path)


def serve_one(settings, source, template, devnull, serial):
    scratch = os.path.join(settings["scratch_root"], str(serial))
    os.mkdir(scratch, 0o700)
    if settings["drop_uid"]:
        os.chown(scratch, settings["uid"], settings["gid"])
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        _child(settings, source, scratch, (result_r, result_w, output_r, output_w), devnull, template)
    forked = time.perf_counter()
    os.close(result_w)
    os.close(output_w)
    try:
        result, output, why = _watch(pid, result_r, output_r, settings)
    finally:
        os.close(result_r)
        os.close(output_r)
        status, usage, survivors = _reap(pid)
        _remove_tree(scratch)
    done = time.perf_counter()
    return {
        "pid": pid,
        "killed_for": why,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "result": result.decode("utf-8", "replace"),
        "output": output.decode("utf-8", "replace"),
        "survivors": survivors,
        "timings": {"fork_ms": (forked - started) * 1e3, "run_ms": (done - forked) * 1e3},
    }


# ---- start-up: detect and set up the layers --------------------------------------------------------


def _probe_seccomp(settings, devnull):
    """Proves the filter works: a child that installs it and calls execve must die of SIGSYS."""
    pid = os.fork()
    if pid == 0:
        try:
            _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(settings["fprog"]), 0, 0) == 0:
                os.execv("/bin/true", ["/bin/true"])
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def set_up(settings, devnull):
    """Applies the zygote-wide layers and reports which are active: {layer: [active, detail]}."""
    layers = {}
    euid = os.geteuid()
    settings["drop_uid"] = euid == 0 and settings["uid"] != 0
    layers["dedicated_uid"] = [
        settings["drop_uid"],
        f"uid {settings['uid']}"
        if settings["drop_uid"]
        else f"running as uid {euid}: only root can switch to a dedicated uid",
    ]
    netns = _libc.unshare(_CLONE_NEWNET) == 0
    layers["network_namespace"] = [
        netns,
        "empty network namespace"
        if netns
        else f"unshare(CLONE_NEWNET) refused: {os.strerror(ctypes.get_errno())}",
    ]
    bpf = bytes.fromhex(settings.pop("bpf_hex", "") or "")
    settings["seccomp"] = False
    if bpf:
        settings["filter_buffer"] = ctypes.create_string_buffer(bpf, len(bpf))
        settings["fprog"] = _SockFprog(len(bpf) // 8, ctypes.addressof(settings["filter_buffer"]))
        settings["seccomp"] = _probe_seccomp(settings, devnull)
    layers["seccomp"] = [
        settings["seccomp"],
        f"{len(bpf) // 8} BPF instructions"
        if settings["seccomp"]
        else "no filter compiled (libseccomp missing)"
        if not bpf
        else "the kernel refused the filter",
    ]
    no_new_privs = _libc.prctl(39, 0, 0, 0, 0) >= 0  # PR_GET_NO_NEW_PRIVS answers on kernels >= 3.5
    layers["no_new_privs"] = [no_new_privs, "prctl(PR_SET_NO_NEW_PRIVS)"]
    oom = os.access("/proc/self/oom_score_adj", os.W_OK)
    layers["oom_score_adj"] = [oom, "1000: killed first under memory pressure" if oom else "not writable"]
    for name, detail in (
        ("rlimits", "cpu, address space, file size, open files, core, processes"),
        ("new_session", "own session and process group"),
        ("empty_environment", "no variables"),
        ("closed_descriptors", "only stdin, output and result pipes"),
        ("scratch_directory", settings["scratch_root"]),
    ):
        layers[name] = [True, detail]
    _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)  # our /proc entries and our children's: root-only
    _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    return layers


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the supervisor, which stops us in order
    source_root = sys.argv[1]
    for name in PRELOADED_MODULES:
        __import__(name)
    template = namespace_template(*_import_creator(source_root))
    devnull = os.open(os.devnull, os.O_RDONLY)
    settings = read_frame(0)
    settings["max_fd"] = os.sysconf("SC_OPEN_MAX")
    # unguessable: neither a killed zygote's leftover (same pid) nor a name planted by another user collides
    settings["scratch_root"] = f"/tmp/elm-sandbox-{os.getpid()}-{os.urandom(4).hex()}"
    os.mkdir(settings["scratch_root"], 0o711)
    try:
        write_frame(1, {"layers": set_up(settings, devnull)})
        gc.freeze()  # keep the collector from touching (and so copying) the zygote's pages in every child
        serial = 0
        while True:
            try:
                request = read_frame(0)
            except EOFError:
                return
            serial += 1
            write_frame(1, serve_one(settings, request["source"], template, devnull, serial))
    finally:
        _remove_tree(settings["scratch_root"])


if __name__ == "__main__":
    main()
