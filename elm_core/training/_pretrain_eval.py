"""How good a stage-2 model is, measured as the paper measures it.

Programs sampled from the model (each the opening of a walker program, PROGRAM_START, plus what it writes) are
evaluated in the sandbox and inserted into a fresh map: its coverage and QD score. And the first half (by
lines) of each held-out walker program is completed by the model: the fraction of completions that run (build
a walker), and the mean fitness of those that walk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from elm_core.errors import ConfigError
from elm_core.evaluation import EvalResult, EvaluatorPool
from elm_core.models import Prompt, SamplingConfig, load_generator
from elm_core.qd import ArchiveConfig, archive_metrics, make_archive
from elm_core.sandbox import Outcome
from elm_core.sodarace import SimConfig, Terrain

# The text every sample continues. Programs written from the seeds open with their docstring, so a model
# trained on them writes whole programs from `"""` (and rarely from `def make_walker():`, mid-program to it).
PROGRAM_START = '"""'
EVALUATION_SAMPLING = SamplingConfig(max_new_tokens=1024)  # whole programs: longer than a mutation's answer


@dataclass(frozen=True, kw_only=True)
class PretrainEvaluation:
    samples: int  # programs sampled
    samples_ran: int  # of which built a walker
    filled: int  # cells of the fresh map the samples filled
    cells: int
    coverage: float
    qd_score: float
    max_fitness: float | None
    completions: int  # held-out programs whose first half the model completed
    completions_ran: int
    completion_mean_fitness: float | None  # over the completions that walked; None if none did

    @property
    def completion_ran_fraction(self) -> float:
        return self.completions_ran / self.completions if self.completions else 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"completion_ran_fraction": self.completion_ran_fraction}


def evaluate_pretrained(
    checkpoint: str | Path,
    *,
    archive_config: ArchiveConfig,
    samples: int = 1024,
    held_out: Sequence[str] = (),
    seed: int = 0,
    evaluator_workers: int = 2,
    sim_config: SimConfig | None = None,
    terrain: Terrain | None = None,
    sampling: SamplingConfig = EVALUATION_SAMPLING,
    start: str = PROGRAM_START,
) -> PretrainEvaluation:
    """Samples `samples` programs from the model at `checkpoint` and completes the first half of each
    held-out program (give the runs' sim settings and archive config, so fitness and cells compare)."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"samples must be an integer >= 1, got {samples!r}")
    if not start:
        raise ConfigError("start must be the beginning of a walker program, got an empty text")
    generator = load_generator(str(checkpoint), backend="hf")
    beginnings = [start] * samples + [_first_half(source) for source in held_out]
    generations = generator.generate([Prompt(text=text) for text in beginnings], sampling, seed=seed)
    programs = [text + g.text for text, g in zip(beginnings, generations, strict=True)]
    with EvaluatorPool(sim_config=sim_config, terrain=terrain, workers=evaluator_workers) as evaluator:
        results = evaluator.evaluate(programs)
    return _evaluation(archive_config, results[:samples], results[samples:])


def _first_half(source: str) -> str:
    lines = source.splitlines(keepends=True)
    return "".join(lines[: max(1, len(lines) // 2)])


def _evaluation(
    archive_config: ArchiveConfig, sampled: Sequence[EvalResult], completed: Sequence[EvalResult]
) -> PretrainEvaluation:
    archive = make_archive(archive_config)
    for k, result in enumerate(sampled):
        if result.ok and result.fitness is not None and result.descriptors is not None:
            d = result.descriptors
            archive.try_insert(k, result.fitness, (d.height, d.width, d.mass))
    stats = archive_metrics(archive)
    walked = [r.fitness for r in completed if r.ok and r.fitness is not None and math.isfinite(r.fitness)]
    return PretrainEvaluation(
        samples=len(sampled),
        samples_ran=sum(_ran(r) for r in sampled),
        filled=stats.filled,
        cells=stats.cells,
        coverage=stats.coverage,
        qd_score=stats.qd_score,
        max_fitness=stats.max_fitness,
        completions=len(completed),
        completions_ran=sum(_ran(r) for r in completed),
        completion_mean_fitness=sum(walked) / len(walked) if walked else None,
    )


def _ran(result: EvalResult) -> bool:
    return result.execution is Outcome.OK
