"""What one process per program costs on this machine: the floor under the sandbox's end-to-end target.

    .venv/bin/python benchmarks/fork_cost_bench.py [--forks 300]

(a) In a bare Python the size of the sandbox's zygote (`python -I -S`, standard library only): CPU of a forked
child that exits at once, and of children that write to 350 and 2,000 of the parent's pages, which prices
one copy-on-write page fault. (b) The real sandbox running the Square seed: CPU of the zygote and its
children per program (from /proc), and the children's page faults. Compare with simulating the seed
(benchmarks/sim_bench.py): sandboxed / direct throughput <= sim / (sim + the CPU per program).
Prints a table; writes benchmarks/results/fork_cost_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from elm_core.sandbox import Sandbox
from elm_core.sodarace import seed_source

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")

# Runs in `python -I -S`: prints {"case": [child CPU ms, child page faults], ...}
BARE = """
import json, os, resource, sys
forks, PAGE = int(sys.argv[1]), 4096
pages = bytearray(PAGE * 2000)
for offset in range(0, len(pages), PAGE):
    pages[offset] = 1
def children(count):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(forks):
        pid = os.fork()
        if pid == 0:
            for page in range(count):
                pages[page * PAGE] = 2
            os._exit(0)
        os.waitpid(pid, 0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return [cpu / forks * 1e3, (after.ru_minflt - before.ru_minflt) / forks]
print(json.dumps({count: children(count) for count in (0, 350, 2000)}))
"""


def zygote_cpu_ms(pid: int) -> float:
    """CPU of the zygote and its reaped children so far (utime, stime, cutime, cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICK * 1e3


def children_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[8])  # cminflt


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--forks", type=int, default=300)
    args = parser.parse_args()

    done = subprocess.run([sys.executable, "-I", "-S", "-c", BARE, str(args.forks)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    bare = {int(k): v for k, v in json.loads(done.stdout).items()}
    fault_us = (bare[2000][0] - bare[0][0]) / (bare[2000][1] - bare[0][1]) * 1e3

    square = seed_source("square")
    with Sandbox() as sandbox:
        for _ in range(20):
            sandbox.run(square)
        pid = sandbox.zygote_pid
        cpu, faults = zygote_cpu_ms(pid), children_faults(pid)
        for _ in range(args.forks):
            assert sandbox.run(square).status.value == "OK"
        per_program = (zygote_cpu_ms(pid) - cpu) / args.forks
        faults_per_program = (children_faults(pid) - faults) / args.forks

    title = f"one process per program: CPU per child ({os.cpu_count()} cores, {args.forks} forks)"
    table = Table(title=title)
    for column in ("what", "CPU ms", "page faults"):
        table.add_column(column)
    for count, what in (
        (0, "fork + exit"),
        (350, "fork, write 350 pages, exit"),
        (2000, "fork, write 2,000 pages, exit"),
    ):
        table.add_row(f"bare Python: {what}", f"{bare[count][0]:.2f}", f"{bare[count][1]:.0f}")
    table.add_row("one copy-on-write page fault", f"{fault_us / 1e3:.4f}", "1")
    table.add_row("sandbox: Square, zygote + child", f"{per_program:.2f}", f"{faults_per_program:.0f}")
    Console().print(table)
    out = ROOT / "benchmarks" / "results" / "fork_cost_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"bare": bare, "fault_us": fault_us, "sandbox_square_cpu_ms": per_program,
              "sandbox_square_faults": faults_per_program, "date": time.strftime("%Y-%m-%d"),
              "load": os.getloadavg()}  # fmt: skip
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
