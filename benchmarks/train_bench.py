"""Fine-tuning throughput: tokens/s of training steps, full and LoRA, on CPU or GPU.

    python benchmarks/train_bench.py [--model tiny] [--device cpu] [--methods full lora] [--steps 20]
                                     [--batch 4] [--accumulate 1] [--style rewrite] [--threads N]
    python benchmarks/train_bench.py --model qwen2.5-coder-0.5b --device cuda --batch 8

The examples are the four seeds, each changed in one number, laid out in `--style` (rewrite, the default
model's layout: about 700 prompt and 300 answer tokens with the tiny model's tokenizer). `tokens/s` counts
every token a step trains on (padding excluded), `answer tok/s` only those under the loss; both are over the
time spent in training steps (forward, backward, optimiser) of a training that follows an untimed one of
`--warmup` steps (imports, allocators and kernels warm up there).
Peak GPU memory is reported on a GPU. JSON goes to benchmarks/results/train_bench.json (or `--json`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import re
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from elm_core.mutation import PromptStyle
from elm_core.sodarace import SEED_NAMES, seed_source
from elm_core.training import (
    Dataset,
    DatasetConfig,
    DatasetCounts,
    Example,
    TrainConfig,
    example_for,
    finetune,
)

SHORT_DTYPES = {"float32": "fp32", "bfloat16": "bf16"}


def examples(style: PromptStyle, count: int) -> tuple[Example, ...]:
    """`count` mutations of the seeds, each raising the k-th number of a seed by one."""
    made = []
    for i in range(count):
        parent = seed_source(SEED_NAMES[i % len(SEED_NAMES)])
        numbers = list(re.finditer(r"\d+\.\d+|\d+", parent))
        target = numbers[(i // len(SEED_NAMES)) % len(numbers)]
        child = f"{parent[: target.start()]}{float(target.group()) + 1}{parent[target.end() :]}"
        example = example_for(style=style, message="Changed parameters in make_walker function.",
                              parent=parent, child=child, raw_output=None, run_id="bench", parent_id=0,
                              child_id=i + 1)  # fmt: skip
        assert example is not None
        made.append(example)
    return tuple(made)


def dataset(style: PromptStyle, count: int) -> Dataset:
    train = examples(style, count)
    counts = DatasetCounts(mutations=count, selected=count, unrepresentable=0, duplicates=0, train=count,
                           validation=0)  # fmt: skip
    return Dataset(run_id="bench", config=DatasetConfig(validation_fraction=0), train=train, validation=(),
                   sha256=f"bench-{style.value}-{count}", counts=counts)  # fmt: skip


def bench(method: str, args: argparse.Namespace, data: Dataset, scratch: Path) -> dict:
    config = TrainConfig(base_model=args.model, method=method, device=args.device, threads=args.threads,
                         batch_size=args.batch, grad_accumulation_steps=args.accumulate, max_steps=args.steps,
                         eval_every_steps=10**6, checkpoint_every_steps=10**6,
                         early_stopping_patience=None)  # fmt: skip
    warmup = dataclasses.replace(config, max_steps=args.warmup)
    finetune(warmup, data, scratch / f"{method}-warmup")  # imports, allocators, kernels: not timed
    result = finetune(config, data, scratch / method)
    metrics = result.metrics
    manifest = json.loads((result.path / "manifest.json").read_text())
    return {
        "method": method, "steps": args.steps, "tokens_per_s": metrics["tokens_per_s"],
        "completion_tokens_per_s": metrics["completion_tokens_per_s"],
        "s_per_step": metrics["train_s"] / args.steps,
        "tokens_per_step": metrics["train_tokens"] / args.steps,
        "loss_first": metrics["train_loss_first"], "loss_last": metrics["train_loss_last"],
        "peak_gpu_memory_mb": metrics.get("peak_gpu_memory_mb"), "wall_s": metrics["wall_s"],
        "device": manifest["device"], "dtype": manifest["dtype"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--methods", nargs="+", default=["full", "lora"])
    parser.add_argument("--steps", type=int, default=20, help="timed optimiser steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=4, help="examples per micro-batch")
    parser.add_argument("--accumulate", type=int, default=1, help="micro-batches per step")
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--style", default="rewrite", choices=[s.value for s in PromptStyle])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "train_bench.json")
    args = parser.parse_args()
    data = dataset(PromptStyle(args.style), args.examples)
    with tempfile.TemporaryDirectory() as scratch:
        rows = [bench(method, args, data, Path(scratch)) for method in args.methods]
    Console().print(table(rows, args))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    record = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "host": platform.node(), "rows": rows}  # fmt: skip
    args.json.write_text(json.dumps(record, indent=2) + "\n")


def table(rows: list[dict], args: argparse.Namespace) -> Table:
    title = (f"fine-tuning {args.model} on {args.device}: batch {args.batch} x {args.accumulate}, "
             f"{args.style} layout ({platform.node()})")  # fmt: skip
    result = Table(title=title)
    columns = ("method", "dtype", "tok/s", "ans tok/s", "tok/step", "s/step", "loss", "GPU MB")
    for column in columns:
        result.add_column(column, justify="right", no_wrap=True)
    for r in rows:
        peak = "-" if r["peak_gpu_memory_mb"] is None else f"{r['peak_gpu_memory_mb']:,.0f}"
        loss = f"{r['loss_first']:.2f}→{r['loss_last']:.2f}"
        result.add_row(r["method"], SHORT_DTYPES.get(r["dtype"], r["dtype"]), f"{r['tokens_per_s']:,.0f}",
                       f"{r['completion_tokens_per_s']:,.0f}", f"{r['tokens_per_step']:,.0f}",
                       f"{r['s_per_step']:.3f}", loss, peak)  # fmt: skip
    result.caption = "tok/s: tokens trained on, padding excluded; ans: those under the loss; GPU MB: peak"
    return result


if __name__ == "__main__":
    main()
