"""Soak: thousands of short programs through a SandboxPool; processes, descriptors and memory stay flat.

Also back-pressure (a full queue refuses work) and closing a pool with work in flight.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from elm_core.errors import BackpressureError
from elm_core.sandbox import ExecutionResult, Outcome, SandboxConfig, SandboxPool
from elm_core.sodarace import Walker, seed_source

from . import programs as P

CONFIG = SandboxConfig(wall_time_s=2.0, cpu_time_s=1, memory_mb=256, output_limit_bytes=64 * 1024)
SOAK_PROGRAMS = 4000  # about 13 s on 2 cores
QUARTERS = 4
MAX_RSS_GROWTH_KB = 20 * 1024

SQUARE = seed_source("square")
BIG_RESULT = 'def make_walker():\n    return {"joints": "x" * 2_000_000, "muscles": []}\n'
ONE_BIG_PRINT = P.attack('print("y" * 200_000)')

# (program, expected outcome): half good, the rest each kind of quick failure
MIX: list[tuple[str, Outcome]] = [
    (SQUARE, Outcome.OK),
    (P.WELL_FORMED_CREATOR_RETURNED, Outcome.OK),
    (SQUARE, Outcome.OK),
    (P.UNIX_SOCKETPAIR, Outcome.OK),
    (SQUARE, Outcome.OK),
    (P.STDERR_GARBAGE, Outcome.OK),
    (SQUARE, Outcome.OK),
    (P.SHOW_ENVIRONMENT, Outcome.OK),
    (SQUARE, Outcome.OK),
    (SQUARE, Outcome.OK),
    (SQUARE, Outcome.OK),
    (SQUARE, Outcome.OK),
    (P.SYNTAX_ERROR, Outcome.SYNTAX_ERROR),
    (P.RAISES, Outcome.PROGRAM_ERROR),
    (P.NO_ENTRY_POINT, Outcome.NO_ENTRY_POINT),
    (P.RETURNS_NAN, Outcome.INVALID_WALKER),
    (P.FORK, Outcome.FORBIDDEN_OPERATION),
    (P.TCP_CONNECT, Outcome.FORBIDDEN_OPERATION),
    (P.WRITE_IN_SCRATCH, Outcome.FORBIDDEN_OPERATION),
    (P.ABORT, Outcome.CRASH),
    (P.SEGFAULT, Outcome.CRASH),
    (P.EXIT_BEFORE_RETURN, Outcome.NO_RESULT),
    (P.ALLOCATE_4_GIB, Outcome.MEMORY_LIMIT),
    (ONE_BIG_PRINT, Outcome.OUTPUT_LIMIT),
    (BIG_RESULT, Outcome.RESULT_TOO_LARGE),
    (P.READ_SHADOW, Outcome.PROGRAM_ERROR),
]


# ---- process inspection -------------------------------------------------------------------------------


def process_table() -> dict[int, int]:
    """pid -> ppid for every process now alive (zombies included)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        table[int(entry.name)] = int(stat[stat.rfind(")") + 2 :].split()[1])
    return table


def descendants(root: int | None = None) -> set[int]:
    table = process_table()
    found, frontier = set(), [os.getpid() if root is None else root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in table.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return found


def children_of(pid: int) -> list[int]:
    return [child for child, ppid in process_table().items() if ppid == pid]


def status_field(pid: int | str, name: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {name} in /proc/{pid}/status")


def zygotes_of(pool: SandboxPool) -> list[int]:
    pids = getattr(pool, "zygote_pids", None)
    if callable(pids):
        pids = pids()
    return list(pids) if pids else sorted(descendants())


def wait_until_gone(pids: set[int], timeout_s: float = 3.0) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = pids & set(process_table())
        if not alive:
            return set()
        time.sleep(0.05)
    return pids & set(process_table())


# ---- the soak -----------------------------------------------------------------------------------------


def check_result(result: ExecutionResult, expected: Outcome, index: int) -> None:
    assert result.status is expected, (
        f"program {index}: expected {expected}, got {result.status}: {result.message}"
    )
    assert (result.walker is not None) == (expected is Outcome.OK)
    if result.walker is not None:
        assert isinstance(result.walker, Walker)
    assert len(result.message) < 300 and "Traceback" not in result.message


def test_soak_processes_and_memory_stay_flat() -> None:
    before = descendants()
    per_quarter = SOAK_PROGRAMS // QUARTERS
    samples: list[dict[str, object]] = []
    statuses: Counter[str] = Counter()
    started = time.monotonic()
    with SandboxPool(CONFIG, workers=2, queue_size=8) as pool:
        zygotes = zygotes_of(pool)
        assert len(zygotes) >= 2, f"expected a zygote per worker, found {zygotes}"
        for quarter in range(QUARTERS):
            batch = [MIX[(quarter * per_quarter + k) % len(MIX)] for k in range(per_quarter)]
            results = pool.map([source for source, _ in batch])
            assert len(results) == len(batch)
            for k, (result, (_source, expected)) in enumerate(zip(results, batch, strict=True)):
                check_result(result, expected, quarter * per_quarter + k)
                statuses[result.status.value] += 1
            del results  # keep nothing: the test process's RSS must measure the pool, not this test
            now = zygotes_of(pool)
            samples.append(
                {
                    "zygotes": now,
                    "zygote_rss_kb": {pid: status_field(pid, "VmRSS") for pid in now},
                    "zygote_children": {pid: children_of(pid) for pid in now},
                    "test_rss_kb": status_field("self", "VmRSS"),
                    "test_fds": len(os.listdir("/proc/self/fd")),
                    "test_threads": status_field("self", "Threads"),
                    "descendants": len(descendants() - before),
                }
            )
        elapsed = time.monotonic() - started
    print(f"\n{SOAK_PROGRAMS} programs in {elapsed:.1f} s; outcomes {dict(statuses)}")
    for quarter, sample in enumerate(samples):
        print(f"quarter {quarter + 1}: {sample}")

    first, last = samples[0], samples[-1]
    # the zygotes serve the whole soak (a crash of the program must not cost a zygote)
    assert last["zygotes"] == first["zygotes"] == zygotes, f"zygotes changed: {zygotes} -> {last['zygotes']}"
    for sample in samples:  # no child accumulates behind any zygote
        for pid, children in sample["zygote_children"].items():
            assert len(children) <= 1, f"zygote {pid} has children {children}"
        assert sample["descendants"] <= len(zygotes) * 2, f"processes accumulate: {sample}"
    growth = sum(last["zygote_rss_kb"].values()) - sum(first["zygote_rss_kb"].values())
    assert growth < MAX_RSS_GROWTH_KB, f"zygote RSS grew {growth} kB: {first} -> {last}"
    test_growth = last["test_rss_kb"] - first["test_rss_kb"]
    assert test_growth < MAX_RSS_GROWTH_KB, f"test process RSS grew {test_growth} kB"
    assert last["test_fds"] <= first["test_fds"] + 2, (
        f"descriptors leak: {first['test_fds']} -> {last['test_fds']}"
    )
    assert last["test_threads"] <= first["test_threads"] + 2, "threads accumulate"
    # after close nothing is left: no zygote, no program
    assert not wait_until_gone(descendants() - before), f"left behind: {descendants() - before}"
    for pid in zygotes:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_map_keeps_order() -> None:
    sources = [SQUARE, P.SYNTAX_ERROR, P.RAISES, P.FORK, SQUARE, P.EXIT_BEFORE_RETURN] * 3
    expected = [
        Outcome.OK,
        Outcome.SYNTAX_ERROR,
        Outcome.PROGRAM_ERROR,
        Outcome.FORBIDDEN_OPERATION,
        Outcome.OK,
        Outcome.NO_RESULT,
    ] * 3
    with SandboxPool(CONFIG, workers=2, queue_size=4) as pool:
        results = pool.map(sources)
    assert [r.status for r in results] == expected


# ---- back-pressure and shutdown -----------------------------------------------------------------------

SLOW = SandboxConfig(wall_time_s=1.0, cpu_time_s=1, memory_mb=256)


def test_full_queue_refuses_work_and_frees_up() -> None:
    before = descendants()
    workers, queue_size = 1, 2
    futures = []
    with SandboxPool(SLOW, workers=workers, queue_size=queue_size) as pool:
        with pytest.raises(BackpressureError):
            for _ in range(workers + queue_size + 1):
                futures.append(pool.submit(P.SLEEP))
        assert queue_size <= len(futures) <= workers + queue_size, len(futures)
        # once a program finishes there is room again
        assert futures[0].result(timeout=10).status is Outcome.WALL_TIMEOUT
        deadline = time.monotonic() + 5
        while True:
            try:
                futures.append(pool.submit(SQUARE))
                break
            except BackpressureError:
                assert time.monotonic() < deadline, "the queue never freed up"
                time.sleep(0.02)
        assert futures[-1].result(timeout=10).status is Outcome.OK
        for future in futures:
            assert future.result(timeout=10).status in (Outcome.WALL_TIMEOUT, Outcome.OK)
    assert not wait_until_gone(descendants() - before), f"left behind: {descendants() - before}"


@pytest.mark.parametrize("workers", [1, 2])
def test_closing_with_work_in_flight_finishes_or_cancels_cleanly(workers: int) -> None:
    before = descendants()
    pool = SandboxPool(SLOW, workers=workers, queue_size=4)
    zygotes = zygotes_of(pool)
    futures = [pool.submit(P.SLEEP) for _ in range(workers)]
    futures += [pool.submit(SQUARE) for _ in range(2)] + [pool.submit(P.BUSY_LOOP) for _ in range(2)]
    time.sleep(0.2)  # the first programs are running
    started = time.monotonic()
    pool.close()
    closing_s = time.monotonic() - started
    # close waits at most for the programs already running (each bounded by its wall-clock limit)
    assert closing_s < SLOW.wall_time_s + 3.0, f"close took {closing_s:.1f} s"
    for future in futures:
        assert future.done(), "a future was left pending after close"
        if not future.cancelled():
            result = future.result()
            assert result.status in (Outcome.WALL_TIMEOUT, Outcome.OK, Outcome.CPU_TIMEOUT), result
    left = wait_until_gone(descendants() - before)
    assert not left, f"processes left after close: {left}"
    for pid in zygotes:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
