"""The tables `elm train` and the fine-tuning effect benchmark print."""

from __future__ import annotations

from rich.table import Table

from elm_core.training import EffectReport, PretrainEvaluation


def summary_table(metrics: dict[str, float], title: str) -> Table:
    table = Table(title=title, show_header=False)
    for name, value in metrics.items():
        table.add_row(name, f"{value:,.4g}" if value % 1 else f"{value:,.0f}")
    return table


def pretrain_table(evaluation: PretrainEvaluation) -> Table:
    table = Table(title="the pretrained model, sampled into a fresh map", show_header=False)
    e, mean = evaluation, evaluation.completion_mean_fitness
    rows = {
        "samples that ran": f"{e.samples_ran} / {e.samples}",
        "niches filled": f"{e.filled} / {e.cells} ({e.coverage:.2%})",
        "QD score": f"{e.qd_score:,.1f}",
        "best fitness": "-" if e.max_fitness is None else f"{e.max_fitness:.2f}",
        "held-out halves completed that ran": f"{e.completions_ran} / {e.completions} "
        f"({e.completion_ran_fraction:.0%})",
        "their mean fitness": "-" if mean is None else f"{mean:.2f}",
    }
    for name, value in rows.items():
        table.add_row(name, value)
    return table


def effect_table(report: EffectReport) -> Table:
    title = (
        f"fine-tuning effect on run {report.run_id}: {len(report.parent_ids)} parents, {report.style} prompts"
    )
    table = Table(title=title, caption="paper: applied 0.63 -> 0.95, ran 0.22 -> 0.81")
    table.add_column("")
    for effect, label in ((report.base, "base"), (report.finetuned, "fine-tuned")):
        table.add_column(f"{label}\n{effect.model}", justify="right")
    base, tuned = report.base, report.finetuned
    table.add_row("mutations", str(base.counts["mutations"]), str(tuned.counts["mutations"]))
    for name in ("applied", "ran", "inserted"):
        cells = (f"{e.counts[name]} ({e.fractions[name]:.0%})" for e in (base, tuned))
        table.add_row(name, *cells)
    return table
