"""The OpenAI-compatible backend: a model served over HTTP by vLLM, llama.cpp's server, SGLang or any other
server that speaks the OpenAI completions API, used as a `CodeGenerator`.

This is how a model too large for the machine running the evolution joins a run: the user serves it on a
GPU machine and points `base_url` at it. Plain-text prompts go to `/completions`, chat prompts to
`/chat/completions`. The prompts of one `generate` call are sent `concurrency` at a time and the server
batches them itself. HTTP is the standard library's, so the backend needs no extra package.

Failures that are safe to repeat (connection refused or reset, timeouts, HTTP 429 and 5xx) are retried with
exponential backoff, honouring Retry-After; anything else, and retries running out, raise
`BackendUnavailableError` naming the URL, the HTTP status and what the server said.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import math
import os
import random
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from elm_core.errors import BackendUnavailableError, ConfigError
from elm_core.models._types import Generation, Prompt, SamplingConfig

API_KEY_ENV = "OPENAI_API_KEY"
MAX_STOPS = 4  # the OpenAI API takes at most four stop sequences; every one is also applied here
_MAX_WAIT_S = 30.0  # the longest pause between attempts, a server's Retry-After included
_SNIPPET_CHARS = 300  # how much of an unexpected body an error message quotes


@dataclass(frozen=True, kw_only=True)
class OpenAIConfig:
    base_url: str  # the API root, version included: "http://127.0.0.1:8000/v1"
    model: str  # the model's name on the server (vLLM: --served-model-name, else the path it loaded)
    api_key: str | None = field(default=None, repr=False)  # None = $OPENAI_API_KEY; sent as a Bearer token
    timeout_s: float = 120.0  # per request: the server must answer within it
    retries: int = 4  # attempts per request, the first included
    concurrency: int = 8  # requests in flight at once
    backoff_s: float = 0.5  # pause before the second attempt; doubles before each later one

    def __post_init__(self) -> None:
        if not _is_http_url(self.base_url):
            raise ConfigError(f"base_url must be an http(s):// URL with a host, got {self.base_url!r}")
        if not self.model.strip():
            raise ConfigError(f"model must be the server's non-empty model name, got {self.model!r}")
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ConfigError(f"timeout_s must be a finite number of seconds > 0, got {self.timeout_s}")
        if self.retries < 1:
            raise ConfigError(f"retries must be >= 1 (attempts, the first included), got {self.retries}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if not (math.isfinite(self.backoff_s) and self.backoff_s >= 0):
            raise ConfigError(f"backoff_s must be a finite number of seconds >= 0, got {self.backoff_s}")


class OpenAIGenerator:
    """A model behind an OpenAI-compatible server. Nothing is contacted until the first `generate`."""

    def __init__(self, config: OpenAIConfig) -> None:
        self.config = config
        self.name = f"openai:{config.model}"
        self._base_url = config.base_url.rstrip("/")
        api_key = config.api_key if config.api_key is not None else os.environ.get(API_KEY_ENV)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._jitter = random.Random()  # its own: backoff draws never move a seeded global RNG

    def generate(
        self, prompts: Sequence[Prompt], sampling: SamplingConfig, *, seed: int | None = None
    ) -> list[Generation]:
        if not prompts:
            return []
        seeds = [None if seed is None else seed + i for i in range(len(prompts))]
        workers = min(self.config.concurrency, len(prompts))
        with ThreadPoolExecutor(workers, thread_name_prefix="openai") as pool:
            return list(pool.map(lambda p, s: self._complete(p, sampling, s), prompts, seeds))

    def _complete(self, prompt: Prompt, sampling: SamplingConfig, seed: int | None) -> Generation:
        chat = prompt.messages is not None
        url = f"{self._base_url}/{'chat/completions' if chat else 'completions'}"
        response = self._post(url, _payload(self.config.model, prompt, sampling, seed))
        return _generation(response, url, chat, sampling.stop)

    def _post(self, url: str, payload: dict[str, Any]) -> Any:
        """The parsed JSON answer, after as many attempts as `retries` allows for failures safe to repeat."""
        retrying = Retrying(
            stop=stop_after_attempt(self.config.retries),
            wait=self._wait_s,
            retry=retry_if_exception_type(_Retryable),
            reraise=True,
        )
        try:
            return retrying(self._attempt, url, json.dumps(payload).encode())
        except _Retryable as e:
            attempts = f"{self.config.retries} attempt{'s' if self.config.retries > 1 else ''}"
            raise BackendUnavailableError(f"POST {url} failed after {attempts}: {e}") from e

    def _attempt(self, url: str, data: bytes) -> Any:
        request = urllib.request.Request(url, data=data, headers=self._headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as e:
            raise _http_failure(url, e) from e
        except (OSError, http.client.HTTPException) as e:  # refused, reset, timed out, cut off mid-answer
            raise _Retryable(_connection_failure(e, self.config.timeout_s)) from e
        try:
            return json.loads(body)
        except ValueError as e:
            raise BackendUnavailableError(f"POST {url} answered, not in JSON: {_snippet(body)}") from e

    def _wait_s(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, _Retryable) and error.retry_after_s is not None:
            return min(error.retry_after_s, _MAX_WAIT_S)
        backoff = self.config.backoff_s * 2 ** (state.attempt_number - 1)
        return min(
            backoff * self._jitter.uniform(0.5, 1.0), _MAX_WAIT_S
        )  # jitter: parallel requests spread out


class _Retryable(Exception):
    """A failure that is safe to repeat; `retry_after_s` is the server's Retry-After, when it sent one."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _is_http_url(url: str) -> bool:
    if not url.isascii() or any(ch.isspace() or not ch.isprintable() for ch in url):
        return False  # http.client would refuse it on every request
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises ValueError when the port is not a number in range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _payload(model: str, prompt: Prompt, sampling: SamplingConfig, seed: int | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": model}
    if prompt.messages is not None:
        payload["messages"] = [{"role": role, "content": content} for role, content in prompt.messages]
    else:
        payload["prompt"] = prompt.text
    payload.update(max_tokens=sampling.max_new_tokens, temperature=sampling.temperature, top_p=sampling.top_p)
    stops = [stop for stop in sampling.stop if stop][:MAX_STOPS]
    if stops:
        payload["stop"] = stops
    if seed is not None:
        payload["seed"] = seed
    return payload


def _generation(response: Any, url: str, chat: bool, stops: Sequence[str]) -> Generation:
    choice = _first_choice(response, url)
    text, cut = _cut_at_stop(_choice_text(choice, url, chat), stops)
    finish = "length" if choice.get("finish_reason") == "length" and not cut else "stop"
    usage = response.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return Generation(text=text, finish_reason=finish, prompt_tokens=_count(usage, "prompt_tokens"),
                      completion_tokens=_count(usage, "completion_tokens"))  # fmt: skip


def _first_choice(response: Any, url: str) -> dict[str, Any]:
    choices = response.get("choices") if isinstance(response, dict) else None
    if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
        raise BackendUnavailableError(f"POST {url} answered without choices: {_snippet(response)}")
    choice: dict[str, Any] = choices[0]
    return choice


def _choice_text(choice: dict[str, Any], url: str, chat: bool) -> str:
    """`text` of a completion; `message.content` of a chat answer (null when the model said nothing)."""
    message = choice.get("message")
    text = (message.get("content", "") or "") if chat and isinstance(message, dict) else choice.get("text")
    if not isinstance(text, str):
        raise BackendUnavailableError(f"POST {url} answered a choice without text: {_snippet(choice)}")
    return text


def _cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """The text before the earliest stop sequence: servers may ignore stops, or take only the first four."""
    cuts = [i for i in (text.find(stop) for stop in stops if stop) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and value >= 0 else 0


def _http_failure(url: str, error: urllib.error.HTTPError) -> Exception:
    """A _Retryable for 429 and 5xx, else the BackendUnavailableError to raise at once."""
    detail = f"HTTP {error.code}: {_server_message(_read(error)) or error.reason}"
    if error.code == 429 or error.code >= 500:
        return _Retryable(detail, retry_after_s=_retry_after_s(error.headers.get("Retry-After")))
    return BackendUnavailableError(f"POST {url} failed: {detail}")


def _read(error: urllib.error.HTTPError) -> bytes:
    try:
        with error:
            return error.read()
    except (OSError, http.client.HTTPException):
        return b""


def _server_message(body: bytes) -> str:
    """The server's own words: OpenAI's {"error": {"message"}}, or {"message"}, or the start of the body."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:_SNIPPET_CHARS]
    if not isinstance(parsed, dict):
        return _snippet(parsed)
    error = parsed.get("error")
    for message in (error.get("message") if isinstance(error, dict) else error, parsed.get("message")):
        if isinstance(message, str) and message:
            return message
    return _snippet(parsed)


def _retry_after_s(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None when absent or bad."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _connection_failure(error: BaseException, timeout_s: float) -> str:
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    return f"the connection failed ({str(reason) or type(reason).__name__})"


def _snippet(value: Any) -> str:
    text = value.decode(errors="replace") if isinstance(value, bytes) else json.dumps(value)
    return repr(text[:_SNIPPET_CHARS] + ("…" if len(text) > _SNIPPET_CHARS else ""))
