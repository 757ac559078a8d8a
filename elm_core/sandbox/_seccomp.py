"""The seccomp filter applied to every program, compiled once to raw BPF with libseccomp (pyseccomp).

The zygote installs the compiled program in each child with one prctl, so the zygote itself never
loads libseccomp (it would make every fork slower). Denied calls kill the process (SIGSYS), which the
supervisor reports as FORBIDDEN_OPERATION. A walker program needs none of these calls.
"""

from __future__ import annotations

import errno
import os
import struct
import tempfile

from elm_core.errors import StateError

# Killed on sight: running other programs, making processes, debugging, namespaces, kernel interfaces.
KILLED_SYSCALLS = (
    "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "bpf", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd", "perf_event_open",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "personality", "creat", "truncate", "rename", "renameat", "renameat2",
    "unlink", "unlinkat", "rmdir", "mkdir", "mkdirat", "link", "linkat", "symlink", "symlinkat",
    "chmod", "fchmodat", "chown", "fchownat", "lchown", "mknod", "mknodat", "setsid", "setpgid",
    "tkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "pidfd_send_signal", "pidfd_getfd",
)  # fmt: skip

# Signals go to the program itself only, so that it cannot stop the zygote or the service even where it
# runs under their uid (in a non-root container). libseccomp cannot compare with the caller's pid: the
# filter is compiled once with this stand-in, and each child writes its own pid over it (self_pid_offsets).
SELF_PID_STAND_IN = 0x7E5E1F00

_AF_UNIX = 1
_CLONE_THREAD = 0x00010000


def compile_filter() -> bytes:
    """The filter as raw BPF instructions for this machine's architecture."""
    try:
        import pyseccomp as seccomp
    except ImportError as e:  # libseccomp missing: the layer is unavailable
        raise StateError(f"seccomp unavailable: {e}") from e
    policy = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in KILLED_SYSCALLS:
        policy.add_rule(seccomp.KILL_PROCESS, name)
    policy.add_rule(seccomp.KILL_PROCESS, "socket", seccomp.Arg(0, seccomp.NE, _AF_UNIX))
    for name in ("kill", "tgkill"):
        policy.add_rule(seccomp.KILL_PROCESS, name, seccomp.Arg(0, seccomp.NE, SELF_PID_STAND_IN))
    # clone is allowed only for threads; clone3 cannot be inspected, so it fails and libc falls back to clone
    policy.add_rule(seccomp.KILL_PROCESS, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, _CLONE_THREAD, 0))
    policy.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    # files may be opened for reading only
    for flag in (os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC, os.O_APPEND):
        policy.add_rule(seccomp.KILL_PROCESS, "open", seccomp.Arg(1, seccomp.MASKED_EQ, flag, flag))
        policy.add_rule(seccomp.KILL_PROCESS, "openat", seccomp.Arg(2, seccomp.MASKED_EQ, flag, flag))
    policy.add_rule(seccomp.ERRNO(errno.ENOSYS), "openat2")
    with tempfile.TemporaryFile() as sink:
        policy.export_bpf(sink)
        sink.seek(0)
        return sink.read()


def self_pid_offsets(bpf: bytes) -> list[int]:
    """Byte offsets of the instructions' constants (`k`) that hold SELF_PID_STAND_IN."""
    offsets = [
        at + 4
        for at in range(0, len(bpf), 8)
        if struct.unpack_from("=I", bpf, at + 4)[0] == SELF_PID_STAND_IN
    ]
    if not offsets:
        raise StateError("the compiled seccomp filter has no pid to fill in")
    return offsets
