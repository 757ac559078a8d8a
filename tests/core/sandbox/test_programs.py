"""Walker programs through the sandbox: the API programs see, and every outcome a typed result."""

from __future__ import annotations

import math
import os
import time

import pytest

from elm_core.errors import InvalidRequestError, NotFoundError
from elm_core.sandbox import Outcome, Sandbox, SandboxConfig
from elm_core.sodarace import SEED_NAMES, Walker, WalkerLimits, seed_source

TIMEOUT_S = 5.0  # generous for programs that finish; the hang test uses its own short deadline

GOOD = """
def make_walker():
    wc = walker_creator()
    a = wc.add_joint(0, 0)
    b = wc.add_joint(4, 0)
    c = wc.add_joint(2, 3)
    wc.add_muscle(a, b, False, 0, 0)
    wc.add_muscle(b, c, False, 0, 0)
    wc.add_muscle(c, a, True, 2.0, 0.5)
    return wc.get_walker()
"""


_SANDBOXES: dict[tuple[float, WalkerLimits | None], Sandbox] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_sandboxes():
    yield
    while _SANDBOXES:
        _SANDBOXES.popitem()[1].close()


def run_program(source: str, timeout_s: float = TIMEOUT_S, limits: WalkerLimits | None = None):
    """One warm sandbox per (deadline, limits) pair, shared by the tests of this module."""
    if (timeout_s, limits) not in _SANDBOXES:
        config = SandboxConfig(wall_time_s=timeout_s, walker_limits=limits or WalkerLimits())
        _SANDBOXES[timeout_s, limits] = Sandbox(config)
    return _SANDBOXES[timeout_s, limits].run(source)


def run(source: str, **kwargs: object):
    kwargs.setdefault("timeout_s", TIMEOUT_S)
    return run_program(source, **kwargs)


def assert_good_walker(result, limits: WalkerLimits | None = None) -> Walker:
    assert result.status is Outcome.OK, result.message
    assert result.ok
    assert isinstance(result.walker, Walker)
    # what came back is a validated walker
    assert Walker.from_dict(result.walker.to_dict(), limits) == result.walker
    return result.walker


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# ---- seeds ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "n_joints"), [("square", 5), ("radial", 9), ("cppn_fixed", 24), ("cppn_mutable", 24)]
)
def test_every_seed_runs_and_validates(name: str, n_joints: int) -> None:
    assert name in SEED_NAMES
    walker = assert_good_walker(run(seed_source(name)))
    assert len(walker.joints) == n_joints
    assert any(m.amplitude != 0 for m in walker.muscles), "a seed should have active muscles"


def test_all_seeds_are_covered_and_names_resolve() -> None:
    assert set(SEED_NAMES) == {"square", "radial", "cppn_fixed", "cppn_mutable"}
    assert seed_source("cppn-fixed") == seed_source("cppn_fixed")
    with pytest.raises(NotFoundError):
        seed_source("triangle")


def test_the_two_cppn_seeds_build_the_same_walker() -> None:
    # CPPN-Mutable starts as the program text of CPPN-Fixed's hidden pattern function
    fixed = assert_good_walker(run(seed_source("cppn_fixed")))
    mutable = assert_good_walker(run(seed_source("cppn_mutable")))
    assert fixed == mutable


# ---- outcomes -----------------------------------------------------------------------------------


def test_good_program_is_ok() -> None:
    walker = assert_good_walker(run(GOOD))
    assert walker.joints == ((0.0, 0.0), (4.0, 0.0), (2.0, 3.0))


@pytest.mark.parametrize(
    "source",
    ["def make_walker(:\n    pass\n", "def make_walker():\nreturn 1\n"],
    ids=["syntax", "indentation"],
)
def test_syntax_error(source: str) -> None:
    result = run(source)
    assert result.status is Outcome.SYNTAX_ERROR
    assert not result.ok
    assert result.walker is None
    assert result.message


def test_text_with_nul_bytes_is_refused_before_it_runs() -> None:
    with pytest.raises(InvalidRequestError, match="NUL"):
        run("make_walker = lambda: \x00")


@pytest.mark.parametrize(
    "source",
    ["", "def build_walker():\n    return {}\n", "make_walker = 3\n", "def make_walker_v2():\n    pass\n"],
    ids=["empty", "other-name", "not-callable", "prefix-only"],
)
def test_no_entry_point(source: str) -> None:
    result = run(source)
    assert result.status is Outcome.NO_ENTRY_POINT
    assert "make_walker" in result.message


@pytest.mark.parametrize(
    ("source", "type_name", "text"),
    [
        (
            "def make_walker():\n    raise ValueError('legs must be even')\n",
            "ValueError",
            "legs must be even",
        ),
        ("x = 1 / 0\ndef make_walker():\n    pass\n", "ZeroDivisionError", "division by zero"),
        ("def make_walker():\n    return undefined_name\n", "NameError", "undefined_name"),
        ("def make_walker():\n    walker_creator().add_muscle(0, 1)\n", "ValueError", "j0"),
        ("def make_walker(size):\n    pass\n", "TypeError", "size"),
        (
            "import no_such_module_here\ndef make_walker():\n    pass\n",
            "ModuleNotFoundError",
            "no_such_module",
        ),
        ("def make_walker():\n    raise SystemExit(0)\n", "SystemExit", "0"),
        ("def make_walker():\n    return make_walker()\n", "RecursionError", "recursion"),
    ],
    ids=["raise", "module-level", "name", "creator", "signature", "import", "exit", "recursion"],
)
def test_program_error_names_exception_type_and_message(source: str, type_name: str, text: str) -> None:
    result = run(source)
    assert result.status is Outcome.PROGRAM_ERROR
    assert type_name in result.message
    assert text in result.message
    assert result.walker is None


@pytest.mark.parametrize(
    "returned",
    ["object()", "{'joints': {1, 2}, 'muscles': []}", "(lambda a: (a.append(a), a)[1])([])", "{(0, 0): 1}"],
    ids=["object", "set", "circular", "tuple-key"],
)
def test_non_json_result_is_a_program_error(returned: str) -> None:
    result = run(f"def make_walker():\n    return {returned}\n")
    assert result.status is Outcome.PROGRAM_ERROR
    assert result.message


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ("return {'joints': [[0, 0], [1, 0]], 'muscles': [[1, 1, {'type': 'distance'}]]}", "self_connection"),
        ("return None", "malformed"),
        ("return {'joints': [[0, 0], [1, 0]], 'muscles': []}", "no_muscles"),
        ("wc = walker_creator()\n    wc.add_joint(0, 0)\n    return wc", "too_few_joints"),
        (
            "return {'joints': [[float('nan'), 0], [1, 0]], 'muscles': [[0, 1, {'type': 'distance'}]]}",
            "non_finite",
        ),
    ],
    ids=["self-connection", "none", "no-muscles", "one-joint", "nan"],
)
def test_invalid_walker_names_the_rule(body: str, rule: str) -> None:
    result = run(f"def make_walker():\n    {body}\n")
    assert result.status is Outcome.INVALID_WALKER
    assert rule in result.message
    assert result.walker is None


def test_huge_numbers_are_an_invalid_walker_not_an_exception() -> None:
    # JSON carries integers of any size; run_program must still return a typed result
    source = (
        "def make_walker():\n"
        "    return {'joints': [[10**400, 0], [1, 0]], 'muscles': [[0, 1, {'type': 'distance'}]]}\n"
    )
    result = run(source)
    assert result.status is Outcome.INVALID_WALKER


def test_limits_are_applied_to_the_result() -> None:
    square = seed_source("square")  # has a muscle of amplitude 10
    assert_good_walker(run(square))
    strict = run(square, limits=WalkerLimits(max_amplitude=5.0))
    assert strict.status is Outcome.INVALID_WALKER
    assert "amplitude_too_large" in strict.message
    strong = (
        "def make_walker():\n"
        "    wc = walker_creator()\n"
        "    wc.add_muscle(wc.add_joint(0, 0), wc.add_joint(1, 0), True, 50.0, 0.0)\n"
        "    return wc\n"
    )
    assert run(strong).status is Outcome.INVALID_WALKER
    looser = WalkerLimits(max_amplitude=60.0)
    assert assert_good_walker(run(strong, limits=looser), looser).muscles[0].amplitude == 50.0


def test_wall_timeout_kills_the_program() -> None:
    source = (
        "import signal\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "import time\n"
        "def make_walker():\n"
        "    time.sleep(60)\n"
    )
    started = time.monotonic()
    result = run_program(source, timeout_s=1)
    elapsed = time.monotonic() - started
    assert result.status is Outcome.WALL_TIMEOUT
    assert result.walker is None
    assert result.message
    assert 1.0 <= elapsed < 4.0
    assert result.pid != os.getpid()
    assert_gone(result.pid)
    # and the next program runs normally
    assert_good_walker(run(GOOD))


@pytest.mark.parametrize(
    ("source", "status", "text"),
    [
        ("import os\ndef make_walker():\n    os._exit(3)\n", Outcome.NO_RESULT, "exit code 3"),
        (
            "import os, signal\ndef make_walker():\n    os.kill(os.getpid(), signal.SIGKILL)\n",
            Outcome.CRASH,
            "SIGKILL",
        ),
        ("import os\nos._exit(0)\n", Outcome.NO_RESULT, "exit code 0"),
    ],
    ids=["exit-3", "sigkill", "exit-0-at-import"],
)
def test_dying_without_a_result(source: str, status: Outcome, text: str) -> None:
    result = run(source)
    assert result.status is status
    assert text in result.message
    assert result.walker is None
    assert_gone(result.pid)


def test_make_walker_may_return_the_creator() -> None:
    source = GOOD.replace("return wc.get_walker()", "return wc")
    assert assert_good_walker(run(source)) == assert_good_walker(run(GOOD))


def test_make_walker_may_return_plain_data() -> None:
    source = (
        "def make_walker():\n"
        "    active = {'type': 'muscle', 'amplitude': 1, 'phase': 0}\n"
        "    return {'joints': [(0, 0), (2, 0)], 'muscles': [(0, 1, active)]}\n"
    )
    walker = assert_good_walker(run(source))
    assert walker.joints == ((0.0, 0.0), (2.0, 0.0))


@pytest.mark.parametrize(
    ("import_line", "creator"),
    [
        ("from walk_creator import walker_creator", "walker_creator"),
        ("import walk_creator", "walk_creator.walker_creator"),
        ("from openelm.environments.sodaracer.walker.walk_creator import walker_creator", "walker_creator"),
        ("from walker import walker_creator", "walker_creator"),
        ("from walk_creator import walker_creator as WC", "WC"),
        ("from walk_creator import *", "walker_creator"),
        ("import openelm.environments.sodaracer.walker.walk_creator as wcm", "wcm.walker_creator"),
        (
            "import openelm.environments.sodaracer.walker.walk_creator",
            "openelm.environments.sodaracer.walker.walk_creator.walker_creator",
        ),
    ],
)
def test_supported_import_lines(import_line: str, creator: str) -> None:
    source = GOOD.replace("wc = walker_creator()", f"wc = {creator}()")
    for placement in ("top", "inside"):
        if placement == "top":
            program = f"{import_line}\n{source}"
        else:  # an import inside make_walker resolves the same way
            program = source.replace("def make_walker():\n", f"def make_walker():\n    {import_line}\n")
            if "*" in import_line:
                continue  # `import *` is only legal at module level
        walker = assert_good_walker(run(program))
        assert len(walker.joints) == 3


def test_ordinary_imports_still_work() -> None:
    source = (
        "import random\nfrom itertools import combinations\n"
        "def make_walker():\n"
        "    random.seed(1)\n"
        "    wc = walker_creator()\n"
        "    joints = [wc.add_joint(3 * k, random.uniform(0, 1)) for k in range(4)]\n"
        "    for a, b in combinations(joints, 2):\n"
        "        wc.add_muscle(a, b)\n"
        "    return wc\n"
    )
    walker = assert_good_walker(run(source))
    assert len(walker.muscles) == 6


def test_math_and_query_cppn_need_no_import() -> None:
    source = (
        "def make_walker():\n"
        "    wc = walker_creator()\n"
        "    query_cppn(wc, 3, 2, 1.5)\n"
        "    top = wc.add_joint(0, 2 * math.pi)\n"
        "    wc.add_muscle(top, 3, amplitude=math.sqrt(2), phase=math.pi)\n"
        "    return wc\n"
    )
    walker = assert_good_walker(run(source))
    assert len(walker.joints) == 7
    assert walker.joints[-1] == pytest.approx((0.0, 2 * math.pi))
    assert walker.muscles[-1].amplitude == pytest.approx(math.sqrt(2))


def test_programs_cannot_change_the_parent() -> None:
    source = "math.pi = 3\nimport os\nos.environ['ELM_TEST_LEAK'] = '1'\n" + GOOD
    assert_good_walker(run(source))
    assert math.pi == pytest.approx(3.14159265)
    assert "ELM_TEST_LEAK" not in os.environ


def test_a_failing_program_does_not_affect_the_next() -> None:
    failures = [
        ("import os\nos._exit(1)\n", Outcome.NO_RESULT),
        ("def make_walker():\n    raise RuntimeError('no')\n", Outcome.PROGRAM_ERROR),
        ("def make_walker(:\n", Outcome.SYNTAX_ERROR),
        ("def make_walker():\n    return {'joints': [], 'muscles': []}\n", Outcome.INVALID_WALKER),
    ]
    for source, status in failures:
        assert run(source).status is status
        assert_good_walker(run(GOOD))
