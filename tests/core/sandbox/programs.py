"""Hostile walker programs, as source text, for the sandbox tests.

Most attacks are built with `attack(body)`: `make_walker()` runs the attack and then returns the
square walker. So a program that reaches its end - the attack was *not* stopped - reports OK, never
the outcome the test expects. Attacks on syscalls that must be forbidden raise after the call, so
"the call returned" (allowed, or refused with an errno) is a PROGRAM_ERROR, never FORBIDDEN_OPERATION.

Safety of the tests themselves: every attack is bounded so that a *broken* sandbox cannot damage this
machine (no traffic leaves it: connects go to documentation addresses and the DNS lookup first checks
that a seccomp filter is installed; files that must not be written are opened without truncation; the
fork bomb is bounded at 64 processes; no attack signals anything but itself and its parent).
"""

from __future__ import annotations

import textwrap

# Files an attack tries to create; the tests check that none of them exists afterwards.
WRITE_TARGET = "/tmp/elm-sandbox-hostile-write-test"
SHM_TARGET = "/dev/shm/elm-sandbox-hostile-shm-test"
# Set in the test process before the sandbox starts, so the zygote inherits it: no program may see it.
SECRET_ENV = "ELM_SANDBOX_TEST_SECRET"
SECRET_VALUE = "elm-sandbox-test-secret-9c1f4e"

SQUARE = """
def square():
    wc = walker_creator()
    corners = [wc.add_joint(x, y) for x, y in ((0, 0), (0, 10), (10, 10), (10, 0))]
    centre = wc.add_joint(5, 5)
    for k in range(4):
        wc.add_muscle(corners[k], corners[(k + 1) % 4], False, 0.0, 0.0)
    wc.add_muscle(corners[3], centre, False, 0.0, 0.0)
    for corner, amplitude in zip(corners[:3], (5.0, 10.0, 2.0)):
        wc.add_muscle(corner, centre, True, amplitude, 0.0)
    return wc.get_walker()
"""

# The walker that forging programs try to pass off as theirs (the square's is what they really return).
FORGED_JOINTS = [[0.0, 0.0], [7.25, 0.0], [3.5, 5.75]]
FORGED_WALKER = {
    "joints": FORGED_JOINTS,
    "muscles": [[0, 1, {"type": "distance"}], [1, 2, {"type": "distance"}], [2, 0, {"type": "distance"}]],
}


def attack(body: str, *, prelude: str = "") -> str:
    """A program whose make_walker() runs `body` and then returns the square walker."""
    indented = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    head = textwrap.dedent(prelude).strip()
    return f"{head}\n{SQUARE}\n\ndef make_walker():\n{indented}\n    return square()\n"


# Raw system calls by number, so that no libc wrapper decides for us which call is made.
SYSCALLS = """
import ctypes
import os

_NUMBERS = {
    "x86_64": {"ptrace": 101, "mount": 165, "unshare": 272, "setns": 308, "bpf": 321, "keyctl": 250,
               "io_uring_setup": 425, "userfaultfd": 323, "perf_event_open": 298,
               "process_vm_readv": 310, "process_vm_writev": 311, "clone3": 435},
    "aarch64": {"ptrace": 117, "mount": 40, "unshare": 97, "setns": 268, "bpf": 280, "keyctl": 219,
                "io_uring_setup": 425, "userfaultfd": 282, "perf_event_open": 241,
                "process_vm_readv": 270, "process_vm_writev": 271, "clone3": 435},
}[os.uname().machine]
_libc = ctypes.CDLL(None, use_errno=True)


def syscall(name, *args):
    result = _libc.syscall(ctypes.c_long(_NUMBERS[name]), *[ctypes.c_long(a) for a in args])
    errno = ctypes.get_errno()
    raise OSError(errno, f"{name} returned {result}: the sandbox did not stop it")
"""


def raw_syscall(name: str, *args: str) -> str:
    return attack(f"syscall({name!r}, {', '.join(args)})", prelude=SYSCALLS)


# Where the standard library is out of the program's reach (an interpreter the sandbox uid cannot read),
# attacks fall back to what is still importable - os, _thread, ctypes - as a real attacker would, so
# that the layer under test (seccomp, rlimits) is what stops them, not a missing module.
LIBC = """
import ctypes
import os
import struct

libc = ctypes.CDLL(None, use_errno=True)


def optional_import(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def refused(what, result):
    # the call came back: the sandbox did not kill the process (it allowed the call, or gave an errno)
    raise OSError(ctypes.get_errno(), f"{what} returned {result}: the sandbox did not stop it")


def sockaddr_in(address, port):
    return struct.pack("=H", 2) + struct.pack("!H", port) + bytes(address) + bytes(8)


def sockaddr_in6(address, port):
    return struct.pack("=H", 10) + struct.pack("!HI", port, 0) + bytes(address) + struct.pack("=I", 0)


def libc_connect(family, address):
    fd = libc.socket(family, 1 | 0o4000, 0)  # SOCK_STREAM | SOCK_NONBLOCK: a broken sandbox cannot hang
    if fd < 0:
        refused("socket", fd)
    refused("connect", libc.connect(fd, address, len(address)))


def require_seccomp():
    # before anything that would send a packet if the filter were missing
    with open("/proc/self/status") as status:
        if "Seccomp:\\t2" not in status.read():
            raise RuntimeError("no seccomp filter installed: refusing to send anything")
"""


def libc_attack(body: str) -> str:
    return attack(body, prelude=LIBC)


# Controls: the preludes alone must run OK, so a FORBIDDEN_OPERATION above comes from the attack itself.
LIBC_CONTROL = libc_attack(
    """
    require_seccomp()
    address = sockaddr_in([203, 0, 113, 1], 80) + sockaddr_in6(bytes(16), 80)
    crypto = ctypes.CDLL("libcrypto.so.3")
    crypto.EVP_sha256.restype = ctypes.c_void_p
    out = ctypes.create_string_buffer(32)
    crypto.PKCS5_PBKDF2_HMAC(b"password", 8, b"salt", 4, 1, ctypes.c_void_p(crypto.EVP_sha256()), 32, out)
    assert out.raw != bytes(32)
    """
)
SYSCALLS_CONTROL = attack(
    """
    getpid = {"x86_64": 39, "aarch64": 172}[os.uname().machine]
    assert _libc.syscall(ctypes.c_long(getpid)) == os.getpid()
    """,
    prelude=SYSCALLS,
)


# ---- 1-5: well-formed, syntax, exceptions, entry point, bad return values -------------------------------

WELL_FORMED_CREATOR_RETURNED = """
def make_walker():
    wc = walker_creator()
    a, b, c = wc.add_joint(0, 0), wc.add_joint(4, 0), wc.add_joint(2, 3)
    wc.add_muscle(a, b, False, 0, 0)
    wc.add_muscle(b, c, False, 0, 0)
    wc.add_muscle(c, a, True, 2.0, 0.5)
    return wc  # the creator itself, not get_walker(): accepted
"""
SYNTAX_ERROR = "def make_walker(:\n    return None\n"
NESTED_PARENS = "def make_walker():\n    return " + "(" * 300 + "1" + ")" * 300 + "\n"
RAISES = attack("ratio = 1 / 0")
HUGE_EXCEPTION_MESSAGE = attack('raise ValueError("x" * 1_000_000)')
EXCEPTION_STR_RAISES = attack(
    "raise Nasty()",
    prelude="""
    class Nasty(Exception):
        def __str__(self):
            raise RuntimeError("__str__ refuses")

        def __repr__(self):
            raise RuntimeError("__repr__ refuses")
    """,
)
# The exception text carries terminal controls, NUL, an 8-bit CSI and a lone surrogate.
EXCEPTION_WITH_CONTROLS = attack(
    r"""
    raise ValueError("\x1b[2J\x1b]0;pwned\x07 \x00 \x9b31m red \udcff marker-message")
    """
)
NO_ENTRY_POINT = "def make_walkers():\n    return None\n"
ENTRY_POINT_NOT_CALLABLE = "make_walker = 42\n"
RETURNS_NAN = """
def make_walker():
    return {"joints": [[float("nan"), 0.0], [1.0, 0.0]], "muscles": [[0, 1, {"type": "distance"}]]}
"""
RETURNS_INF = """
def make_walker():
    return {"joints": [[0.0, 0.0], [float("inf"), 0.0]], "muscles": [[0, 1, {"type": "distance"}]]}
"""
RETURNS_SET = "def make_walker():\n    return {1, 2, 3}\n"
RETURNS_OBJECT = """
class Walker:
    joints = [[0, 0], [1, 0]]
    muscles = [[0, 1, {"type": "distance"}]]


def make_walker():
    return Walker()
"""
RETURNS_CYCLE = """
def make_walker():
    walker = {"joints": [[0, 0], [1, 0]], "muscles": [[0, 1, {"type": "distance"}]]}
    walker["muscles"].append(walker)
    return walker
"""
RETURNS_NONE = "def make_walker():\n    return None\n"
RETURNS_DEEP_NESTING = """
def make_walker():
    nested = []
    for _ in range(100_000):
        nested = [nested]
    return {"joints": nested, "muscles": []}
"""
RETURNS_HUGE_INT = """
def make_walker():
    return {"joints": [[10 ** 400, 0], [1, 0]], "muscles": [[0, 1, {"type": "distance"}]]}
"""

# ---- 6-8: CPU and wall clock ----------------------------------------------------------------------------

BUSY_LOOP = attack("while True:\n    pass")
TOP_LEVEL_BUSY_LOOP = "while True:\n    pass\n"
HUGE_POW = attack("n = 10\nvalue = n ** (n ** 8)")
PBKDF2 = libc_attack(
    """
    hashlib = optional_import("hashlib")
    if hashlib is not None:
        hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 10 ** 9)
    else:  # the same C routine, through libcrypto
        for name in ("libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"):
            try:
                crypto = ctypes.CDLL(name)
                break
            except OSError:
                continue
        crypto.EVP_sha256.restype = ctypes.c_void_p
        out = ctypes.create_string_buffer(32)
        digest = ctypes.c_void_p(crypto.EVP_sha256())
        crypto.PKCS5_PBKDF2_HMAC(b"password", 8, b"salt", 4, 10 ** 9, digest, 32, out)
    """
)
REGEX_BACKTRACKING = attack('import re\nre.match(r"(a+)+$", "a" * 64 + "!")')
IGNORE_SIGXCPU = attack(
    """
    import signal
    for number in (signal.SIGXCPU, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    while True:
        pass
    """
)
SLEEP = attack("import time\ntime.sleep(10 ** 6)")
SLEEP_IGNORING_SIGNALS = attack(
    """
    import signal
    import time
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM, signal.SIGXCPU):
        signal.signal(number, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    time.sleep(10 ** 6)
    """
)
STOPS_ITSELF = attack("import os\nimport signal\nos.kill(os.getpid(), signal.SIGSTOP)")

# ---- 9-10: memory ---------------------------------------------------------------------------------------

ALLOCATE_4_GIB = attack("block = bytearray(4 * 1024 ** 3)")
ALLOCATE_4_GIB_OF_POINTERS = attack("block = [0] * (1 << 29)")
ALLOCATE_NUMPY_OR_BYTES = libc_attack(
    """
    numpy = optional_import("numpy")
    block = numpy.ones(1 << 29) if numpy is not None else bytes(1 << 32)
    """
)
GROW_GRADUALLY = attack("blocks = []\nwhile True:\n    blocks.append(bytearray(1 << 20))")
GROW_BY_DOUBLING = attack('text = "x"\nwhile True:\n    text = text + text')

# ---- 11-12: processes and exec --------------------------------------------------------------------------

FORK = attack('import os\nos.fork()\nraise RuntimeError("fork was not stopped")')
# bounded, in case the sandbox is broken: at most 2**6 processes, each sleeping
FORK_BOMB = attack("import os\nimport time\nfor _ in range(6):\n    os.fork()\ntime.sleep(30)")
TOP_LEVEL_FORK = "import os\nos.fork()\n" + SQUARE + "\n\ndef make_walker():\n    return square()\n"
MULTIPROCESSING = libc_attack(
    """
    import time
    multiprocessing = optional_import("multiprocessing")
    if multiprocessing is not None:
        process = multiprocessing.Process(target=time.sleep, args=(30,))
        process.start()
    else:
        os.fork()
    raise RuntimeError("multiprocessing was not stopped")
    """
)
# A real fork through clone3 (flags 0, exit signal SIGCHLD). A filter may kill it, or answer ENOSYS so
# that libc falls back to clone(2), whose flags it can inspect; either way no process may appear.
CLONE3 = attack(
    """
    arguments = (ctypes.c_uint64 * 8)(0, 0, 0, 0, 17, 0, 0, 0)
    result = _libc.syscall(ctypes.c_long(_NUMBERS["clone3"]), arguments, ctypes.c_long(64))
    if result == 0:
        os._exit(0)  # the child of a clone3 the sandbox let through
    if result < 0:
        raise OSError(ctypes.get_errno(), "clone3 refused")
    raise RuntimeError(f"clone3 created process {result}")
    """,
    prelude=SYSCALLS,
)
THREADS = libc_attack(
    """
    import _thread
    import time
    threading = optional_import("threading")
    for _ in range(5000):
        if threading is not None:
            threading.Thread(target=time.sleep, args=(30,)).start()
        else:
            _thread.start_new_thread(time.sleep, (30,))
    """
)
SUBPROCESS = libc_attack(
    """
    subprocess = optional_import("subprocess")
    if subprocess is not None:
        subprocess.run(["/bin/true"], check=False)
    else:
        os.execv("/bin/true", ["true"])
    raise RuntimeError("exec was not stopped")
    """
)
OS_SYSTEM = attack(
    'import os\nstatus = os.system("true")\nraise RuntimeError(f"os.system returned {status}")'
)
POSIX_SPAWN = attack(
    'import os\npid = os.posix_spawn("/bin/true", ["true"], {})\nraise RuntimeError(f"spawned {pid}")'
)
EXECV = attack('import os\nos.execv("/bin/true", ["true"])')

# ---- 13-14: network (no traffic can leave: documentation addresses, seccomp checked before DNS) ------

TCP_CONNECT = libc_attack(
    """
    socket = optional_import("socket")
    if socket is not None:
        socket.create_connection(("203.0.113.1", 80), timeout=0.5)
    else:
        libc_connect(2, sockaddr_in([203, 0, 113, 1], 80))
    raise RuntimeError("connected")
    """
)
TCP6_CONNECT = libc_attack(
    """
    socket = optional_import("socket")
    if socket is not None:
        socket.create_connection(("2001:db8::1", 80), timeout=0.5)
    else:
        libc_connect(10, sockaddr_in6(bytes.fromhex("20010db8000000000000000000000001"), 80))
    raise RuntimeError("connected")
    """
)
UDP_SOCKET = libc_attack(
    """
    socket = optional_import("socket")
    if socket is not None:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    else:
        refused("socket", libc.socket(2, 2, 0))  # AF_INET, SOCK_DGRAM
    raise RuntimeError("UDP socket was not stopped")
    """
)
NETLINK_SOCKET = libc_attack(
    """
    socket = optional_import("socket")
    if socket is not None:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    else:
        refused("socket", libc.socket(16, 3, 0))  # AF_NETLINK, SOCK_RAW
    raise RuntimeError("netlink socket was not stopped")
    """
)
DNS_LOOKUP = libc_attack(
    """
    require_seccomp()
    socket = optional_import("socket")
    if socket is not None:
        socket.getaddrinfo("example.com", 80)
    else:
        found = ctypes.c_void_p()
        refused("getaddrinfo", libc.getaddrinfo(b"example.com", b"80", None, ctypes.byref(found)))
    raise RuntimeError("resolved")
    """
)
GETHOSTBYNAME = libc_attack(
    """
    require_seccomp()
    socket = optional_import("socket")
    if socket is not None:
        socket.gethostbyname("example.org")
    else:
        libc.gethostbyname.restype = ctypes.c_void_p
        refused("gethostbyname", libc.gethostbyname(b"example.org"))
    raise RuntimeError("resolved")
    """
)
UNIX_SOCKETPAIR = libc_attack(
    """
    socket = optional_import("socket")
    if socket is not None:
        left, right = socket.socketpair()  # AF_UNIX: allowed
        left.sendall(b"ping")
        assert right.recv(4) == b"ping"
        left.close()
        right.close()
    else:
        fds = (ctypes.c_int * 2)()
        if libc.socketpair(1, 1, 0, fds) != 0:  # AF_UNIX, SOCK_STREAM
            raise OSError(ctypes.get_errno(), "socketpair")
        os.write(fds[0], b"ping")
        assert os.read(fds[1], 4) == b"ping"
        os.close(fds[0])
        os.close(fds[1])
    """
)

# ---- 15: reading secrets (a broken sandbox reports success with a size, never the content) ------------

READ_SHADOW = attack('with open("/etc/shadow") as f:\n    print(f.read())')
READ_SERVICE_ACCOUNT_TOKEN = attack(
    'with open("/var/run/secrets/kubernetes.io/serviceaccount/token") as f:\n    print(len(f.read()))'
)
READ_PID1_ENVIRON = attack('with open("/proc/1/environ", "rb") as f:\n    print(len(f.read()))')
READ_PARENT_ENVIRON = attack(
    'import os\nwith open(f"/proc/{os.getppid()}/environ", "rb") as f:\n    print(len(f.read()))'
)
READ_PARENT_MEMORY = attack(
    'import os\nwith open(f"/proc/{os.getppid()}/mem", "rb") as f:\n    print(len(f.read(16)))'
)
SHOW_ENVIRONMENT = attack(
    f"""
    import os
    print("environment:", sorted(os.environ))
    print("secret visible:", {SECRET_VALUE!r} in repr(dict(os.environ)) or {SECRET_ENV!r} in os.environ)
    """
)

# ---- 16-18: files ---------------------------------------------------------------------------------------

WRITE_OUTSIDE_SCRATCH = attack(f'with open({WRITE_TARGET!r}, "w") as f:\n    f.write("pwned")')
# "r+b" neither creates nor truncates: even a broken sandbox leaves the library file as it was
OVERWRITE_LIBRARY = attack(
    """
    import sys
    path = sys.modules[walker_creator.__module__].__file__
    with open(path, "r+b") as f:
        print("opened", path, "for writing")
    """
)
WRITE_IN_SCRATCH = attack('with open("scratch.txt", "w") as f:\n    f.write("data")')
OS_OPEN_SHM = attack(f"import os\nfd = os.open({SHM_TARGET!r}, os.O_WRONLY | os.O_CREAT, 0o600)")
HUGE_FILE = attack(
    """
    with open("huge.bin", "wb") as f:
        f.seek(10 ** 10)  # sparse: even a broken sandbox does not fill the disk
        f.write(b"x")
        for _ in range(16):
            f.write(bytes(1 << 20))
    """
)
CHMOD_LIBRARY = attack(
    """
    import os
    import sys
    path = sys.modules[walker_creator.__module__].__file__
    os.chmod(path, os.stat(path).st_mode & 0o7777)  # its own mode: harmless even if allowed
    """
)
TOO_MANY_OPEN_FILES = attack('files = [open("/dev/null", "rb") for _ in range(1_000_000)]')

# ---- 19-20: output --------------------------------------------------------------------------------------

FLOOD_STDOUT = attack('while True:\n    print("x" * 1000)')
FLOOD_STDERR_RAW = attack('import os\nwhile True:\n    os.write(2, b"\\xff\\x00\\x1b[31m" * 1000)')
ONE_HUGE_PRINT = attack('print("y" * 10_000_000)')
STDERR_GARBAGE = attack(
    r"""
    import sys
    sys.stderr.buffer.write(
        b"\xff\xfe\xc3\x28 invalid utf-8 \x00 nul \x1b[31m red \x1b[0m \x1b]0;title\x07 "
        b"\x1b[2J\x1b[H \xc2\x9b c1-csi \x9b bare \x07 bell marker-visible\n"
    )
    sys.stderr.flush()
    sys.stdout.write("\x1b[1mstdout marker-stdout\x1b[0m\x00\n")
    sys.stdout.flush()
    import os
    os.write(1, b"encoded surrogate \xed\xa0\x80 overlong \xc0\xaf truncated \xe2\x82\n")
    """
)

# ---- 21-25: exit, result size, crashes, recursion -------------------------------------------------------

EXIT_BEFORE_RETURN = attack("import os\nos._exit(0)")
TOP_LEVEL_EXIT = "import os\nos._exit(0)\n"
SYS_EXIT = attack("raise SystemExit(0)")
KEYBOARD_INTERRUPT = attack("raise KeyboardInterrupt")
CLOSE_ALL_DESCRIPTORS = attack("import os\nos.closerange(0, 65536)")
KILL_SELF = attack("import os\nimport signal\nos.kill(os.getpid(), signal.SIGKILL)")
# ~2.4 MB of JSON (the name is historical): over the 1 MB result limit, far from the 1 s CPU limit
TEN_MB_WALKER = """
def make_walker():
    joint = [1.5, 2.5]
    return {"joints": [joint] * 200_000, "muscles": [[0, 1, {"type": "distance"}]]}
"""
# ~3 MB of JSON: over the 1 MB result limit, and far from the 1 s CPU limit even on a loaded machine
MILLIONS_OF_JOINTS = """
def make_walker():
    return {"joints": [[0, 0]] * 400_000, "muscles": [[0, 1, {"type": "distance"}]]}
"""
TEN_MB_STRING = """
def make_walker():
    return {"joints": "x" * 10_000_000, "muscles": []}
"""
# ~5 kB: far under the result limit, but beyond the walker limits
TOO_MANY_JOINTS = """
def make_walker():
    wc = walker_creator()
    joints = [wc.add_joint(float(k % 20), float(k // 20)) for k in range(400)]
    for a, b in zip(joints, joints[1:]):
        wc.add_muscle(a, b, False, 0.0, 0.0)
    return wc.get_walker()
"""
CREATOR_RUNAWAY = """
def make_walker():
    wc = walker_creator()
    for k in range(1_000_000):
        wc.add_joint(float(k), 0.0)
    return wc
"""
SEGFAULT = attack('import ctypes\nctypes.string_at(0)\nraise RuntimeError("no segfault")')
ABORT = attack("import os\nos.abort()")
C_STACK_OVERFLOW = attack(
    """
    import sys
    sys.setrecursionlimit(10 ** 8)

    def down(x):
        return list(map(down, [x]))  # recursion through C: each level takes C stack

    down(0)
    """
)
UNBOUNDED_RECURSION = attack("def down(n):\n    return down(n + 1)\n\ndown(0)")

# ---- 26: privileges and kernel interfaces ---------------------------------------------------------------

SETUID_ROOT = attack('import os\nos.setuid(0)\nraise RuntimeError(f"setuid(0) succeeded: uid {os.getuid()}")')
SETRESUID_ROOT = attack('import os\nos.setresuid(0, 0, 0)\nraise RuntimeError("setresuid succeeded")')
KILL_PARENT = attack("import os\nimport signal\nos.kill(os.getppid(), signal.SIGKILL)")
# signal 0 only probes, so these harm nothing even where the sandbox would let them through
SIGNAL_PID_1 = attack('import os\nos.kill(1, 0)\nraise RuntimeError("signalling pid 1 was not stopped")')
SIGNAL_EVERY_PROCESS = attack('import os\nos.kill(-1, 0)\nraise RuntimeError("kill(-1) was not stopped")')
PIDFD_OF_PARENT = attack(
    'import os\nos.pidfd_open(os.getppid())\nraise RuntimeError("pidfd_open was not stopped")'
)
UNSHARE = raw_syscall("unshare", str(0x10000000 | 0x40000000))  # CLONE_NEWUSER | CLONE_NEWNET
SETNS = raw_syscall("setns", "-1", "0")
PTRACE = raw_syscall("ptrace", "0", "0", "0", "0")  # PTRACE_TRACEME
MOUNT = raw_syscall("mount", "0", "0", "0", "0", "0")
BPF = raw_syscall("bpf", "0", "0", "0")
KEYCTL = raw_syscall("keyctl", "0", "-3", "0")  # KEYCTL_GET_KEYRING_ID, session keyring
IO_URING = raw_syscall("io_uring_setup", "1", "0")
USERFAULTFD = raw_syscall("userfaultfd", "0")
PERF_EVENT_OPEN = raw_syscall("perf_event_open", "0", "0", "-1", "-1", "0")
PROCESS_VM_READV = raw_syscall("process_vm_readv", "os.getppid()", "0", "0", "0", "0", "0")
PROCESS_VM_WRITEV = raw_syscall("process_vm_writev", "os.getppid()", "0", "0", "0", "0", "0")

# ---- 27: numbers that would abort pymunk ----------------------------------------------------------------

NAN_JOINT_FROM_CREATOR = """
def make_walker():
    wc = walker_creator()
    a, b = wc.add_joint(float("nan"), 0), wc.add_joint(1, 0)
    wc.add_muscle(a, b, False, 0, 0)
    return wc.get_walker()
"""
INF_AMPLITUDE = """
def make_walker():
    wc = walker_creator()
    a, b = wc.add_joint(0, 0), wc.add_joint(1, 0)
    wc.add_muscle(a, b, True, float("-inf"), 0.0)
    return wc.get_walker()
"""
NAN_PHASE = """
def make_walker():
    return {"joints": [[0, 0], [1, 0]],
            "muscles": [[0, 1, {"type": "muscle", "amplitude": 1.0, "phase": float("nan")}]]}
"""
NEGATIVE_INDEX = """
def make_walker():
    return {"joints": [[0, 0], [1, 0]], "muscles": [[0, -1, {"type": "distance"}]]}
"""
HUGE_NEGATIVE_COORDINATE = """
def make_walker():
    return {"joints": [[-1e300, 0], [1, 0]], "muscles": [[0, 1, {"type": "distance"}]]}
"""

# ---- 28: compiler stress (source-level requests are built in the tests) -------------------------------

DEEP_EXPRESSION = "def make_walker():\n    return " + "1+" * 25_000 + "1\n"

# ---- cross-program state and forged results -------------------------------------------------------------

# Changes everything a later program could notice; its own make_walker then fails (add_joint is patched).
POLLUTER = attack(
    """
    import builtins
    import json
    import os
    import sys
    creator_module = sys.modules[walker_creator.__module__]

    def broken(*args, **kwargs):
        raise RuntimeError("patched by an earlier program")

    walker_creator.add_joint = broken
    walker_creator.ELM_MARKER = "leaked"
    creator_module._RUNAWAY_LIMIT = 0
    creator_module.ELM_MARKER = "leaked"
    math.pi = 3.0
    math.sqrt = broken
    math.ELM_MARKER = "leaked"
    builtins.ELM_MARKER = "leaked"
    builtins.abs = broken
    json.ELM_MARKER = "leaked"
    json.dumps = broken
    os.environ["ELM_MARKER"] = "leaked"
    sys.modules["elm_marker"] = math
    sys.path.insert(0, "/tmp/elm-marker")
    os.chdir("/")
    """
)
# Raises AssertionError (-> PROGRAM_ERROR) naming whatever an earlier program changed.
CHECKER = attack(
    """
    import builtins
    import json
    import os
    import sys
    creator_module = sys.modules[walker_creator.__module__]
    leaks = []
    if math.pi != 3.141592653589793 or math.sqrt(4.0) != 2.0 or hasattr(math, "ELM_MARKER"):
        leaks.append("math")
    if hasattr(walker_creator, "ELM_MARKER") or hasattr(creator_module, "ELM_MARKER"):
        leaks.append("walker_creator")
    if creator_module._RUNAWAY_LIMIT < 1000:
        leaks.append("creator limit")
    if hasattr(builtins, "ELM_MARKER") or abs(-1) != 1:
        leaks.append("builtins")
    if hasattr(json, "ELM_MARKER") or json.dumps([1]) != "[1]":
        leaks.append("json")
    if "ELM_MARKER" in os.environ:
        leaks.append("environment")
    if "elm_marker" in sys.modules or "/tmp/elm-marker" in sys.path:
        leaks.append("sys")
    if os.getcwd() == "/":
        leaks.append("working directory")
    if leaks:
        raise AssertionError("state leaked from an earlier program: " + ", ".join(leaks))
    """
)

_FORGE_PRELUDE = f"""
import json
import os
import struct

FORGED = {FORGED_WALKER!r}


def frames():
    for status in ("OK", "ok"):
        for key in ("walker", "result", "data", "value"):
            body = json.dumps({{"status": status, "outcome": status, key: FORGED, "message": ""}}).encode()
            yield body
            yield body + b"\\n"
            for fmt in (">I", "<I", ">Q", "<Q"):
                yield struct.pack(fmt, len(body)) + body


def forge(descriptors):
    for fd in descriptors:
        try:
            os.set_blocking(fd, False)
        except OSError:
            pass
        for frame in frames():
            try:
                os.write(fd, frame)
            except OSError:
                pass
"""
FORGE_STDOUT_THEN_RAISE = attack(
    'print(json.dumps({"status": "OK", "walker": FORGED}))\nraise RuntimeError("the real outcome")',
    prelude=_FORGE_PRELUDE,
)
FORGE_STDOUT_THEN_RETURN = attack(
    'print(json.dumps({"status": "OK", "walker": FORGED}))', prelude=_FORGE_PRELUDE
)
FORGE_DESCRIPTORS_THEN_RAISE = attack(
    'forge(range(1, 21))\nraise RuntimeError("the real outcome")', prelude=_FORGE_PRELUDE
)
FORGE_DESCRIPTORS_THEN_EXIT = attack("forge(range(1, 21))\nos._exit(0)", prelude=_FORGE_PRELUDE)
FORGE_DESCRIPTORS_THEN_RETURN = attack("forge(range(1, 21))", prelude=_FORGE_PRELUDE)
# Claims to be the sandbox's own status record instead of a walker.
FORGE_RETURN_STATUS_RECORD = """
def make_walker():
    return {"status": "SANDBOX_ERROR", "outcome": "SANDBOX_ERROR", "message": "forged infrastructure fault"}
"""
# Patches the serialisers a runner in the same process might use, so that a PROGRAM_ERROR it reports
# would read as SANDBOX_ERROR (an infrastructure fault is retried or alerted: a program must not cause one).
FORGE_PATCH_SERIALISERS = attack(
    """
    import json
    import marshal
    try:
        import pickle
    except ImportError:
        pickle = None

    def relabel(value):
        if isinstance(value, str) and value.upper() in ("PROGRAM_ERROR", "OK"):
            return "SANDBOX_ERROR"
        if isinstance(value, dict):
            return {relabel(k): relabel(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(relabel(v) for v in value)
        return value

    def wrap(original):
        def patched(obj, *args, **kwargs):
            return original(relabel(obj), *args, **kwargs)
        return patched

    json.dumps = wrap(json.dumps)
    json.dump = wrap(json.dump)
    encode = json.JSONEncoder.encode
    json.JSONEncoder.encode = lambda self, o: encode(self, relabel(o))
    if pickle is not None:
        pickle.dumps = wrap(pickle.dumps)
    marshal.dumps = wrap(marshal.dumps)
    raise RuntimeError("the real outcome")
    """
)

# Reports the layers the child runs under, on stdout, as one JSON line.
LAYERS = attack(
    """
    import json
    import os
    import resource
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    with open("/proc/self/oom_score_adj") as f:
        oom_score_adj = f.read().strip()
    names = ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CORE", "RLIMIT_NPROC")
    info = {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "egid": os.getegid(),
        "groups": os.getgroups(),
        "no_new_privs": fields.get("NoNewPrivs", "").strip(),
        "seccomp": fields.get("Seccomp", "").strip(),
        "cap_eff": fields.get("CapEff", "").strip(),
        "rlimits": {name: resource.getrlimit(getattr(resource, name)) for name in names},
        "pid": os.getpid(), "pgrp": os.getpgrp(), "sid": os.getsid(0),
        "cwd": os.getcwd(),
        "environment": sorted(os.environ),
        "descriptors": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
        "oom_score_adj": oom_score_adj,
    }
    print("LAYERS " + json.dumps(info))
    """
)
