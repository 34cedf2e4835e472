"""LLMJudge against a local fake OpenAI-compatible server (no network, every wait bounded)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import ValidationError

from prefshift.judging import (
    JudgeError,
    LLMJudge,
    LLMJudgeConfig,
    make_labeller,
    parse_verdict,
    render_messages,
)

MARKER = "BEST"
_RESPONSES = re.compile(r"<response_a>\n(.*)\n</response_a>\n\n<response_b>\n(.*)\n</response_b>", re.DOTALL)


@dataclass
class FakeState:
    """What the fake judge does, and what it saw; the handler reads/writes it under ``lock``."""

    mode: str = "prefer"  # prefer (marker word, else longer) | bias (always "A") | garbage
    reply_style: str = "{}"  # how the verdict word is dressed, e.g. "Response {}."
    fail_first: int = 0  # this many requests fail with fail_status
    fail_status: int = 429
    require_key: str | None = None
    delay_s: float = 0.0
    requests: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _fake_verdict(user_message: str, mode: str) -> str:
    if mode == "bias":
        return "A"
    if mode == "garbage":
        return "I cannot decide between these."
    m = _RESPONSES.search(user_message)
    assert m is not None, user_message
    a, b = m.groups()
    if (MARKER in a) != (MARKER in b):
        return "A" if MARKER in a else "B"
    if len(a) == len(b):
        return "tie"
    return "A" if len(a) > len(b) else "B"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        st = self.server.state
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with st.lock:
            st.requests += 1
            n = st.requests
            st.bodies.append(body)
            st.in_flight += 1
            st.peak_in_flight = max(st.peak_in_flight, st.in_flight)
        try:
            time.sleep(st.delay_s)
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
            elif st.require_key and self.headers.get("Authorization") != f"Bearer {st.require_key}":
                self._send(401, {"error": {"message": "Incorrect API key provided"}})
            elif n <= st.fail_first:
                self._send(st.fail_status, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
            else:
                verdict = _fake_verdict(body["messages"][1]["content"], st.mode)
                content = st.reply_style.format(verdict)
                self._send(200, {"choices": [{"message": {"role": "assistant", "content": content}}]})
        finally:
            with st.lock:
                st.in_flight -= 1


class _Server(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = FakeState()


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def _config(srv: _Server, **kw: Any) -> LLMJudgeConfig:
    base = {
        "base_url": f"http://127.0.0.1:{srv.server_address[1]}/v1",
        "model": "fake-judge",
        "api_key_env": None,
        "timeout_s": 5.0,
        "max_retries": 3,
        "backoff_s": 0.01,
        "max_backoff_s": 0.05,
        "max_concurrency": 4,
    }
    return LLMJudgeConfig(**{**base, **kw})


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("A", "first"),
        (" b\n", "second"),
        ("Tie", "tie"),
        ("Response A.", "first"),
        ("**B**", "second"),
        ("[[A]]", "first"),
        ("Answer: tie", "tie"),
        ("A tie.", "tie"),
        ("A. It is more concise.", "first"),
        ("<think>B looks wrong</think>\nA", "first"),
        ("Both are fine", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_verdict(reply: str | None, verdict: str | None) -> None:
    assert parse_verdict(reply) == verdict


def test_compare_sends_openai_request_and_parses_verdict(server: _Server) -> None:
    server.state.reply_style = "Response {}"
    with LLMJudge(_config(server, task="summarise the post")) as judge:
        assert judge.compare("p", "long answer", "short") == "first"
        assert judge.compare("p", "short", "long answer") == "second"
        assert judge.compare("p", "same", "same") == "tie"
        assert judge.compare("p", f"x {MARKER}", "a much longer answer") == "first"
    body = server.state.bodies[0]
    assert body["model"] == "fake-judge" and body["temperature"] == 0 and body["max_tokens"] == 16
    assert "seed" not in body
    assert body["messages"] == render_messages("summarise the post", "p", "long answer", "short")
    assert "summarise the post" in body["messages"][0]["content"]
    assert judge.stats.calls == 4 and judge.stats.retries == 0


def test_pairwise_scores_and_position_bias_cancels(server: _Server) -> None:
    items = [("p", "long answer", "short"), ("p", "short", "long answer"), ("p", "same", "same")]
    with LLMJudge(_config(server)) as judge:
        assert judge.pairwise(items, seed=3) == [1.0, 0.0, 0.5]
        assert server.state.bodies[0]["seed"] == 3
        server.state.mode = "bias"  # always "A": the first shown always wins
        assert judge.pairwise(items, seed=4) == [0.5, 0.5, 0.5]
        assert judge.compare("p", "short", "long answer", seed=4) == "first"  # the bias is real
    assert server.state.requests == 2 * 2 * len(items) + 1


@pytest.mark.parametrize("status", [429, 503, 500])
def test_retries_then_success(server: _Server, status: int) -> None:
    server.state.fail_first, server.state.fail_status = 2, status
    with LLMJudge(_config(server)) as judge:
        assert judge.compare("p", "long answer", "short") == "first"
    assert server.state.requests == 3
    assert (judge.stats.calls, judge.stats.retries) == (3, 2)


def test_retries_exhausted_raises_with_last_status(server: _Server) -> None:
    server.state.fail_first = 100
    with LLMJudge(_config(server, max_retries=2)) as judge, pytest.raises(JudgeError) as err:
        judge.compare("p", "a", "b")
    assert "after 3 attempts" in str(err.value) and "HTTP 429" in str(err.value)
    assert "slow down" in str(err.value)
    assert server.state.requests == 3


def test_auth_error_is_not_retried_and_names_url_status_message(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.state.require_key = "sk-test"
    monkeypatch.delenv("PREFSHIFT_TEST_JUDGE_KEY", raising=False)
    cfg = _config(server, api_key_env="PREFSHIFT_TEST_JUDGE_KEY")
    with LLMJudge(cfg) as judge, pytest.raises(JudgeError) as err:
        judge.compare("p", "a", "b")
    msg = str(err.value)
    assert "401" in msg and "Incorrect API key provided" in msg and judge.url in msg
    assert server.state.requests == 1
    monkeypatch.setenv("PREFSHIFT_TEST_JUDGE_KEY", "sk-test")
    with LLMJudge(cfg) as judge:
        assert judge.compare("p", "long answer", "short") == "first"


def test_wrong_path_is_404_judge_error(server: _Server) -> None:
    cfg = _config(server).model_copy(update={"base_url": f"http://127.0.0.1:{server.server_address[1]}"})
    with LLMJudge(cfg) as judge, pytest.raises(JudgeError, match="HTTP 404: no route /chat/completions"):
        judge.compare("p", "a", "b")
    assert server.state.requests == 1


def test_timeout_is_retried_then_raises(server: _Server) -> None:
    server.state.delay_s = 0.5
    with LLMJudge(_config(server, timeout_s=0.1, max_retries=1)) as judge, pytest.raises(JudgeError) as err:
        judge.compare("p", "a", "b")
    assert "after 2 attempts" in str(err.value)


def test_unparseable_reply_counts_as_tie(server: _Server) -> None:
    server.state.mode = "garbage"
    with LLMJudge(_config(server, parse_retries=2)) as judge:
        assert judge.compare("p", "a", "b") == "tie"
    assert server.state.requests == 3
    assert (judge.stats.unparseable, judge.stats.retries) == (1, 2)


def test_cache_makes_reruns_free(server: _Server, tmp_path) -> None:
    items = [("p", f"answer {'x' * i}", "short") for i in range(3)]
    cfg = _config(server, cache_path=tmp_path / "judge" / "cache.sqlite")
    with LLMJudge(cfg) as judge:
        first = judge.pairwise(items, seed=0)
    assert server.state.requests == 6
    with LLMJudge(cfg) as judge:
        assert judge.pairwise(items, seed=0) == first
    assert server.state.requests == 6  # nothing new went over the wire
    assert (judge.stats.calls, judge.stats.cache_hits) == (0, 6)
    with LLMJudge(cfg.model_copy(update={"model": "other-judge"})) as judge:
        judge.compare("p", *items[0][1:], seed=0)
    assert server.state.requests == 7  # another model is another cache key


def test_concurrency_is_bounded(server: _Server) -> None:
    server.state.delay_s = 0.1
    items = [("p", f"answer {i}", "b") for i in range(6)]  # 12 requests
    with LLMJudge(_config(server, max_concurrency=4)) as judge:
        t0 = time.perf_counter()
        assert judge.pairwise(items) == [1.0] * 6
        elapsed = time.perf_counter() - t0
    assert 2 <= server.state.peak_in_flight <= 4
    assert elapsed < 12 * 0.1  # faster than one at a time


def test_score_candidates_ranks_preferred_best(server: _Server) -> None:
    candidates = ["mid length", "short", f"{MARKER}", "the longest answer of all"]
    with LLMJudge(_config(server)) as judge:
        scores = judge.score_candidates("p", candidates)
        assert scores == [1.0, 0.0, 3.0, 2.0]  # marker beats all, then by length
        assert server.state.requests == 4 * 3
        assert judge.score_candidates("p", ["only"]) == [0.0]
        server.state.mode = "bias"
        assert judge.score_candidates("p", candidates) == [1.5] * 4


def test_labeller_groups_by_prompt(server: _Server) -> None:
    examples = [{"prompt": "p1"}, {"prompt": "p2"}, {"prompt": "p1"}, {"prompt": "p2"}]
    texts = ["short", f"{MARKER}", "longer one", "a much longer answer"]
    with LLMJudge(_config(server)) as judge:
        score = make_labeller(judge)
        assert score(examples, texts) == [0.0, 1.0, 1.0, 0.0]
        with pytest.raises(ValueError, match="2 examples but 1 texts"):
            score(examples[:2], texts[:1])
    assert {b["messages"][1]["content"].split("\n")[1] for b in server.state.bodies} == {"p1", "p2"}


def test_config_rejects_unknown_keys_and_bad_urls() -> None:
    with pytest.raises(ValidationError):
        LLMJudgeConfig(base_url="http://x/v1", model="m", temprature=0)
    with pytest.raises(ValidationError):
        LLMJudgeConfig(base_url="127.0.0.1:8000/v1", model="m")
    assert LLMJudgeConfig(base_url="http://x/v1/", model="m").base_url == "http://x/v1"


def test_retry_after_header_forms() -> None:
    from prefshift.judging.llm import _retry_after

    assert _retry_after("2") == 2.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: retry now
    assert _retry_after("soon") is None and _retry_after(None) is None
