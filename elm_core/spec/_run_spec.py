"""The run spec: everything that defines a run, one typed and nested dataclass, stored with the run as JSON.

Sections: `[evaluation]` (the terrain and the simulator settings, which travel to every evaluator),
`[mutation]` (operator, model, prompt style, sampling, the operator mix), `[loop]`, `[archive]`,
`[finetune]` (rounds during a run on a coordinator) and `[embedded]` (what only `elm run` uses: this
process tree's evaluator lanes and model backend). A stored spec is decoded by `run_spec` and nowhere else.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from elm_core.errors import ConfigError
from elm_core.models import BACKENDS, SamplingConfig
from elm_core.mutation import OPERATORS, PAPER, PromptStyle
from elm_core.qd import ArchiveConfig, LoopConfig, OperatorMix
from elm_core.sodarace import SimConfig, Terrain
from elm_core.store import RunRecord


@dataclass(frozen=True, kw_only=True)
class EvaluationSpec:
    """The world walkers are simulated in. Every evaluator a run uses simulates with exactly these."""

    terrain: str = "flat"
    sim: SimConfig = field(default_factory=SimConfig)

    def __post_init__(self) -> None:
        Terrain.named(self.terrain)  # raises ConfigError naming the choices

    @property
    def terrain_model(self) -> Terrain:
        return Terrain.named(self.terrain)


@dataclass(frozen=True, kw_only=True)
class MutationSpec:
    """How children are made: `llm` (a model, its prompt style, sampling and operator mix) or `gp`."""

    operator: str = "llm"
    model: str | None = None  # any accepted model name; None = $ELM_MODEL or the default (embedded), or
    # the model server's model (coordinator)
    style: str | None = None  # LLM prompt style; None = the model's own
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    operators: OperatorMix = field(default_factory=OperatorMix)  # the LLM's mix; GP ignores it

    def __post_init__(self) -> None:
        if self.operator not in OPERATORS:
            raise ConfigError(f"[mutation] operator must be one of {OPERATORS}, got {self.operator!r}")
        styles = [style.value for style in PromptStyle]
        if self.style is not None and self.style not in styles:
            raise ConfigError(f"[mutation] style must be one of {', '.join(styles)}, got {self.style!r}")

    def operator_mix(self) -> OperatorMix:
        """The mix the loop plans with: the configured one for the LLM; GP takes no instructions."""
        return self.operators if self.operator == "llm" else OperatorMix.only(PAPER)


@dataclass(frozen=True, kw_only=True)
class FinetuneRoundsSpec:
    """Fine-tuning rounds during a run on a coordinator: after every `every_batches` committed batches (when
    no round of this run is under way) the trainer fine-tunes the model server's current model on the run's
    mutation log and the model server reloads the result. `elm run` refuses a spec that asks for rounds."""

    every_batches: int = 0  # 0: never
    method: str = "lora"  # full or lora
    max_steps: int = 200
    include_ran: bool = False  # learn from every mutation whose child ran, not only the accepted ones

    def __post_init__(self) -> None:
        if self.every_batches < 0 or self.max_steps < 1:
            raise ConfigError(
                f"[finetune] needs every_batches >= 0 and max_steps >= 1, "
                f"got {self.every_batches} and {self.max_steps}"
            )
        if self.method not in ("full", "lora"):
            raise ConfigError(f"[finetune] method must be full or lora, got {self.method!r}")

    def job_settings(self) -> dict[str, object]:
        """The trainer's finetune job settings for one round."""
        return {"method": self.method, "max_steps": self.max_steps, "include_ran": self.include_ran}


@dataclass(frozen=True, kw_only=True)
class EmbeddedSpec:
    """What only `elm run` uses: its own evaluator lanes and how it loads the model. A coordinator has its
    evaluator fleet and model server for these, and refuses a spec that sets them."""

    workers: int | None = None  # sandboxed evaluator lanes; None = one per CPU
    backend: str = "auto"  # hf, llamacpp, or auto: llama.cpp on CPU when the model has a GGUF
    evaluators: str = (
        "local"  # "local": a sandbox pool in this process tree; "docker:N": N evaluator containers
    )

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"[embedded] workers must be >= 1, got {self.workers}")
        kind, _, count = self.evaluators.partition(":")
        if not (self.evaluators == "local" or (kind == "docker" and count.isdigit() and int(count) >= 1)):
            raise ConfigError(
                f"[embedded] evaluators must be local or docker:N (N >= 1), got {self.evaluators!r}"
            )
        if self.backend not in BACKENDS:
            raise ConfigError(f"[embedded] backend must be one of {BACKENDS}, got {self.backend!r}")

    @property
    def lanes(self) -> int:
        return self.workers or os.cpu_count() or 1

    @property
    def containers(self) -> int | None:
        """How many evaluator containers `docker:N` asks for; None for the local pool."""
        return int(self.evaluators.partition(":")[2]) if self.evaluators != "local" else None

    def settings_given(self) -> list[str]:
        """The settings that differ from their defaults, as `[embedded] name`."""
        default = EmbeddedSpec()
        return [f"[embedded] {f.name}" for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(default, f.name)]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    name: str = "elm"
    seeds: tuple[str, ...] = ("square",)  # seed names or program files
    rng_seed: int = 0
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)
    mutation: MutationSpec = field(default_factory=MutationSpec)
    loop: LoopConfig = field(default_factory=LoopConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    finetune: FinetuneRoundsSpec = field(default_factory=FinetuneRoundsSpec)
    embedded: EmbeddedSpec = field(default_factory=EmbeddedSpec)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed name or program file")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        try:
            values = json.loads(text) if text.strip() else {}
            if not isinstance(values, dict):
                raise ConfigError("the run spec must be a JSON object of run settings")
            return cls.from_mapping(values)
        except (json.JSONDecodeError, RecursionError) as e:  # RecursionError: nested too deep
            raise ConfigError(f"the run spec is not JSON of a usable depth: {e}") from e

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RunSpec:
        """From parsed TOML/JSON: top-level fields plus the section tables. Unknown names are errors."""
        return _build(cls, _nested(values), "")

    def replace(self, **changes: Any) -> RunSpec:
        return dataclasses.replace(self, **changes)

    def replace_in(self, section: str, **changes: Any) -> RunSpec:
        """The spec with some settings of one section changed: `replace_in("loop", batch_size=4)`."""
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **changes)})


class _RunSource(Protocol):
    def get_run(self, run_id: str) -> RunRecord: ...


def run_spec(store: _RunSource, run_id: str) -> RunSpec:
    """The stored run's spec: the one place a stored spec is decoded."""
    return RunSpec.from_json(store.get_run(run_id).config_json)


# Where the settings of the flat layout (specs stored before the sections existed) now live.
_FLAT_LAYOUT = {
    "operator": ("mutation", "operator"),
    "model": ("mutation", "model"),
    "style": ("mutation", "style"),
    "sampling": ("mutation", "sampling"),
    "operators": ("mutation", "operators"),
    "terrain": ("evaluation", "terrain"),
    "sim_seconds": ("evaluation", "sim"),
    "backend": ("embedded", "backend"),
    "evaluator_workers": ("embedded", "workers"),
}


def _nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """Moves flat-layout settings into their sections, so that runs stored by earlier versions resume."""
    nested = {k: v for k, v in values.items() if k not in _FLAT_LAYOUT}
    for key in _FLAT_LAYOUT.keys() & values.keys():
        section, name = _FLAT_LAYOUT[key]
        table = nested.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] must be a table of settings")
        value = values[key]
        if key == "sim_seconds":
            table["sim"] = {"seconds": value, **table.get("sim", {})}
            continue
        if key == "evaluator_workers" and value == (os.cpu_count() or 1):
            value = None  # the flat layout stored the default as this machine's CPU count
        table.setdefault(name, value)
    return nested


def _build(kind: type, values: Any, path: str) -> Any:
    """A (nested) frozen dataclass from a mapping; unknown names and wrong shapes are ConfigErrors."""
    where = f"[{path}]" if path else "run settings"
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where} must be a table of settings")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = set(values) - set(fields)
    if unknown:
        names = ", ".join(sorted(unknown))
        raise ConfigError(f"unknown {where}: {names}; known: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(kind)
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            kwargs[name] = _build(hint, value, f"{path}.{name}" if path else name)
        elif not _fits(value, hint):
            raise ConfigError(f"{where} {name} must be {_type_name(hint)}, got {value!r}")
        else:
            kwargs[name] = _tupled(value)
    try:
        return kind(**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad {where}: {e}") from e


_SCALARS = (bool, int, float, str, type(None))


def _fits(value: Any, hint: Any) -> bool:
    """Whether a decoded value fits a scalar field's type (other types are checked by their dataclass)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if not all(option in _SCALARS for option in options):
        return True
    if isinstance(value, bool):
        return bool in options
    return isinstance(value, options) or (float in options and isinstance(value, int))


def _type_name(hint: Any) -> str:
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return " or ".join("none" if option is type(None) else option.__name__ for option in options)


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value
