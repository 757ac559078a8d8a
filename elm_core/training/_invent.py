"""Stage 3 of the paper: invention conditioned on the terrain, fine-tuned with reinforcement learning.

The policy is the stage-2 model reading a learned soft prompt for the terrain before the program's start
(elm_core/training/_terrain_model.py). Each iteration:

1. samples `samples_per_iteration` programs, split evenly over the terrains, each conditioned on its terrain;
2. runs every program in the sandbox and simulates its walker on that terrain: the reward is the fitness, or
   `failure_reward` for a program that builds no walker or whose simulation fails;
3. takes one policy-gradient step (GRPO): each sample's advantage is its reward against its terrain group's
   mean, in units of the group's spread; the loss is -advantage x log-probability of the sample's tokens plus
   `kl_coef` x a per-token KL estimate to the frozen stage-2 model (which reads no soft prompt), averaged
   over the iteration's tokens. With one update per batch of samples the policy is always on-policy, so
   PPO's probability-ratio clipping never binds and is left out.

TRL's GRPOTrainer and PPOTrainer generate from text prompts with the model's own embedding of them; a policy
that reads learned vectors before the text's embeddings does not fit them, so this loop is written out here
(about the length of nanoGPT's), using the fine-tuning's state saving for an exact resume after a kill.
torch is imported inside the functions that use it.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from elm_core.errors import ConfigError, StateError
from elm_core.evaluation import EvalResult, EvaluatorPool
from elm_core.models import HFConfig, HFGenerator, load_generator
from elm_core.sodarace import SimConfig, Terrain, TerrainKind
from elm_core.training._pretrain import PROGRAMS_FILE
from elm_core.training._pretrain_eval import PROGRAM_START
from elm_core.training._state import load_state, remove_state, save_state

INVENT_MANIFEST = "invent.json"
TERRAINS = tuple(k.value for k in TerrainKind)


@dataclass(frozen=True, kw_only=True)
class InventConfig:
    terrains: tuple[str, ...] = ("flat", "tunnel")
    iterations: int = 20
    samples_per_iteration: int = 32  # over all terrains, split evenly: each terrain's group
    prompt_tokens: int = 4  # soft-prompt vectors per terrain
    # Before RL, each terrain's prompt is fitted (the LM frozen) to the stage-2 dataset by maximum likelihood,
    # so that RL starts from a conditioned model writing what the stage-2 model writes. 0: no warm-up.
    prompt_warmup_steps: int = 100
    prompt_warmup_learning_rate: float = 1e-2
    train_model: bool = True  # False: only the terrain prompt learns, the LM stays the stage-2 model
    learning_rate: float = 1e-5  # the LM's
    prompt_learning_rate: float = 1e-3
    kl_coef: float = 0.05
    max_new_tokens: int = 384
    temperature: float = 1.0
    micro_batch: int = 8  # samples per forward/backward pass
    max_grad_norm: float = 1.0
    failure_reward: float = -10.0  # what a program that walks nowhere earns (a backwards walker earns < 0)
    sim_seconds: float = 10.0
    evaluator_workers: int = 2
    seed: int = 0
    start: str = PROGRAM_START  # the text every sample continues; the program is start + sample
    device: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.terrains, str):
            object.__setattr__(self, "terrains", tuple(t for t in self.terrains.split(",") if t))
        if not isinstance(self.terrains, tuple | list) or not all(isinstance(t, str) for t in self.terrains):
            raise ConfigError(f"terrains must be terrain names, got {self.terrains!r}")
        object.__setattr__(self, "terrains", tuple(Terrain.named(t).kind.value for t in self.terrains))
        if not self.terrains or len(set(self.terrains)) != len(self.terrains):
            raise ConfigError(f"terrains: name each terrain once, at least one; got {list(self.terrains)}")
        for name in ("iterations", "samples_per_iteration", "prompt_tokens", "max_new_tokens", "micro_batch",
                     "evaluator_workers"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        samples, terrains = self.samples_per_iteration, len(self.terrains)
        if samples % terrains or samples < 2 * terrains:
            raise ConfigError(f"samples_per_iteration ({samples}) must be a multiple of the {terrains} "
                              "terrains, at least 2 per terrain (a group needs a spread)")  # fmt: skip
        warmup = self.prompt_warmup_steps
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ConfigError(f"prompt_warmup_steps must be an integer >= 0, got {warmup!r}")
        for name in ("learning_rate", "prompt_learning_rate", "prompt_warmup_learning_rate", "kl_coef",
                     "temperature", "max_grad_norm", "sim_seconds"):  # fmt: skip
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if (
            isinstance(self.failure_reward, bool)
            or not isinstance(self.failure_reward, int | float)
            or not (math.isfinite(self.failure_reward))
        ):
            raise ConfigError(f"failure_reward must be a finite number, got {self.failure_reward!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        threads = self.threads
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads must be an integer >= 1 (or unset: every core), got {threads!r}")
        if not isinstance(self.start, str) or not self.start:
            raise ConfigError(f"start must be the opening text of a program, got {self.start!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")

    @property
    def group_size(self) -> int:
        return self.samples_per_iteration // len(self.terrains)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"terrains": list(self.terrains)}


@dataclass(frozen=True, kw_only=True)
class IterationReport:
    """One iteration, per terrain: the mean and best reward of its samples and the share that walked."""

    iteration: int  # 1-based: iterations done
    iterations: int
    mean_reward: dict[str, float]
    best_reward: dict[str, float]
    walked: dict[str, float]
    kl: float  # mean per-token KL estimate to the stage-2 model
    loss: float
    seconds: float


@dataclass(kw_only=True)
class InventProgress:
    step: int = 0  # iterations done (named `step` for the shared state saving)
    history: list[dict[str, Any]] = field(default_factory=list)  # every IterationReport, as JSON
    train_s: float = 0.0


@dataclass(frozen=True)
class InventResult:
    path: Path
    iterations: int
    resumed_from: int
    history: list[dict[str, Any]]


OnIteration = Callable[[IterationReport], None]


def invent(
    config: InventConfig, stage2: str | Path, out_dir: str | Path, *, on_iteration: OnIteration | None = None
) -> InventResult:
    """Fine-tunes the stage-2 model at `stage2` with terrain conditioning and RL, and writes into `out_dir`
    a checkpoint: the LM (loadable wherever a model name is taken), its terrain prompt and invent.json (the
    config and the reward history). Run again on the same `out_dir`, it resumes from the last finished
    iteration. If `on_iteration` raises (to stop), that iteration is already saved."""
    out = Path(out_dir)
    finished = _finished(out, config, str(stage2))
    if finished is not None:
        return finished
    trainer = _Trainer(config, str(stage2), out)
    resumed_from = trainer.progress.step
    with EvaluatorPool(workers=config.evaluator_workers) as pool:
        while trainer.progress.step < config.iterations:
            report = trainer.iteration(pool)
            if on_iteration is not None:
                on_iteration(report)
    trainer.export(str(stage2))
    return InventResult(out, trainer.progress.step, resumed_from, trainer.progress.history)


def _finished(out: Path, config: InventConfig, stage2: str) -> InventResult | None:
    """The checkpoint already in `out` when it is this training's, finished; another's is a StateError."""
    if not (out / INVENT_MANIFEST).is_file():
        return None
    manifest = read_invent_manifest(out)
    if manifest["config"] != json.loads(json.dumps(config.to_json())) or manifest["stage2"] != stage2:
        raise StateError(
            f"{out} holds the stage-3 checkpoint of another training; choose another output directory"
        )
    return InventResult(out, manifest["iterations"], manifest["iterations"], manifest["history"])


def rewards(results: Sequence[EvalResult], failure_reward: float) -> list[float]:
    """The fitness of each walker that was simulated to the end, `failure_reward` for the rest."""
    return [r.fitness if r.ok and r.fitness is not None and math.isfinite(r.fitness) else failure_reward
            for r in results]  # fmt: skip


def group_advantages(values: Sequence[float]) -> list[float]:
    """Each reward against its group's mean, in units of the group's standard deviation (0 if all equal)."""
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return [(v - mean) / spread if spread > 1e-8 else 0.0 for v in values]


class _Trainer:
    def __init__(self, config: InventConfig, stage2: str, out: Path) -> None:
        import torch

        from elm_core.training._terrain_model import ConditionedLM, TerrainPrompt, end_ids

        self.config, self.out = config, out
        settings = HFConfig(device=config.device, dtype="float32", threads=config.threads)
        generator = load_generator(stage2, settings, backend="hf")
        if not isinstance(generator, HFGenerator):
            raise ConfigError(f"stage 3 needs a transformers model; {stage2!r} is not one")
        lm, self.tokenizer, self.device = generator.model, generator.tokenizer, generator.device
        torch.manual_seed(config.seed)
        self.reference = ConditionedLM(copy.deepcopy(lm) if config.train_model else lm, None).eval()
        self.reference.requires_grad_(False)
        embeddings = lm.get_input_embeddings().weight.detach()
        seeded = torch.Generator().manual_seed(config.seed)
        prompt = TerrainPrompt.initialised(config.terrains, config.prompt_tokens, embeddings, seeded)
        prompt = prompt.to(self.device)
        lm.requires_grad_(config.train_model)
        self.policy = ConditionedLM(lm, prompt)
        groups = [{"params": list(prompt.parameters()), "lr": config.prompt_learning_rate}]
        if config.train_model:
            groups.append({"params": list(lm.parameters()), "lr": config.learning_rate})
        self.optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
        self.start = self.tokenizer(config.start, return_tensors="pt").input_ids[0].to(self.device)
        self.ends = end_ids(lm, self.tokenizer)
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self.ends)
        )
        # a stopped training may be resumed with more or fewer iterations: the rest must be the same
        self.belongs_to = {"config": config.to_json() | {"iterations": None}, "stage2": stage2}
        saved = load_state(out, self.policy, self.optimizer, self.belongs_to, progress_type=InventProgress)
        if saved is None and config.prompt_warmup_steps:
            self._warm_up_prompts(dataset_programs(stage2))
        self.progress = saved or InventProgress()

    def _warm_up_prompts(self, programs: list[str]) -> None:
        """Fits each terrain's prompt to the stage-2 dataset's programs, the LM frozen (see InventConfig)."""
        import torch

        config, opening = self.config, self.start.tolist()
        tokenized = (self.tokenizer(p).input_ids for p in programs)
        rows = [ids[len(opening) : len(opening) + config.max_new_tokens] + [min(self.ends)]
                for ids in tokenized if ids[: len(opening)] == opening]  # fmt: skip
        if not rows:
            raise StateError(f"no program of the stage-2 dataset opens with the start {config.start!r}")
        prompt = self.policy.prompt
        assert prompt is not None
        frozen = [p for p in self.policy.lm.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        optimizer = torch.optim.Adam(prompt.parameters(), lr=config.prompt_warmup_learning_rate)
        for _ in range(config.prompt_warmup_steps):
            picked = [rows[int(i)] for i in torch.randint(len(rows), (config.micro_batch,))]
            width = max(len(r) for r in picked)
            sample = torch.tensor([r + [self.pad_id] * (width - len(r)) for r in picked], device=self.device)
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in picked], device=self.device)
            terrains = torch.randint(len(config.terrains), (len(picked),), device=self.device)
            logp = self.policy.token_logprobs(terrains, self.start, sample, mask)
            (-logp.sum() / mask.sum()).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        for p in frozen:
            p.requires_grad_(True)

    def iteration(self, pool: EvaluatorPool) -> IterationReport:
        import torch

        from elm_core.training._terrain_model import decode, sample_mask

        config, started = self.config, time.perf_counter()
        self.policy.eval()
        samples, masks, terrain_ids, rewards_, advantages = [], [], [], [], []
        report: dict[str, dict[str, float]] = {"mean": {}, "best": {}, "walked": {}}
        for terrain in config.terrains:
            ids = self.policy.prompt.ids([terrain] * config.group_size)  # type: ignore[union-attr]
            sample = self.policy.sample(ids, self.start, config.group_size, temperature=config.temperature,
                                        max_new_tokens=config.max_new_tokens, pad_id=self.pad_id)  # fmt: skip
            mask = sample_mask(sample, self.ends)
            programs = [config.start + text for text in decode(self.tokenizer, sample, mask)]
            results = pool.evaluate(programs, sim_config=SimConfig(seconds=config.sim_seconds),
                                    terrain=Terrain.named(terrain))  # fmt: skip
            earned = rewards(results, config.failure_reward)
            report["mean"][terrain] = sum(earned) / len(earned)
            report["best"][terrain] = max(earned)
            report["walked"][terrain] = sum(r.ok for r in results) / len(results)
            samples.append(sample)
            masks.append(mask)
            terrain_ids.append(ids)
            rewards_ += earned
            advantages += group_advantages(earned)
        loss, kl = self._update(samples, masks, terrain_ids, torch.tensor(advantages, device=self.device))
        self.progress.step += 1
        seconds = time.perf_counter() - started
        self.progress.train_s += seconds
        result = IterationReport(iteration=self.progress.step, iterations=config.iterations,
                                 mean_reward=report["mean"], best_reward=report["best"],
                                 walked=report["walked"], kl=kl, loss=loss, seconds=seconds)  # fmt: skip
        self.progress.history.append(asdict(result))
        save_state(self.out, self.policy, self.optimizer, self.progress, self.belongs_to)
        return result

    def _update(
        self, samples: list[Any], masks: list[Any], terrain_ids: list[Any], advantages: Any
    ) -> tuple[float, float]:
        """One GRPO step over the iteration's samples, in micro-batches; returns (loss, mean KL per token)."""
        import torch

        sample = _pad_cat(samples, self.pad_id)
        mask = _pad_cat(masks, 0)
        ids = torch.cat(terrain_ids)
        tokens = max(int(mask.sum()), 1)
        self.policy.train()
        total_loss = total_kl = 0.0
        for at in range(0, sample.shape[0], self.config.micro_batch):
            part = slice(at, at + self.config.micro_batch)
            logp = self.policy.token_logprobs(ids[part], self.start, sample[part], mask[part])
            with torch.no_grad():
                reference = self.reference.token_logprobs(None, self.start, sample[part], mask[part])
            log_ratio = (reference - logp) * mask[part]
            kl = (torch.exp(log_ratio) - log_ratio - 1) * mask[part]  # k3: unbiased, always >= 0
            loss = (-advantages[part, None] * logp + self.config.kl_coef * kl).sum() / tokens
            loss.backward()
            total_loss += loss.item()
            total_kl += kl.sum().item() / tokens
        if self.config.max_grad_norm > 0:
            weights = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(weights, self.config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total_loss, total_kl

    def export(self, stage2: str) -> None:
        """The LM and tokenizer (a plain checkpoint), the terrain prompt and invent.json; no more state."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.policy.lm.save_pretrained(self.out)
        self.tokenizer.save_pretrained(self.out)
        self.policy.prompt.save(self.out)  # type: ignore[union-attr]
        manifest = {"stage2": stage2, "config": self.config.to_json(), "iterations": self.progress.step,
                    "train_s": self.progress.train_s, "history": self.progress.history,
                    "created_at": time.time()}  # fmt: skip
        (self.out / INVENT_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        remove_state(self.out)


def _pad_cat(parts: list[Any], value: int) -> Any:
    import torch

    width = max(p.shape[1] for p in parts)
    return torch.cat([torch.nn.functional.pad(p, (0, width - p.shape[1]), value=value) for p in parts])


def dataset_programs(stage2: str | Path) -> list[str]:
    """The programs the stage-2 model was trained on (its programs.jsonl, training split)."""
    path = Path(stage2) / PROGRAMS_FILE
    if not path.is_file():
        raise StateError(f"{stage2} has no {PROGRAMS_FILE}: give the stage-2 checkpoint `elm train pretrain` "
                         "wrote (or set prompt_warmup_steps = 0)")  # fmt: skip
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    programs = [row["source"] for row in rows if row.get("split") == "train"]
    if not programs:
        raise StateError(f"{path} holds no training programs: the stage-2 dataset is empty")
    return programs


def read_invent_manifest(checkpoint: str | Path) -> dict[str, Any]:
    path = Path(checkpoint) / INVENT_MANIFEST
    if not path.is_file():
        raise StateError(f"{checkpoint} is not a stage-3 checkpoint (no {INVENT_MANIFEST})")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
