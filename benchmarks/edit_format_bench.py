"""Can the model answer with only the lines it changes? Search/replace edit blocks against whole rewrites.

    python benchmarks/edit_format_bench.py [--formats rewrite search-replace search-replace-example]
                                           [--children 16] [--seed square] [--model qwen2.5-coder-0.5b]

A whole-program rewrite costs the model about as many written tokens as the parent has; an answer holding only
the changed lines (aider's SEARCH/REPLACE blocks) would cost a fraction of that, if the model writes it
reliably. For each format, asks for `--children` directed children of the seed (targets from the loop's
own `neighbour_gap`, along one descriptor, worded by `directed_instruction`), in batches of 8 on llama.cpp,
applies the blocks (exact match first, then line by line ignoring indentation), evaluates the children in
the sandbox, and counts applied, ran and left the seed's cell, with tokens written per child and children
per second.
Results are also written to benchmarks/results/edit_format_bench.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path

import numpy as np
from directed_bench import seed_targets  # beside this script
from rich.console import Console
from rich.table import Table

from elm_core.evaluation import EvaluatorPool
from elm_core.models import LlamaCppConfig, LlamaCppGenerator, Prompt, SamplingConfig, gguf_path
from elm_core.mutation._prompts import SODARACE_TASK, SYSTEM
from elm_core.qd import directed_instruction

REWRITE = "Reply with the whole new program in one ```python block."
SEARCH_REPLACE = (
    "Reply with only the lines you change, in this form:\n<<<<<<< SEARCH\n(lines copied exactly from the "
    "program)\n=======\n(the new lines)\n>>>>>>> REPLACE\nUse one such block per place you change."
)
EXAMPLE = (
    "\nExample, for a program with the line `    a = wc.add_joint(0, 0)`:\n<<<<<<< SEARCH\n"
    "    a = wc.add_joint(0, 0)\n=======\n    a = wc.add_joint(0, 4)\n>>>>>>> REPLACE\n"
)
FORMATS = {
    "rewrite": REWRITE,
    "search-replace": SEARCH_REPLACE,
    "search-replace-example": SEARCH_REPLACE + EXAMPLE,
}
_BLOCK = re.compile(r"<{5,9} ?SEARCH\n(.*?)\n?={5,9}\n(.*?)\n?>{5,9} ?REPLACE", re.DOTALL)
_PROGRAM = re.compile(r"```python\n(.*?)(?:```|\Z)", re.DOTALL)


def apply_blocks(parent: str, answer: str) -> str | None:
    """The parent with every SEARCH block replaced, or None when there is no block or one does not match."""
    blocks = _BLOCK.findall(answer)
    child = parent
    for search, replace in blocks:
        if search.strip() and search in child:
            child = child.replace(search, replace, 1)
            continue
        lines, wanted = child.split("\n"), [line.strip() for line in search.split("\n")]
        at = next(
            (k for k in range(len(lines)) if [x.strip() for x in lines[k : k + len(wanted)]] == wanted), None
        )
        if not search.strip() or at is None:
            return None
        indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
        lines[at : at + len(wanted)] = [indent + line.strip() for line in replace.split("\n")]
        child = "\n".join(lines)
    return child if blocks and child.strip() != parent.strip() else None


def bench(name: str, args: argparse.Namespace, evaluator: EvaluatorPool, model: LlamaCppGenerator) -> dict:
    t = seed_targets(evaluator, args.seed, args.children, np.random.default_rng(args.rng_seed), axis=True)
    prompts = [
        Prompt(messages=(("system", SYSTEM), ("user", f"{SODARACE_TASK.description}\n\n```python\n"
               f"{t.source.rstrip()}\n```\n\n{directed_instruction(g.tolist(), t.point)} Make a real change. "
               f"{FORMATS[name]}")))
        for g in t.gaps
    ]  # fmt: skip
    sampling = SamplingConfig(temperature=0.8, max_new_tokens=384)
    started = time.perf_counter()
    answers = [
        a for k in range(0, len(prompts), 8) for a in model.generate(prompts[k : k + 8], sampling, seed=k)
    ]
    seconds = time.perf_counter() - started
    if name == "rewrite":
        children = [m.group(1) if (m := _PROGRAM.search(a.text)) else None for a in answers]
    else:
        children = [apply_blocks(t.source, a.text) for a in answers]
    programs = [c for c in children if c is not None]
    results = evaluator.evaluate(programs)
    ran = [r for r in results if r.ok and r.descriptors is not None]
    left = sum(t.archive.cell_of((r.descriptors.height, r.descriptors.width, r.descriptors.mass))
               != t.parent.cell for r in ran)  # fmt: skip
    return {"format": name, "children": len(answers), "applied": len(programs), "ran": len(ran),
            "left_cell": left, "tokens_per_child": sum(a.completion_tokens for a in answers) / len(answers),
            "children_per_s": len(answers) / seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    parser.add_argument("--children", type=int, default=16)
    parser.add_argument("--seed", default="square")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--rng-seed", type=int, default=1)
    args = parser.parse_args()
    with (
        EvaluatorPool(workers=2) as evaluator,
        LlamaCppGenerator(gguf_path(args.model), config=LlamaCppConfig(parallel=8)) as model,
    ):
        rows = [bench(name, args, evaluator, model) for name in args.formats]
    table = Table(
        title=f"{args.model}: directed children of {args.seed} by answer format ({platform.node()})"
    )
    for column in ("format", "children", "applied", "ran", "left the cell", "tokens/child", "children/s"):
        table.add_column(column, justify="right")
    for r in rows:
        counts = (str(r[k]) for k in ("children", "applied", "ran", "left_cell"))
        table.add_row(r["format"], *counts, f"{r['tokens_per_child']:.0f}", f"{r['children_per_s']:.3f}")
    Console().print(table)
    out = Path(__file__).parent / "results" / "edit_format_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
