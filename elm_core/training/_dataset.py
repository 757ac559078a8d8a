"""The fine-tuning dataset of one run: its accepted mutations as examples, deduplicated, split and hashed."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from elm_core.errors import ConfigError
from elm_core.mutation import PromptStyle
from elm_core.qd import CROSSOVER
from elm_core.store import MutationRecord, SQLiteStore
from elm_core.training._examples import Example, canonical, example_for

# GP mutations have no prompt style of their own: they are laid out like the default model's prompts.
DEFAULT_STYLE = PromptStyle.REWRITE
TRAIN_FILE, VALIDATION_FILE, DATASET_MANIFEST_FILE = "train.jsonl", "validation.jsonl", "dataset.json"
_PROMPT_STYLES = frozenset(style.value for style in PromptStyle)


@dataclass(frozen=True, kw_only=True)
class DatasetConfig:
    """Which mutations become examples, in what layout, and how many are held out."""

    include_ran: bool = False  # every mutation whose child ran, not only those the archive accepted
    validation_fraction: float = 0.1
    style: PromptStyle | None = None  # one layout for all; None: each LLM mutation in its own style

    def __post_init__(self) -> None:
        if not isinstance(self.include_ran, bool):
            raise ConfigError(f"include_ran must be true or false, got {self.include_ran!r}")
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
            raise ConfigError(f"validation_fraction must be a number in [0, 1), got {fraction!r}")
        if self.style is not None:
            try:
                object.__setattr__(self, "style", PromptStyle(self.style))
            except ValueError as e:
                styles = ", ".join(s.value for s in PromptStyle)
                raise ConfigError(f"style must be one of {styles} or null, got {self.style!r}") from e


@dataclass(frozen=True, kw_only=True)
class DatasetCounts:
    mutations: int  # rows of the run's mutation log
    selected: int  # accepted (or, with include_ran, ran) mutations with a child
    unrepresentable: int  # selected, but no completion in the layout reproduces the child exactly
    duplicates: int  # same prompt and completion as an earlier example
    train: int
    validation: int


@dataclass(frozen=True, kw_only=True)
class Dataset:
    run_id: str
    config: DatasetConfig
    train: tuple[Example, ...]
    validation: tuple[Example, ...]
    sha256: str  # over the examples' JSON lines, sorted
    counts: DatasetCounts


def build_dataset(
    store: SQLiteStore,
    run_id: str,
    *,
    include_ran: bool = False,
    validation_fraction: float = 0.1,
    style: PromptStyle | None = None,
) -> Dataset:
    """The examples of `run_id`'s mutation log, split by a hash of the prompt (so the split never changes
    and equal prompts never straddle it). An unknown run is a NotFoundError."""
    config = DatasetConfig(include_ran=include_ran, validation_fraction=validation_fraction, style=style)
    mutations = selected = unrepresentable = 0
    examples: dict[tuple[str, str], Example] = {}
    sources = _Sources(store, run_id)
    for mutation in store.iter_mutations(run_id):
        mutations += 1
        if mutation.child_id is None or not (mutation.inserted or (config.include_ran and mutation.ran)):
            continue
        selected += 1
        example = _example(mutation, mutation.child_id, sources, config.style)
        if example is None:
            unrepresentable += 1
        else:
            examples.setdefault((example.prompt_key, example.completion), example)
    unique = list(examples.values())
    validation = tuple(e for e in unique if _held_out(e, config.validation_fraction))
    train = tuple(e for e in unique if not _held_out(e, config.validation_fraction))
    counts = DatasetCounts(
        mutations=mutations,
        selected=selected,
        unrepresentable=unrepresentable,
        duplicates=selected - unrepresentable - len(unique),
        train=len(train),
        validation=len(validation),
    )
    return Dataset(
        run_id=run_id, config=config, train=train, validation=validation, sha256=_hash(unique), counts=counts
    )


def write_dataset(dataset: Dataset, directory: str | Path) -> Path:
    """Writes train.jsonl, validation.jsonl, then dataset.json (the manifest, so last); returns the
    directory. Writing again overwrites."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for name, examples in ((TRAIN_FILE, dataset.train), (VALIDATION_FILE, dataset.validation)):
        lines = [json.dumps(example.to_json(), ensure_ascii=False) + "\n" for example in examples]
        (path / name).write_text("".join(lines), encoding="utf-8")
    manifest = {
        "run_id": dataset.run_id,
        "config": asdict(dataset.config),
        "counts": asdict(dataset.counts),
        "sha256": dataset.sha256,
        "created_at": time.time(),
    }
    (path / DATASET_MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def read_examples(path: str | Path) -> list[Example]:
    """The examples of a JSON Lines file `write_dataset` wrote."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [Example.from_json(json.loads(line)) for line in lines if line.strip()]


class _Sources:
    """Program sources by individual id, read from the store once each."""

    def __init__(self, store: SQLiteStore, run_id: str) -> None:
        self._store, self._run_id = store, run_id
        self._cache: dict[int, str] = {}

    def __getitem__(self, individual_id: int) -> str:
        if individual_id not in self._cache:
            self._cache[individual_id] = self._store.individual(self._run_id, individual_id).source
        return self._cache[individual_id]


def _own_style(mutation: MutationRecord) -> PromptStyle | None:
    return PromptStyle(mutation.style) if mutation.style in _PROMPT_STYLES else None


def _example(
    mutation: MutationRecord, child_id: int, sources: _Sources, layout: PromptStyle | None
) -> Example | None:
    if mutation.operator == CROSSOVER:  # its prompt showed other elites, which the log does not keep
        return None
    own = _own_style(mutation)
    style = layout or own or DEFAULT_STYLE
    return example_for(
        style=style,
        message=mutation.message,
        parent=sources[mutation.parent_id],
        child=sources[child_id],
        raw_output=mutation.raw_output if own is style else None,
        run_id=mutation.run_id,
        parent_id=mutation.parent_id,
        child_id=child_id,
    )


def _held_out(example: Example, fraction: float) -> bool:
    digest = hashlib.sha256(example.prompt_key.encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


def _hash(examples: list[Example]) -> str:
    lines = sorted(canonical(example.to_json()) for example in examples)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
