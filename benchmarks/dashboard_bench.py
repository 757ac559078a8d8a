"""The dashboard on a large run: page and update latency on a store of 100,000 individuals.

    python benchmarks/dashboard_bench.py [--individuals 100000] [--batch 10] [--repeats 20] [--json out.json]

Builds a run store the way a long run fills it (every batch committed through the store, each child with a
program, the model's raw output and a mutation row; elites spread over the 12 x 12 x 12 map; parents drawn
from the archive, so lineages grow deep), serves the dashboard on loopback, and times:
- each page and API call: median and p95 over `--repeats` requests, with the bytes sent;
- the update latency: from a batch's commit to the moment an open event stream delivers it (the stream
  looks for new batches every 0.5 s, the default), over `--repeats` batches.
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from rich.console import Console
from rich.table import Table

from elm_core.sandbox import Sandbox
from elm_core.sodarace import seed_source
from elm_core.store import (
    BatchRecord,
    EliteRecord,
    IndividualRecord,
    MetricsRecord,
    MutationRecord,
    SQLiteStore,
)
from services.dashboard import DashboardThread, StoreSource, create_app

RUN = "large"
CELLS = 12 * 12 * 12


class Filler:
    """Commits batches of synthetic but store-shaped children."""

    def __init__(self, store: SQLiteStore, rng: np.random.Generator) -> None:
        self.store, self.rng = store, rng
        self.source = seed_source("square")
        with Sandbox() as sandbox:  # a real walker, so that the animations are real work
            self.walker_json = json.dumps(sandbox.run(self.source).walker.to_dict())
        self.elites: dict[int, EliteRecord] = {}
        self.next_id = 0
        self.batch = 0
        self.evaluations = 0

    def commit(self, size: int) -> None:
        individuals, mutations, changed = [], [], {}
        for _ in range(size):
            i = self.next_id
            self.next_id += 1
            parent = None
            if self.elites:
                keys = list(self.elites)
                parent = self.elites[keys[int(self.rng.integers(len(keys)))]].individual_id
            cell = int(self.rng.integers(CELLS))
            fitness = float(self.rng.normal(10, 8))
            h, w, m = np.unravel_index(cell, (12, 12, 12))
            record = IndividualRecord(
                run_id=RUN, individual_id=i, batch=self.batch, parent_id=parent,
                source=self.source.replace("10", str(10 + i % 7)) + f"# child {i}\n", status="OK", message="",
                fitness=fitness, descriptors=(h * 20 / 12 + 0.5, w * 20 / 12 + 0.5, m * 5 + 2.0), cell=cell,
                walker_json=self.walker_json, timings_json="{}", created_at=time.time(),
            )  # fmt: skip
            individuals.append(record)
            if parent is not None:
                mutations.append(MutationRecord(
                    run_id=RUN, batch=self.batch, parent_id=parent, child_id=i, operator="directed",
                    style="rewrite", message="make the walker about 3 m taller", raw_output=record.source * 2,
                    mutation_outcome="OK", applied=True, ran=True, inserted=False, fitness_delta=0.0,
                    generated_tokens=300,
                ))  # fmt: skip
            old = changed.get(cell) or self.elites.get(cell)
            if old is None or fitness > old.fitness:
                changed[cell] = EliteRecord(run_id=RUN, cell=cell, individual_id=i, fitness=fitness,
                                            descriptors=record.descriptors or ())  # fmt: skip
        self.elites.update(changed)
        self.evaluations += size
        fits = [e.fitness for e in self.elites.values()]
        metrics = MetricsRecord(
            run_id=RUN, batch=self.batch, evaluations=self.evaluations, filled=len(self.elites),
            coverage=len(self.elites) / CELLS, qd_score=sum(max(f + 10, 0) for f in fits),
            max_fitness=max(fits),
            applied_fraction=1.0, ran_fraction=1.0, inserted_fraction=len(changed) / size,
            evaluations_per_s=1.0, elapsed_s=float(self.batch), created_at=time.time(),
        )  # fmt: skip
        self.store.commit_batch(BatchRecord(run_id=RUN, batch=self.batch, individuals=tuple(individuals),
                                            mutations=tuple(mutations), elites=tuple(changed.values()),
                                            metrics=metrics, rng_state_json="{}"))  # fmt: skip
        self.batch += 1


def timed_get(url: str) -> tuple[float, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as reply:
        size = len(reply.read())
    return time.perf_counter() - start, size


def update_latency(server_url: str, filler: Filler, size: int, repeats: int) -> list[float]:
    parts = urlsplit(server_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.request("GET", f"/api/runs/{RUN}/events")
    stream = conn.getresponse()
    read_event(stream)  # the full state
    latencies = []
    for _ in range(repeats):
        time.sleep(0.2)
        start = time.perf_counter()
        filler.commit(size)
        read_event(stream)
        latencies.append(time.perf_counter() - start)
    conn.close()
    return latencies


def row(what: str, seconds: list[float], size: int) -> dict:
    times = sorted(seconds)
    return {"what": what, "median_ms": 1000 * statistics.median(times),
            "p95_ms": 1000 * times[int(0.95 * (len(times) - 1))], "bytes": size}  # fmt: skip


def read_event(stream: http.client.HTTPResponse) -> None:
    while True:
        line = stream.readline()
        if line.startswith(b"data: "):
            stream.readline()
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--individuals", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.sqlite"
        started = time.perf_counter()
        with SQLiteStore(path) as store:
            store.create_run(run_id=RUN, name="large", config_json="{}", rng_seed=0, rng_state_json="{}")
            filler = Filler(store, np.random.default_rng(0))
            while filler.next_id < args.individuals:
                filler.commit(args.batch)
            console.print(f"store: {filler.next_id:,} individuals, {filler.batch:,} batches, "
                          f"{len(filler.elites):,} elites, {path.stat().st_size / 1e6:.0f} MB, "
                          f"built in {time.perf_counter() - started:.0f} s")  # fmt: skip
            best = max(filler.elites.values(), key=lambda e: e.fitness).individual_id
            depth = len(store.lineage(RUN, best))
            source = StoreSource(path)
            rows = []
            with DashboardThread(create_app(source, source_name="bench")) as server:
                paths = {
                    "runs page": "/", "run list (JSON)": "/api/runs", "run page": f"/runs/{RUN}",
                    "run state (JSON: map, curves, operators)": f"/api/runs/{RUN}",
                    f"elite page (lineage of {depth})": f"/runs/{RUN}/individuals/{best}",
                    "walker animation, first": f"/api/runs/{RUN}/individuals/{best}/walker.gif",
                    "walker animation, cached": f"/api/runs/{RUN}/individuals/{best}/walker.gif",
                }  # fmt: skip
                for name, path_ in paths.items():
                    repeats = 1 if name.endswith("first") else args.repeats
                    samples = [timed_get(server.url + path_) for _ in range(repeats)]
                    rows.append(row(name, [t for t, _ in samples], samples[0][1]))
                latencies = update_latency(server.url, filler, args.batch, args.repeats)
                rows.append(row("update: batch commit -> event on an open page", latencies, 0))
            source.close()
    table = Table(
        title=f"dashboard on {args.individuals:,} individuals ({platform.processor() or platform.machine()})"
    )
    for column in ("request", "median ms", "p95 ms", "kB"):
        table.add_column(column, justify="left" if column == "request" else "right")
    for r in rows:
        table.add_row(
            r["what"],
            f"{r['median_ms']:.1f}",
            f"{r['p95_ms']:.1f}",
            f"{r['bytes'] / 1000:.1f}" if r["bytes"] else "",
        )
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps({"individuals": args.individuals, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
