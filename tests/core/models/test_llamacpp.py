"""The llama.cpp backend, on the real offline model's GGUF (pulled on first use) or $ELM_TEST_GGUF."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from elm_core.errors import BackendUnavailableError, ConfigError, StateError
from elm_core.models import Prompt, SamplingConfig
from elm_core.models._llamacpp import LlamaCppConfig, LlamaCppGenerator
from elm_core.models._registry import GGUF_FILE

GGUF_ENV = "ELM_TEST_GGUF"
SMALL = LlamaCppConfig(threads=1, parallel=4, context_per_sequence=512)  # 1 thread: least hurt by busy CPUs
CHAT = Prompt(messages=(("system", "You write Python."), ("user", "Write make_walker().")))
SHORT = Prompt(text="def make_walker():\n")
LONG = Prompt(text="def make_walker():\n    wc = walker_creator()\n" * 6)
GREEDY = SamplingConfig(max_new_tokens=12, temperature=0.0)


pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def gguf_path(request: pytest.FixtureRequest) -> Path:
    value = os.environ.get(GGUF_ENV)
    if value:
        return Path(value)
    return request.getfixturevalue("real_model_dir") / GGUF_FILE


@pytest.fixture(scope="module")
def generator(gguf_path: Path) -> Iterator[LlamaCppGenerator]:
    with LlamaCppGenerator(gguf_path, config=SMALL) as generator:
        yield generator


def test_one_generation_per_prompt_in_order(generator: LlamaCppGenerator) -> None:
    outputs = generator.generate([LONG, SHORT, CHAT], GREEDY)
    assert len(outputs) == 3
    assert outputs[0].prompt_tokens > outputs[1].prompt_tokens > 0
    assert outputs[2].prompt_tokens > 0
    for output in outputs:
        assert 0 < output.completion_tokens <= 12
        assert output.finish_reason in ("stop", "length")
    assert generator.generate([], GREEDY) == []


def test_greedy_is_deterministic(generator: LlamaCppGenerator) -> None:
    first = generator.generate([CHAT], GREEDY)[0]
    again = generator.generate([CHAT], GREEDY)[0]
    assert first.text and first.text == again.text


def test_sampling_is_reproducible_with_a_seed(generator: LlamaCppGenerator) -> None:
    sampling = SamplingConfig(max_new_tokens=16, temperature=1.0, top_p=0.95)
    first = generator.generate([SHORT], sampling, seed=7)[0]
    again = generator.generate([SHORT], sampling, seed=7)[0]
    assert first.text == again.text
    pair = generator.generate([SHORT, SHORT], sampling, seed=7)
    assert pair[0].text != pair[1].text  # each prompt gets its own seed: seed + index


def test_max_new_tokens_is_respected(generator: LlamaCppGenerator) -> None:
    output = generator.generate([LONG], SamplingConfig(max_new_tokens=5, temperature=0.0))[0]
    assert output.completion_tokens == 5
    assert output.finish_reason == "length" and output.truncated


def test_stop_sequences_cut_the_text(generator: LlamaCppGenerator) -> None:
    free = generator.generate([SHORT], SamplingConfig(max_new_tokens=24, temperature=0.0))[0]
    assert len(free.text) > 6
    stop = free.text[4:6]
    cut = generator.generate([SHORT], SamplingConfig(max_new_tokens=24, temperature=0.0, stop=(stop,)))[0]
    assert stop not in cut.text
    assert free.text.startswith(cut.text)
    assert cut.finish_reason == "stop"


def test_a_prompt_longer_than_the_context_is_a_backend_error(generator: LlamaCppGenerator) -> None:
    with pytest.raises(BackendUnavailableError, match="context"):
        generator.generate([Prompt(text="walker " * 1000)], GREEDY)


def test_the_http_listener_xllamacpp_starts_is_locked(generator: LlamaCppGenerator) -> None:
    url = f"{generator._server.listening_address}/v1/completions"
    body = json.dumps({"prompt": "def f():", "max_tokens": 2}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(request, timeout=10)
    assert refused.value.code == 401


def test_speculation_does_not_change_greedy_output(generator: LlamaCppGenerator, gguf_path: Path) -> None:
    copy = Prompt(text="def make_walker():\n    wc = walker_creator()\n" * 3 + "# the same again\n")
    sampling = SamplingConfig(max_new_tokens=48, temperature=0.0)
    config = LlamaCppConfig(threads=1, parallel=1, context_per_sequence=512, speculation="ngram-mod")
    with LlamaCppGenerator(gguf_path, config=config) as speculative:
        assert speculative.generate([copy], sampling)[0].text == generator.generate([copy], sampling)[0].text


def test_name_defaults_to_the_file_name(generator: LlamaCppGenerator, gguf_path: Path) -> None:
    assert generator.name == gguf_path.name


def test_a_closed_generator_refuses_to_generate(gguf_path: Path) -> None:
    config = LlamaCppConfig(threads=1, parallel=1, context_per_sequence=128)
    with LlamaCppGenerator(gguf_path, name="closing", config=config) as generator:
        assert generator.name == "closing"
    with pytest.raises(StateError, match="closing"):
        generator.generate([SHORT], GREEDY)


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    path = tmp_path / "absent.gguf"
    with pytest.raises(BackendUnavailableError, match=str(path)):
        LlamaCppGenerator(path)


def test_a_file_that_is_not_gguf_names_the_path(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(BackendUnavailableError, match="not a GGUF"):
        LlamaCppGenerator(path)


def test_a_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # makes `import xllamacpp` raise ImportError
    with pytest.raises(BackendUnavailableError, match="pip install xllamacpp"):
        LlamaCppGenerator(tmp_path / "model.gguf")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threads": 0},
        {"parallel": 0},
        {"context_per_sequence": 16},
        {"speculation": "eagle"},
        {"draft_tokens": 0},
    ],
    ids=["threads", "parallel", "context", "speculation", "draft_tokens"],
)
def test_bad_config_is_a_config_error(kwargs: dict) -> None:
    field = next(iter(kwargs))
    with pytest.raises(ConfigError, match=f"{field}.*got {kwargs[field]}"):
        LlamaCppConfig(**kwargs)


def test_the_default_config_uses_every_core() -> None:
    assert 1 <= LlamaCppConfig().n_threads <= (os.cpu_count() or 1)
    assert LlamaCppConfig(threads=3).n_threads == 3
