"""Model backend throughput: time to first token and generated tokens/s at several batch sizes.

    python benchmarks/model_bench.py [--model NAME] [--backend hf|llamacpp] [--batch 1 8 16] [--tokens 256]

Each row mutates `batch` distinct variants of the Square seed with the `rewrite` prompt (about 390 prompt
tokens; the instructions are shared, the programs differ, as in a run). TTFT is the time to prefill the whole
batch and produce its first token (a separate call with max_new_tokens=1 on other variants); `decode tok/s`
counts the tokens generated after the first, over the time after TTFT; `end-to-end tok/s` is all generated
tokens over the whole call, prefill included. JSON goes to benchmarks/results/model_bench.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from elm_core.models import SamplingConfig, model_name
from elm_core.mutation import PromptStyle, build_prompt
from elm_core.sodarace import seed_source


def load(name: str, backend: str, batch: int):  # noqa: ANN201 - either backend
    from elm_core.models import HFConfig, load_generator

    return load_generator(name, HFConfig(batch_size=batch), backend=backend, parallel=batch)


def prompts(phase: str, batch: int) -> list:
    """Distinct parents, as in a run: the shared instructions may be cached by a backend, the programs not."""
    square = seed_source("square")
    return [build_prompt(PromptStyle.REWRITE, f"# {phase} {i}\n{square}", "Changed make_walker function.")
            for i in range(batch)]  # fmt: skip


def measure(generator, batch: int, tokens: int) -> dict:  # noqa: ANN001
    generator.generate(prompts("warm-up", 1), SamplingConfig(max_new_tokens=2), seed=0)
    started = time.perf_counter()
    generator.generate(prompts("first-token", batch), SamplingConfig(max_new_tokens=1), seed=1)
    ttft = time.perf_counter() - started
    started = time.perf_counter()
    sampling = SamplingConfig(max_new_tokens=tokens, temperature=0.8)
    outputs = generator.generate(prompts("generate", batch), sampling, seed=2)
    total = time.perf_counter() - started
    generated = sum(o.completion_tokens for o in outputs)
    return {"batch": batch, "prompt_tokens": outputs[0].prompt_tokens, "generated": generated,
            "ttft_s": ttft, "total_s": total, "end_to_end_tok_s": generated / total,
            "decode_tok_s": (generated - batch) / max(total - ttft, 1e-9)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--backend", choices=("hf", "llamacpp"), default="hf")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--tokens", type=int, default=256)
    args = parser.parse_args()
    name = model_name(args.model)
    rows = []
    for batch in args.batch:
        generator = load(name, args.backend, batch)
        rows.append(dict(measure(generator, batch, args.tokens), backend=args.backend, model=name))
        del generator
    table = Table(title=f"{name} on {args.backend} ({platform.machine()}, {platform.node()})")
    for column in (
        "batch",
        "prompt tok",
        "generated",
        "TTFT s",
        "total s",
        "decode tok/s",
        "end-to-end tok/s",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        cells = (r["batch"], r["prompt_tokens"], r["generated"], f"{r['ttft_s']:.2f}", f"{r['total_s']:.1f}",
                 f"{r['decode_tok_s']:.1f}", f"{r['end_to_end_tok_s']:.1f}")  # fmt: skip
        table.add_row(*map(str, cells))
    Console().print(table)
    out = Path(__file__).parent / "results" / "model_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
