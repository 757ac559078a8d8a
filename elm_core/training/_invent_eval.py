"""Sampling walkers for a terrain, and the paper's stage-3 evaluation.

Per terrain, with the same N: best-of-N and mean reward of programs sampled from the conditioned model,
sampled from the unconditioned stage-2 model, and drawn from the stage-2 dataset, all evaluated on that
terrain. And whether the conditioning matters: programs conditioned on each terrain, evaluated on each.
"""

from __future__ import annotations

import html
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from elm_core.errors import ConfigError, ElmError
from elm_core.evaluation import EvalResult, EvaluatorPool
from elm_core.models import HFConfig, HFGenerator, load_generator
from elm_core.report import code_html, walker_gif
from elm_core.sodarace import SimConfig, Terrain
from elm_core.spec import EvaluationSpec, RunSpec
from elm_core.training._invent import dataset_programs, read_invent_manifest, rewards
from elm_core.training._pretrain_eval import PROGRAM_START


class TerrainSampler:
    """Walker programs sampled from a checkpoint: conditioned on a terrain when the checkpoint has a terrain
    prompt (stage 3), plain continuations of the program's start otherwise (a stage-2 or any causal LM)."""

    def __init__(self, checkpoint: str | Path, *, device: str = "auto", threads: int | None = None) -> None:
        from elm_core.training._terrain_model import ConditionedLM, TerrainPrompt, end_ids

        generator = load_generator(str(checkpoint), HFConfig(device=device, threads=threads), backend="hf")
        if not isinstance(generator, HFGenerator):
            raise ConfigError(f"sampling walkers needs a transformers model; {checkpoint!r} is not one")
        path = Path(checkpoint)
        prompt = TerrainPrompt.load(path) if path.is_dir() else None
        self.tokenizer, self.device = generator.tokenizer, generator.device
        self.model = ConditionedLM(generator.model, prompt.to(self.device) if prompt else None).eval()
        self.ends = end_ids(generator.model, self.tokenizer)
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self.ends)
        )

    @property
    def terrains(self) -> tuple[str, ...]:
        """The terrains it was conditioned on; () for an unconditioned model."""
        return self.model.prompt.terrains if self.model.prompt is not None else ()

    def sample(
        self, n: int, *, terrain: str | None = None, seed: int = 0, max_new_tokens: int = 384,
        temperature: float = 1.0, batch_size: int = 16, start: str = PROGRAM_START,
    ) -> list[str]:  # fmt: skip
        """`n` whole programs, each `start` and what the model wrote after it."""
        import torch

        from elm_core.training._terrain_model import decode, sample_mask

        if terrain is not None and self.model.prompt is None:
            raise ConfigError("this model was not conditioned on terrains (no terrain prompt): sample it "
                              "without a terrain")  # fmt: skip
        if not start:
            raise ConfigError("start must be the opening text of a program, got an empty text")
        opening = self.tokenizer(start, return_tensors="pt").input_ids[0].to(self.device)
        torch.manual_seed(seed)
        programs: list[str] = []
        while len(programs) < n:
            rows = min(batch_size, n - len(programs))
            ids = None if terrain is None else self.model.prompt.ids([terrain] * rows)  # type: ignore[union-attr]
            sample = self.model.sample(ids, opening, rows, max_new_tokens=max_new_tokens,
                                       temperature=temperature, pad_id=self.pad_id)  # fmt: skip
            programs += [
                start + text for text in decode(self.tokenizer, sample, sample_mask(sample, self.ends))
            ]
        return programs


@dataclass(frozen=True)
class Scores:
    """N programs on one terrain: the best and mean reward, and the share whose walker was simulated."""

    best: float
    mean: float
    walked: float

    @classmethod
    def of(cls, results: Sequence[EvalResult], failure_reward: float) -> Scores:
        earned = rewards(results, failure_reward)
        return cls(max(earned), sum(earned) / len(earned), sum(r.ok for r in results) / len(results))


@dataclass(frozen=True, kw_only=True)
class InventionEvaluation:
    n: int
    terrains: tuple[str, ...]
    sim_seconds: float
    conditioned: dict[str, Scores]  # terrain -> the conditioned model's samples on it
    stage2_model: dict[str, Scores]  # the unconditioned stage-2 model's samples
    dataset: dict[str, Scores]  # programs drawn from the stage-2 dataset
    cross: dict[str, dict[str, float]]  # conditioned on -> evaluated on -> mean reward
    champions: dict[str, dict[str, Any]]  # terrain -> the best conditioned sample: program, walker, fitness

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"terrains": list(self.terrains)}


def evaluate_invention(
    checkpoint: str | Path,
    *,
    n: int = 64,
    terrains: Sequence[str] | None = None,
    stage2: str | Path | None = None,
    seed: int = 0,
    workers: int = 2,
    threads: int | None = None,
) -> InventionEvaluation:
    """The paper's evaluation of the stage-3 model at `checkpoint` (stage 2 and the settings from its
    invent.json unless given)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be an integer >= 1, got {n!r}")
    manifest = read_invent_manifest(checkpoint)
    config = manifest["config"]
    stage2 = stage2 or manifest["stage2"]
    terrains = tuple(Terrain.named(t).kind.value for t in (terrains or config["terrains"]))
    sim = SimConfig(seconds=config["sim_seconds"])
    failure, tokens, temperature = config["failure_reward"], config["max_new_tokens"], config["temperature"]
    start = config.get("start", PROGRAM_START)
    conditioned_model = TerrainSampler(checkpoint, threads=threads)
    sampling = {"seed": seed, "max_new_tokens": tokens, "temperature": temperature, "start": start}
    conditioned = {t: conditioned_model.sample(n, terrain=t, **sampling) for t in terrains}
    del conditioned_model
    plain = TerrainSampler(stage2, threads=threads).sample(n, **sampling)
    drawn = random.Random(seed).choices(dataset_programs(stage2), k=n)
    result: dict[str, Any] = {
        "conditioned": {},
        "stage2_model": {},
        "dataset": {},
        "cross": {},
        "champions": {},
    }
    with EvaluatorPool(workers=workers) as pool:
        for t in terrains:
            world = {"sim_config": sim, "terrain": Terrain.named(t)}
            mine = pool.evaluate(conditioned[t], **world)
            result["conditioned"][t] = Scores.of(mine, failure)
            result["stage2_model"][t] = Scores.of(pool.evaluate(plain, **world), failure)
            result["dataset"][t] = Scores.of(pool.evaluate(drawn, **world), failure)
            result["champions"][t] = _champion(conditioned[t], mine)
            for other in terrains:
                results = mine if other == t else pool.evaluate(conditioned[other], **world)
                result["cross"].setdefault(other, {})[t] = sum(rewards(results, failure)) / n
    return InventionEvaluation(n=n, terrains=terrains, sim_seconds=sim.seconds, **result)


def _champion(programs: Sequence[str], results: Sequence[EvalResult]) -> dict[str, Any]:
    walked = [
        (r.fitness, p, r) for p, r in zip(programs, results, strict=True) if r.ok and r.fitness is not None
    ]
    if not walked:
        return {}
    fitness, program, best = max(walked, key=lambda w: w[0])
    walker = best.walker.to_dict() if best.walker is not None else None
    return {"fitness": fitness, "program": program, "walker": walker}


def write_invention_report(evaluation: InventionEvaluation, out_path: str | Path) -> Path:
    """One HTML page: the per-terrain table, the conditioning check and, per terrain, the best conditioned
    walker animated on its terrain. Self-contained, no scripts; program text escaped."""
    sources = (evaluation.conditioned, evaluation.stage2_model, evaluation.dataset)
    rows = "".join(
        f"<tr><td>{html.escape(t)}</td>"
        + "".join(_scores(source[t]) for source in sources)
        + "</tr>"
        for t in evaluation.terrains
    )  # fmt: skip
    head = "".join(
        f'<th colspan="3">{h}</th>' for h in ("conditioned model", "stage-2 model", "stage-2 dataset")
    )
    sub = "<th></th>" + "<th>best</th><th>mean</th><th>walked</th>" * 3
    cross_head = "".join(f"<th>on {html.escape(t)}</th>" for t in evaluation.terrains)
    cross = "".join(
        f"<tr><td>conditioned on {html.escape(c)}</td>"
        + "".join(f'<td class="num">{evaluation.cross[c][t]:+.2f}</td>' for t in evaluation.terrains)
        + "</tr>"
        for c in evaluation.terrains
    )  # fmt: skip
    cards = "".join(_card(t, evaluation) for t in evaluation.terrains)
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>Stage 3: walkers invented for each terrain</title><style>{_CSS}</style></head><body><main>"
        f"<h1>Walkers invented for each terrain</h1><p>{evaluation.n} programs from each source, each "
        f"evaluated for {evaluation.sim_seconds:g} s on the terrain. A program that builds no walker earns "
        "the failure reward.</p>"
        f"<table><thead><tr><th>terrain</th>{head}</tr><tr>{sub}</tr></thead><tbody>{rows}</tbody></table>"
        f"<h2>Does the conditioning matter?</h2><p>Mean reward of programs conditioned on one terrain, "
        f"evaluated on each.</p><table><thead><tr><th></th>{cross_head}</tr></thead>"
        f"<tbody>{cross}</tbody></table><h2>The best conditioned walker per terrain</h2>"
        f'<div class="cards">{cards}</div></main></body></html>\n'
    )
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def _scores(s: Scores) -> str:
    cells = (f"{s.best:+.2f}", f"{s.mean:+.2f}", f"{100 * s.walked:.0f}%")
    return "".join(f'<td class="num">{c}</td>' for c in cells)


def _card(terrain: str, evaluation: InventionEvaluation) -> str:
    champion = evaluation.champions.get(terrain) or {}
    title = f"<h3>{html.escape(terrain)}</h3>"
    if not champion:
        return f'<article class="card">{title}<p>No conditioned sample walked on this terrain.</p></article>'
    spec = RunSpec(evaluation=EvaluationSpec(terrain=terrain, sim=SimConfig(seconds=evaluation.sim_seconds)))
    try:
        import base64

        gif = base64.b64encode(walker_gif(json.dumps(champion["walker"]), spec)).decode("ascii")
        image = f'<img src="data:image/gif;base64,{gif}" alt="the best walker on {html.escape(terrain)}">'
    except ElmError as e:
        image = f"<p>No animation: {html.escape(str(e))}</p>"
    program = f"<details><summary>program</summary>{code_html(champion['program'])}</details>"
    return (
        f'<article class="card">{title}{image}<p>fitness {champion["fitness"]:+.2f} m</p>{program}</article>'
    )


_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_CSS = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0; background: #f6f6f4; color: #222; }
main { max-width: 1180px; margin: 0 auto; padding: 1.5rem 2rem 3rem; }
table { border-collapse: collapse; background: #fff; }
th, td { padding: .3rem .7rem; border: 1px solid #e2e2e2; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: flex; flex-wrap: wrap; gap: 1rem; } .card { background: #fff; border: 1px solid #e2e2e2;
  border-radius: 8px; padding: .6rem; width: 340px; } .card img { max-width: 100%; }
pre { background: #fbfbfa; border: 1px solid #e4e4e4; padding: .6rem; overflow: auto; font-size: .8rem; }
"""
