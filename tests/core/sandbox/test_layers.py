"""Each isolation layer, observed from inside the program's process, and required layers enforced."""

from __future__ import annotations

import json
import os

import pytest

from elm_core.errors import StateError
from elm_core.sandbox import Layer, Sandbox, SandboxConfig
from elm_core.sandbox import _sandbox as sandbox_module

AS_ROOT = os.geteuid() == 0

INSPECT = """
import json, os, resource
def make_walker():
    facts = {
        "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "env": dict(os.environ),
        "cwd": os.getcwd(), "cwd_entries": os.listdir("."),
        "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
        "sid_is_self": os.getsid(0) == os.getpid(), "pgid_is_self": os.getpgid(0) == os.getpid(),
        "cpu": resource.getrlimit(resource.RLIMIT_CPU),
        "as": resource.getrlimit(resource.RLIMIT_AS),
        "core": resource.getrlimit(resource.RLIMIT_CORE),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "fsize": resource.getrlimit(resource.RLIMIT_FSIZE),
        "oom": open("/proc/self/oom_score_adj").read().strip(),
        "no_new_privs": [l for l in open("/proc/self/status") if l.startswith("NoNewPrivs")][0].split()[1],
        "seccomp": [l for l in open("/proc/self/status") if l.startswith("Seccomp:")][0].split()[1],
        "interfaces": sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]),
    }
    print(json.dumps(facts))
    return {"joints": [[0, 0], [1, 0]], "muscles": [[0, 1, {"type": "distance"}]]}
"""


@pytest.fixture(scope="module")
def facts():
    config = SandboxConfig(cpu_time_s=3, memory_mb=384, open_files=40)
    with Sandbox(config) as sandbox:
        result = sandbox.run(INSPECT)
    assert result.ok, (result.status, result.message, result.output)
    return json.loads(result.output), config


def test_the_program_runs_in_its_own_session_with_an_empty_environment(facts):
    seen, _ = facts
    assert seen["env"] == {}
    assert seen["sid_is_self"] and seen["pgid_is_self"]


def test_only_stdin_output_and_the_result_pipe_are_open(facts):
    seen, _ = facts
    assert set(seen["fds"]) - {0, 1, 2, 3} <= {4}  # 4: the descriptor listdir itself opened on /proc/self/fd


def test_rlimits_oom_score_and_no_new_privs_are_set(facts):
    seen, config = facts
    assert seen["cpu"] == [config.cpu_time_s, config.cpu_time_s + 1]
    assert seen["as"] == [config.memory_mb << 20] * 2
    assert seen["core"] == [0, 0] and seen["fsize"] == [0, 0]
    assert seen["nofile"] == [config.open_files] * 2
    assert seen["oom"] == "1000"
    assert seen["no_new_privs"] == "1"
    assert seen["seccomp"] == "2"  # filter mode


def test_a_private_empty_scratch_directory(facts):
    seen, _ = facts
    assert seen["cwd"].startswith("/tmp/elm-sandbox-")
    assert seen["cwd_entries"] == []


@pytest.mark.skipif(not AS_ROOT, reason="dedicated_uid and network_namespace need root on a bare host")
def test_a_dedicated_uid_and_an_empty_network_namespace(facts):
    seen, config = facts
    assert (seen["uid"], seen["gid"], seen["groups"]) == (config.sandbox_uid, config.sandbox_gid, [])
    assert seen["interfaces"] == ["lo"]


@pytest.mark.skipif(not AS_ROOT, reason="as root on a bare host every layer is available")
def test_every_layer_is_active_on_a_bare_host_as_root():
    with Sandbox() as sandbox:
        inactive = {layer: detail for layer, (active, detail) in sandbox.layers.items() if not active}
    assert inactive == {}


def test_a_required_layer_the_host_lacks_is_a_startup_error(monkeypatch):
    # A host without libseccomp cannot exist here, so its symptom is simulated: no compiled filter.
    monkeypatch.setattr(sandbox_module, "_compiled_filter_hex", lambda: "")
    with Sandbox() as degraded:
        assert degraded.layers[Layer.SECCOMP][0] is False
        assert degraded.run("import os\ndef make_walker():\n    os.system('true')\n").status.value != "OK"
    with pytest.raises(StateError, match="seccomp"):
        Sandbox(SandboxConfig(required_layers=frozenset({Layer.SECCOMP})))


def test_each_zygote_has_its_own_scratch_root_and_a_killed_ones_is_removed():
    with Sandbox() as first, Sandbox() as second:
        roots = [s.layers[Layer.SCRATCH_DIRECTORY][1] for s in (first, second)]
        assert roots[0] != roots[1] and all(os.path.isdir(r) for r in roots)
        os.kill(first.zygote_pid, 9)  # no chance to clean up after itself
        first._process.wait()
    assert not any(os.path.exists(r) for r in roots)
