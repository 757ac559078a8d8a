"""The OpenAI-compatible backend against a real HTTP server on port 0, a stand-in for a user's vLLM server.

The stand-in answers /v1/completions and /v1/chat/completions as OpenAI-compatible servers do, with a
deterministic completion (a Python block printing the prompt), and records every request. It ignores `stop`,
as some servers do for some stops, so cutting at stop sequences is the client's job. Scripted replies (errors,
delays, broken bodies) are served first, one per request.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from elm_core.errors import BackendUnavailableError, ConfigError
from elm_core.models import Prompt, SamplingConfig
from elm_core.models._openai import API_KEY_ENV, OpenAIConfig, OpenAIGenerator, _retry_after_s

MODEL = "coder-7b"
SAMPLING = SamplingConfig(max_new_tokens=64, temperature=0.2, top_p=0.9)
CHAT = Prompt(messages=(("system", "You write Python."), ("user", "Write make_walker().")))


def block(prompt: str) -> str:
    """What the stand-in writes for a prompt; a "length" finish when max_tokens is 4 or fewer."""
    return f"```python\nprint({prompt!r})\n```\n# end"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # None: the echo answer; bytes: sent as they are; anything else: sent as JSON
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0
    drop: bool = False  # close the connection without answering


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeServer:
    script: list[Reply] = field(default_factory=list)  # served first, one per request
    delays: dict[str, float] = field(default_factory=dict)  # prompt text -> seconds before the echo answer
    seen: list[Seen] = field(default_factory=list)
    most_in_flight: int = 0
    closing: threading.Event = field(default_factory=threading.Event)
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        with self._lock:
            self.seen.append(Seen(path, headers, body))
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
            if self.script:
                return self.script.pop(0)
        return Reply(delay_s=self.delays.get(str(body.get("prompt")), 0.0))

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


def echo(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if path not in ("/v1/completions", "/v1/chat/completions"):
        return 404, {"error": {"message": f"no route {path}", "type": "NotFoundError", "code": 404}}
    chat = path.endswith("chat/completions")
    prompt = body["messages"][-1]["content"] if chat else body["prompt"]
    text = block(prompt)
    finish = "length" if body["max_tokens"] <= 4 else "stop"
    choice = {"index": 0, "finish_reason": finish, "logprobs": None}
    choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
    usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
    kind = "chat.completion" if chat else "text_completion"
    return 200, {"id": "cmpl-1", "object": kind, "model": body["model"], "choices": [choice], "usage": usage}


class Handler(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        fake: FakeServer = self.server.fake
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        reply = fake.receive(self.path, dict(self.headers), body)
        fake.closing.wait(reply.delay_s)
        fake.leave()
        if reply.drop or fake.closing.is_set():
            return
        status, payload = echo(self.path, body) if reply.body is None else (reply.status, reply.body)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self._send(status, data, reply.headers)

    def _send(self, status: int, data: bytes, headers: tuple[tuple[str, str], ...]) -> None:
        self.send_response(status)
        headers = (("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


Served = tuple[FakeServer, str]  # the stand-in and its base URL


@pytest.fixture
def server() -> Iterator[Served]:
    fake = FakeServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.fake = fake  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    fake.closing.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def no_api_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)


def generator(url: str, **overrides: Any) -> OpenAIGenerator:
    settings: dict[str, Any] = {"base_url": url, "model": MODEL, "backoff_s": 0.001, **overrides}
    return OpenAIGenerator(OpenAIConfig(**settings))


def error_reply(status: int, message: str, *headers: tuple[str, str]) -> Reply:
    body = {"error": {"message": message, "type": "BadRequestError", "param": None, "code": status}}
    return Reply(status=status, body=body, headers=headers)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- requests and answers ---


def test_a_text_prompt_posts_to_completions_and_parses_the_answer(server: Served) -> None:
    fake, url = server
    sampling = SamplingConfig(max_new_tokens=64, temperature=0.2, top_p=0.9, stop=("\nEND",))
    [output] = generator(url).generate([Prompt(text="def make_walker():")], sampling, seed=7)
    [request] = fake.seen
    assert request.path == "/v1/completions"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {"model": MODEL, "prompt": "def make_walker():", "max_tokens": 64,
                            "temperature": 0.2, "top_p": 0.9, "stop": ["\nEND"], "seed": 7}  # fmt: skip
    assert output.text == block("def make_walker():")
    assert output.finish_reason == "stop" and not output.truncated
    assert (output.prompt_tokens, output.completion_tokens) == (2, len(output.text.split()))


def test_a_chat_prompt_posts_messages_to_chat_completions(server: Served) -> None:
    fake, url = server
    [output] = generator(url).generate([CHAT], SAMPLING)
    [request] = fake.seen
    assert request.path == "/v1/chat/completions"
    assert request.body["messages"] == [
        {"role": "system", "content": "You write Python."},
        {"role": "user", "content": "Write make_walker()."},
    ]
    assert "prompt" not in request.body
    assert "seed" not in request.body and "stop" not in request.body  # nothing to send: nothing sent
    assert output.text == block("Write make_walker().")
    assert output.prompt_tokens == 2


def test_the_servers_length_finish_is_kept(server: Served) -> None:
    _, url = server
    [output] = generator(url).generate([CHAT], SamplingConfig(max_new_tokens=4))
    assert output.finish_reason == "length" and output.truncated


def test_order_is_kept_while_requests_run_in_parallel(server: Served) -> None:
    fake, url = server
    prompts = [Prompt(text=f"p{i}") for i in range(8)]
    fake.delays = {f"p{i}": 0.02 * (8 - i) for i in range(8)}  # the first prompts answer last
    outputs = generator(url, concurrency=4).generate(prompts, SAMPLING, seed=100)
    assert [o.text for o in outputs] == [block(f"p{i}") for i in range(8)]
    assert fake.most_in_flight == 4
    assert {r.body["prompt"]: r.body["seed"] for r in fake.seen} == {f"p{i}": 100 + i for i in range(8)}


def test_no_prompts_send_nothing(server: Served) -> None:
    fake, url = server
    assert generator(url).generate([], SAMPLING) == []
    assert fake.seen == []


def test_stops_are_cut_here_when_the_server_ignores_them(server: Served) -> None:
    fake, url = server
    stops = ("s1", "s2", "s3", "s4", "\n```")  # the fifth cannot even be sent: the API takes four
    [output] = generator(url).generate([Prompt(text="x")], SamplingConfig(max_new_tokens=4, stop=stops))
    assert fake.seen[0].body["stop"] == ["s1", "s2", "s3", "s4"]
    assert output.text == "```python\nprint('x')"
    assert output.finish_reason == "stop"  # the server said "length", but a stop sequence came first


def test_a_trailing_slash_in_base_url_is_fine(server: Served) -> None:
    fake, url = server
    generator(url + "/").generate([Prompt(text="x")], SAMPLING)
    assert fake.seen[0].path == "/v1/completions"


def test_name_names_the_backend_and_model() -> None:
    assert generator("http://127.0.0.1:1/v1").name == f"openai:{MODEL}"


# --- the API key ---


def test_the_configured_api_key_is_sent_as_a_bearer_token(
    server: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = server
    monkeypatch.setenv(API_KEY_ENV, "sk-env")
    generator(url, api_key="sk-config").generate([Prompt(text="x")], SAMPLING)
    assert fake.seen[0].headers["Authorization"] == "Bearer sk-config"


def test_the_api_key_defaults_to_the_environment(server: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, url = server
    monkeypatch.setenv(API_KEY_ENV, "sk-env")
    generator(url).generate([Prompt(text="x")], SAMPLING)
    assert fake.seen[0].headers["Authorization"] == "Bearer sk-env"


def test_no_api_key_sends_no_authorization(server: Served) -> None:
    fake, url = server
    generator(url).generate([Prompt(text="x")], SAMPLING)
    assert "Authorization" not in fake.seen[0].headers


def test_the_api_key_stays_out_of_the_configs_repr() -> None:
    assert "sk-secret" not in repr(OpenAIConfig(base_url="http://h/v1", model=MODEL, api_key="sk-secret"))


# --- retries and failures ---


def test_503_twice_then_200_succeeds(server: Served) -> None:
    fake, url = server
    fake.script = [error_reply(503, "overloaded"), error_reply(503, "overloaded")]
    [output] = generator(url, retries=4).generate([Prompt(text="x")], SAMPLING)
    assert output.text == block("x")
    assert len(fake.seen) == 3


def test_429_is_retried_after_the_servers_retry_after(server: Served) -> None:
    fake, url = server
    fake.script = [error_reply(429, "rate limited", ("Retry-After", "0"))]
    started = time.perf_counter()
    [output] = generator(url, backoff_s=30.0).generate([Prompt(text="x")], SAMPLING)
    assert time.perf_counter() - started < 2  # Retry-After: 0, not the 30 s backoff
    assert output.text == block("x")
    assert len(fake.seen) == 2


def test_a_dropped_connection_is_retried(server: Served) -> None:
    fake, url = server
    fake.script = [Reply(drop=True)]
    [output] = generator(url).generate([Prompt(text="x")], SAMPLING)
    assert output.text == block("x")
    assert len(fake.seen) == 2


def test_400_fails_at_once_with_the_servers_message(server: Served) -> None:
    fake, url = server
    fake.script = [error_reply(400, "max_tokens must be at most 4096, got 99999")]
    with pytest.raises(BackendUnavailableError) as caught:
        generator(url).generate([Prompt(text="x")], SAMPLING)
    message = str(caught.value)
    assert f"{url}/completions" in message
    assert "HTTP 400" in message and "max_tokens must be at most 4096, got 99999" in message
    assert len(fake.seen) == 1


def test_an_unknown_route_fails_at_once(server: Served) -> None:
    fake, url = server
    with pytest.raises(BackendUnavailableError, match="HTTP 404: no route /v2/completions"):
        generator(url.replace("/v1", "/v2")).generate([Prompt(text="x")], SAMPLING)
    assert len(fake.seen) == 1


def test_5xx_until_retries_run_out(server: Served) -> None:
    fake, url = server
    fake.script = [error_reply(502, "upstream is down")] * 5
    with pytest.raises(BackendUnavailableError, match="after 3 attempts: HTTP 502: upstream is down"):
        generator(url, retries=3).generate([Prompt(text="x")], SAMPLING)
    assert len(fake.seen) == 3


def test_a_server_that_never_answers_times_out_each_attempt(server: Served) -> None:
    fake, url = server
    fake.script = [Reply(delay_s=10.0)] * 2
    started = time.perf_counter()
    with pytest.raises(BackendUnavailableError, match=r"after 2 attempts: no answer within 0.3 s"):
        generator(url, timeout_s=0.3, retries=2).generate([Prompt(text="x")], SAMPLING)
    assert time.perf_counter() - started < 2
    assert len(fake.seen) == 2


def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    refused = "after 2 attempts: the connection failed .*refused"
    with pytest.raises(BackendUnavailableError, match=refused) as caught:
        generator(url, retries=2).generate([Prompt(text="x")], SAMPLING)
    assert url in str(caught.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html>Bad Gateway</html>", "not in JSON: '<html>Bad Gateway</html>'"),
        ({"object": "text_completion"}, "without choices"),
        ({"choices": []}, "without choices"),
        ({"choices": [{"index": 0, "finish_reason": "stop"}]}, "a choice without text"),
    ],
)
def test_a_malformed_answer_is_a_backend_error(server: Served, body: Any, expected: str) -> None:
    fake, url = server
    fake.script = [Reply(body=body)]
    with pytest.raises(BackendUnavailableError, match=expected):
        generator(url).generate([Prompt(text="x")], SAMPLING)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("0", 0.0), ("1.5", 1.5), ("-3", 0.0), ("soon", None), ("nan", None),
     ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)  # fmt: skip
def test_retry_after_headers(header: str | None, seconds: float | None) -> None:
    assert _retry_after_s(header) == seconds


# --- configuration ---


@pytest.mark.parametrize(
    ("overrides", "field_name"),
    [
        ({"base_url": "ftp://127.0.0.1/v1"}, "base_url"),
        ({"base_url": "127.0.0.1:8000/v1"}, "base_url"),
        ({"base_url": "http:///v1"}, "base_url"),
        ({"base_url": "http://127.0.0.1:port/v1"}, "base_url"),
        ({"base_url": "http://127.0.0.1:8000/my v1"}, "base_url"),
        ({"model": " "}, "model"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": float("inf")}, "timeout_s"),
        ({"retries": 0}, "retries"),
        ({"concurrency": 0}, "concurrency"),
        ({"backoff_s": -1.0}, "backoff_s"),
    ],
)
def test_config_errors_name_the_field(overrides: dict[str, Any], field_name: str) -> None:
    settings: dict[str, Any] = {"base_url": "http://127.0.0.1:8000/v1", "model": MODEL, **overrides}
    with pytest.raises(ConfigError, match=f"^{field_name} must be") as caught:
        OpenAIConfig(**settings)
    assert "got" in str(caught.value)
