"""Quality-diversity per LLM call: the LLM's operator mixes side by side, plus GP, from the same seed.

    python benchmarks/qd_bench.py [--variants paper directed crossover mix] [--calls 48] [--every 16]
                                  [--rng-seeds 0 1 2] [--model NAME] [--seed square] [--batch 8] [--no-gp]

Each variant runs once per RNG seed with the same model, seed program and budget of LLM calls (mutations);
`gp` then runs with the same number of evaluations as the mix's runs had on average. For every `--every`
calls: coverage (filled cells), QD score and max fitness, as mean ± standard deviation over the RNG seeds,
then per operator the applied / ran / inserted fractions and tokens the model wrote per inserted child, and
the calls per second. Results are also written to benchmarks/results/qd_bench.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from elm_core.qd import LoopConfig, OperatorMix
from elm_core.run import STORE_FILE, create_run, execute_run
from elm_core.spec import EmbeddedSpec, MutationSpec, RunSpec
from elm_core.store import SQLiteStore

VARIANTS = {
    "paper": OperatorMix.only("paper"),
    "directed": OperatorMix.only("directed"),
    "crossover": OperatorMix(directed=0.0, crossover=1.0, paper=0.0),  # directed while one cell is filled
    "mix": OperatorMix(directed=0.5, crossover=0.25, paper=0.25),
}


def one_run(
    variant: str, rng_seed: int, args: argparse.Namespace, root: Path, evaluations: int | None
) -> dict:
    gp = variant == "gp"
    loop = LoopConfig(batch_size=args.batch, pipeline_depth=2, max_evaluations=evaluations,
                      max_mutations=None if gp else args.calls)  # fmt: skip
    mutation = MutationSpec(
        operator="gp" if gp else "llm", model=args.model, operators=VARIANTS.get(variant, OperatorMix())
    )
    config = RunSpec(mutation=mutation, seeds=(args.seed,), rng_seed=rng_seed,
                     embedded=EmbeddedSpec(workers=args.workers), loop=loop)  # fmt: skip
    run_dir = root / f"{variant}-{rng_seed}"
    if not (run_dir / STORE_FILE).exists():  # a kept run (--runs) is read, not run again
        create_run(run_dir, config)
        execute_run(run_dir)
    with SQLiteStore(run_dir / STORE_FILE) as store:
        (run,) = store.list_runs()
        metrics = store.metrics(run.run_id)
        wall = metrics[-1].elapsed_s  # the loop's time: model loading and the report are not in it
        operators = store.operator_stats(run.run_id)
        calls = sum(s.mutations for s in operators)
    marks = [m for m in metrics if m.batch > 0 and (m.batch * args.batch) % args.every == 0]
    return {
        "variant": variant, "rng_seed": rng_seed, "calls": calls, "evaluations": run.evaluations,
        "wall_s": wall, "calls_per_s": calls / wall,
        "checkpoints": [{"calls": m.batch * args.batch, "filled": m.filled, "qd_score": m.qd_score,
                         "max_fitness": m.max_fitness} for m in marks],
        "final": {"filled": metrics[-1].filled, "qd_score": metrics[-1].qd_score,
                  "max_fitness": metrics[-1].max_fitness},
        "operators": [{"operator": s.operator, "mutations": s.mutations, "applied": s.fraction(s.applied),
                       "ran": s.fraction(s.ran), "inserted": s.fraction(s.inserted),
                       "duplicates": s.fraction(s.duplicates), "tokens_per_inserted": s.tokens_per_inserted}
                      for s in operators],
    }  # fmt: skip


def spread(values: list[float]) -> str:
    return f"{np.mean(values):.1f} ± {np.std(values):.1f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--calls", type=int, default=48, help="LLM calls (mutations) per run")
    parser.add_argument("--every", type=int, default=16)
    parser.add_argument("--rng-seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--model", default=None)
    parser.add_argument("--seed", default="square")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--no-gp", action="store_true")
    parser.add_argument("--runs", type=Path, default=None, help="keep the runs here; kept runs are reused")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        scratch = args.runs or temporary
        for variant in args.variants:
            rows += [one_run(variant, s, args, Path(scratch), None) for s in args.rng_seeds]
        if not args.no_gp:
            matched = "mix" if "mix" in args.variants else args.variants[0]
            baseline = [r["evaluations"] for r in rows if r["variant"] == matched]
            rows += [one_run("gp", s, args, Path(scratch), int(np.mean(baseline))) for s in args.rng_seeds]
    console = Console()
    table = Table(title=f"MAP-Elites from {args.seed}, {args.calls} LLM calls, seeds {args.rng_seeds} "
                  f"({platform.node()}); mean ± sd over seeds")  # fmt: skip
    for column in ("variant", "calls", "filled cells", "QD score", "max fitness m", "evals", "calls/s"):
        table.add_column(column, justify="right")
    for variant in dict.fromkeys(r["variant"] for r in rows):
        runs = [r for r in rows if r["variant"] == variant]
        steps = sorted({c["calls"] for r in runs for c in r["checkpoints"]})
        for step in steps:
            at = [c for r in runs for c in r["checkpoints"] if c["calls"] == step]
            best = [c["max_fitness"] for c in at if c["max_fitness"] is not None]
            table.add_row(variant, str(step), spread([c["filled"] for c in at]),
                          spread([c["qd_score"] for c in at]), spread(best), "", "")  # fmt: skip
        table.add_row(variant, "all", spread([r["final"]["filled"] for r in runs]),
                      spread([r["final"]["qd_score"] for r in runs]),
                      spread([r["final"]["max_fitness"] for r in runs]),
                      spread([r["evaluations"] for r in runs]),
                      f"{np.mean([r['calls_per_s'] for r in runs]):.3f}", end_section=True)  # fmt: skip
    console.print(table)
    per_operator = Table(title="per operator, summed over the seeds' runs")
    for column in (
        "variant",
        "operator",
        "calls",
        "applied",
        "ran",
        "inserted",
        "duplicate",
        "tokens/inserted",
    ):
        per_operator.add_column(column, justify="right")
    for variant in dict.fromkeys(r["variant"] for r in rows):
        totals: dict[str, list[dict]] = {}
        for r in rows:
            if r["variant"] == variant:
                for o in r["operators"]:
                    totals.setdefault(o["operator"], []).append(o)
        for operator, stats in totals.items():
            n = sum(s["mutations"] for s in stats)
            share = {k: sum(s[k] * s["mutations"] for s in stats) / n for k in ("applied", "ran", "inserted",
                                                                                  "duplicates")}  # fmt: skip
            tokens = [s["tokens_per_inserted"] for s in stats if s["tokens_per_inserted"] is not None]
            per_operator.add_row(variant, operator, str(n), f"{share['applied']:.0%}", f"{share['ran']:.0%}",
                                 f"{share['inserted']:.0%}", f"{share['duplicates']:.0%}",
                                 f"{np.mean(tokens):.0f}" if tokens else "-")  # fmt: skip
    console.print(per_operator)
    out = Path(__file__).parent / "results" / "qd_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
