"""LLM calls per second on this machine: prompt style, n-gram speculation and batch width side by side.

    python benchmarks/mutation_speed_bench.py [--model qwen2.5-coder-0.5b] [--children 16]
        [--variants rewrite/none/8 instruct/none/8 rewrite/ngram-mod/8 ...]

Each variant (STYLE/SPECULATION/PARALLEL) loads the model's GGUF with llama.cpp, then mutates Square and
Radial with directed instructions, `--children` children in batches of PARALLEL, and reports children per
second, tokens written and read per child, the share of children that are programs (applied), and tokens
written per applied child. Results are also written to benchmarks/results/mutation_speed_bench.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from elm_core.models import LlamaCppConfig, LlamaCppGenerator, SamplingConfig, gguf_path
from elm_core.mutation import ChildRequest, LLMMutator, MutationConfig, PromptStyle
from elm_core.sodarace import seed_source

INSTRUCTIONS = (
    "Make the walker about 3 m taller.",
    "Make the walker about 2 m narrower. Make it heavier: add two joints joined to the others by muscles.",
    "Make the walker about 2 m wider and about 2 m shorter.",
    "Make it lighter: remove one joint and its muscles.",
)
DEFAULT_VARIANTS = ("rewrite/none/8", "instruct/none/8", "rewrite/ngram-mod/8", "rewrite/ngram-mod/2",
                    "rewrite/ngram-mod/1")  # fmt: skip


class Counting:
    """Wraps a generator and adds up the tokens it reads and writes."""

    def __init__(self, inner: LlamaCppGenerator) -> None:
        self.inner, self.name = inner, inner.name
        self.read = self.written = 0

    def generate(self, prompts, sampling, *, seed=None):  # type: ignore[no-untyped-def]
        generations = self.inner.generate(prompts, sampling, seed=seed)
        self.read += sum(g.prompt_tokens for g in generations)
        self.written += sum(g.completion_tokens for g in generations)
        return generations


def bench(variant: str, args: argparse.Namespace) -> dict:
    style, speculation, parallel = variant.split("/")
    config = LlamaCppConfig(parallel=int(parallel), speculation=speculation)
    parents = [seed_source("square"), seed_source("radial")]
    requests = [ChildRequest(parent=parents[k % 2], instruction=INSTRUCTIONS[k % len(INSTRUCTIONS)],
                             operator="directed") for k in range(args.children)]  # fmt: skip
    with LlamaCppGenerator(gguf_path(args.model), name=args.model, config=config) as generator:
        counting = Counting(generator)
        mutator = LLMMutator(counting, MutationConfig(style=PromptStyle(style), sampling=SamplingConfig()))
        rng = np.random.default_rng(0)
        mutator.mutate(requests[:1], rng)  # warm-up
        counting.read = counting.written = 0
        started = time.perf_counter()
        children = [c for k in range(0, len(requests), int(parallel))
                    for c in mutator.mutate(requests[k : k + int(parallel)], rng)]  # fmt: skip
        seconds = time.perf_counter() - started
    applied = sum(c.ok for c in children)
    return {"variant": variant, "children": len(children), "seconds": seconds,
            "children_per_s": len(children) / seconds, "written_per_child": counting.written / len(children),
            "read_per_child": counting.read / len(children), "applied": applied / len(children),
            "written_per_applied": counting.written / applied if applied else None,
            "outcomes": [c.outcome.value for c in children]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--children", type=int, default=16)
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    args = parser.parse_args()
    rows = [bench(v, args) for v in args.variants]
    table = Table(
        title=f"{args.model}, {args.children} directed children of Square and Radial ({platform.node()})"
    )
    for column in ("style/speculation/parallel", "children/s", "tokens written/child", "read/child",
                   "applied", "written/applied"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in rows:
        per_applied = "-" if r["written_per_applied"] is None else f"{r['written_per_applied']:.0f}"
        table.add_row(r["variant"], f"{r['children_per_s']:.3f}", f"{r['written_per_child']:.0f}",
                      f"{r['read_per_child']:.0f}", f"{r['applied']:.0%}", per_applied)  # fmt: skip
    Console().print(table)
    out = Path(__file__).parent / "results" / "mutation_speed_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
