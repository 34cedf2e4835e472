r"""A pairwise LLM judge over any OpenAI-compatible chat-completions endpoint.

Why a judge that only compares: a pairwise verdict ("which of these two is better?") is what LLM
judges give most reliably and what the reference evaluation protocol uses (win rate against the
reference). Everything else is built from it:

* ``compare(prompt, a, b)`` — one verdict for one *ordered* pair: ``'first' | 'second' | 'tie'``
  (the ``JudgeFn`` signature of ``prefshift.evaluation.winrate.judge_pairwise``).
* ``pairwise(items)`` — each ``(prompt, a, b)`` judged in *both* orders. LLM judges prefer one
  position (Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena",
  arXiv:2306.05685); averaging over the swap cancels that bias exactly instead of in expectation::

      score(a) = (v(a, b) + 1 − v(b, a)) / 2,   v = 1 if the first shown wins, 0.5 tie, 0 otherwise

  so score ∈ {0, 0.25, 0.5, 0.75, 1} is P(a better) and a judge that always answers "A" scores 0.5.
* ``score_candidates(prompt, candidates)`` — a labeller for pseudo-labelling: a round-robin
  tournament of the position-swapped comparisons; candidate i scores Σ_j score(i vs j), i.e. the
  Copeland score (wins + ½ ties) with each of the two orders counting as half a match. Scores lie in
  [0, k − 1], and ``make_labeller`` turns the judge into the study's ``(examples, texts) -> scores``.

Transport: ``POST {base_url}/chat/completions`` with ``temperature = 0`` (verdicts must be
reproducible), the API key (if the env var named in the config is set) as ``Authorization: Bearer``.
Transient failures (429, 5xx, timeouts, dropped connections) are retried with exponential backoff
and jitter, honouring ``Retry-After`` on 429/503; errors a retry cannot fix (400, 401, 404, …) raise
``JudgeError`` at once with the URL, the status and the server's message. Verdicts are cached in a
SQLite file keyed by a hash of (model, prompt-template version, task, prompt, first, second, seed),
so rerunning a study costs no API calls.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import os
import random
import re
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Verdict = Literal["first", "second", "tie"]
"""Which of the two responses shown is better (same as ``prefshift.evaluation.winrate.Verdict``)."""

PROMPT_VERSION = "pairwise-v1"
"""Bump whenever the template below changes: it is part of the cache key, so old verdicts are not reused."""

SYSTEM_TEMPLATE = (
    "You are an impartial judge. Two AI assistants were given the same request; the task was to "
    "{task}. Decide which response does the task better. Judge correctness, faithfulness to the "
    "request and usefulness; ignore the order in which the responses appear and do not prefer a "
    'response for being longer. Answer with exactly one word: "A", "B" or "tie".'
)
USER_TEMPLATE = (
    "<request>\n{prompt}\n</request>\n\n"
    "<response_a>\n{first}\n</response_a>\n\n"
    "<response_b>\n{second}\n</response_b>\n\n"
    'Which response is better? Answer "A", "B" or "tie".'
)

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
"""Statuses a later identical request can succeed on (rate limits, overload, gateway hiccups)."""

_RETRY_AFTER_STATUS = frozenset({429, 503})
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
# Optional "Response"/"Assistant"/"Answer:" label, then A, B or tie as a whole word; "A tie" is a tie.
_VERDICT = re.compile(
    r"^\W*(?:(?:response|assistant|answer|verdict|output)\b\W*)?(?:(a|b)\b(?!\s+tie\b)|(?:a\s+)?(tie)\b)",
    re.IGNORECASE,
)


class JudgeError(RuntimeError):
    """The endpoint refused the request or kept failing; the message names URL, status and reason."""


class LLMJudgeConfig(BaseModel):
    """Where the judge lives and how hard to try; ``extra="forbid"`` so a typo in a YAML key fails."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(description="OpenAI-compatible API root, e.g. 'http://127.0.0.1:8000/v1'")
    model: str = Field(description="model name sent in the request body")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY", description="env var holding the API key; unset (or None) → no auth header"
    )
    task: str = Field(
        "answer the user's request helpfully",
        description="what the responses were asked to do, as a verb phrase ('summarise the post')",
    )
    max_tokens: int = Field(16, gt=0, description="reply budget; the verdict is one word")
    timeout_s: float = Field(60.0, gt=0, description="socket timeout of one request")
    max_retries: int = Field(5, ge=0, description="re-sends after a retryable failure (429, 5xx, timeout)")
    backoff_s: float = Field(1.0, ge=0, description="first backoff; doubles per retry, with jitter")
    max_backoff_s: float = Field(60.0, ge=0, description="cap on one wait, Retry-After included")
    parse_retries: int = Field(
        1, ge=0, description="re-asks after an unparseable reply before it counts as tie"
    )
    max_concurrency: int = Field(8, gt=0, description="requests in flight at once (threads)")
    cache_path: Path | None = Field(None, description="SQLite file of cached verdicts; None → no cache")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {v!r}")
        return v.rstrip("/")


@dataclass
class JudgeStats:
    """Counters of one judge, to see what a run cost and how often the judge misbehaved.

    Attributes:
        calls: HTTP requests sent (retries included).
        cache_hits: verdicts served from the cache without a request.
        retries: requests re-sent after a retryable failure or an unparseable reply.
        unparseable: verdicts that fell back to 'tie' because no reply could be parsed.
    """

    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    unparseable: int = 0


def render_messages(task: str, prompt: str, first: str, second: str) -> list[dict[str, str]]:
    """The chat messages of one comparison (``first`` is shown as A, ``second`` as B)."""
    return [
        {"role": "system", "content": SYSTEM_TEMPLATE.format(task=task)},
        {"role": "user", "content": USER_TEMPLATE.format(prompt=prompt, first=first, second=second)},
    ]


def parse_verdict(reply: str | None) -> Verdict | None:
    """Map a judge reply to a verdict; None if it is not one.

    Tolerates what models add around the one word they were asked for: case, whitespace, markdown
    or brackets (``**A**``, ``[[B]]``), a label (``Response A``, ``Answer: tie``), trailing
    explanation (``A. It is more concise``), and a leading ``<think>…</think>`` block.
    """
    if reply is None:
        return None
    m = _VERDICT.match(_THINK.sub("", reply).strip())
    if m is None:
        return None
    if m.group(2):
        return "tie"
    return "first" if m.group(1).lower() == "a" else "second"


def _verdict_value(v: Verdict) -> float:
    return {"first": 1.0, "tie": 0.5, "second": 0.0}[v]


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_message(body: bytes) -> str:
    """The server's own explanation: OpenAI's ``error.message``, FastAPI's ``detail``, or the text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:500]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        for key in ("error", "detail", "message"):
            if data.get(key):
                return str(data[key])
    return text[:500]


class _VerdictCache:
    """Ordered-pair verdicts in SQLite: safe across threads (one lock) and processes (SQLite locks)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, verdict TEXT NOT NULL)"
            )

    def get(self, key: str) -> Verdict | None:
        with self._lock:
            row = self._db.execute("SELECT verdict FROM verdicts WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, verdict: Verdict) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?)", (key, verdict))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class LLMJudge:
    """Pairwise judge over an OpenAI-compatible endpoint; thread-safe, usable as a context manager.

    Example:
        >>> cfg = LLMJudgeConfig(base_url="http://127.0.0.1:8000/v1", model="judge", task="summarise the post")
        >>> with LLMJudge(cfg) as judge:
        ...     judge.pairwise([(post, summary_a, summary_b)])   # [P(summary_a better)]
    """

    def __init__(self, config: LLMJudgeConfig) -> None:
        self.config = config
        self.url = f"{config.base_url}/chat/completions"
        self.stats = JudgeStats()
        self._stats_lock = threading.Lock()
        self._rng = random.Random()  # only jitters the backoff; never touches a verdict
        self._cache = _VerdictCache(config.cache_path) if config.cache_path is not None else None

    def __enter__(self) -> LLMJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the cache file (the judge holds no other resources)."""
        if self._cache is not None:
            self._cache.close()

    # --- public API -------------------------------------------------------------------------------

    def compare(self, prompt: str, a: str, b: str, *, seed: int | None = None) -> Verdict:
        """One verdict with ``a`` shown first: ``'first'`` if a is better, ``'second'`` if b, or ``'tie'``.

        ``seed`` is sent as the OpenAI ``seed`` field: decoding is greedy, but batched servers are not
        bit-deterministic, and backends that support it then return the same reply run after run.
        """
        key = self._cache_key(prompt, a, b, seed)
        if self._cache is not None and (hit := self._cache.get(key)) is not None:
            self._count("cache_hits")
            return hit
        messages = render_messages(self.config.task, prompt, a, b)
        for attempt in range(self.config.parse_retries + 1):
            if attempt:
                self._count("retries")
            verdict = parse_verdict(self._request(messages, seed))
            if verdict is not None:
                if self._cache is not None:
                    self._cache.put(key, verdict)
                return verdict
        # Not cached: a rerun should ask again rather than freeze a parsing failure into the results.
        self._count("unparseable")
        return "tie"

    def pairwise(self, items: Sequence[tuple[str, str, str]], seed: int | None = None) -> list[float]:
        """P(a better than b) per ``(prompt, a, b)`` item, judged in both orders (see the module doc).

        All 2·n ordered comparisons run concurrently, up to ``max_concurrency`` in flight.
        """
        ordered = [t for prompt, a, b in items for t in ((prompt, a, b), (prompt, b, a))]
        verdicts = self._compare_many(ordered, seed)
        return [
            (_verdict_value(ab) + 1.0 - _verdict_value(ba)) / 2
            for ab, ba in zip(verdicts[0::2], verdicts[1::2], strict=True)
        ]

    def score_candidates(
        self, prompt: str, candidates: Sequence[str], seed: int | None = None
    ) -> list[float]:
        """Copeland scores of ``candidates`` in a round-robin of position-swapped comparisons.

        Candidate i gets Σ_{j≠i} P(i better than j) ∈ [0, k − 1]: wins + ½ ties with each order of a
        pair worth half a match. The best candidate is the argmax, the worst the argmin;
        k(k − 1) requests per prompt (before caching).
        """
        return self.tournaments([(prompt, candidates)], seed)[0]

    def tournaments(
        self, groups: Sequence[tuple[str, Sequence[str]]], seed: int | None = None
    ) -> list[list[float]]:
        """``score_candidates`` for many ``(prompt, candidates)`` groups, all comparisons in one pool."""
        pairs = [
            (g, i, j) for g, (_, c) in enumerate(groups) for i in range(len(c)) for j in range(i + 1, len(c))
        ]
        probs = self.pairwise([(groups[g][0], groups[g][1][i], groups[g][1][j]) for g, i, j in pairs], seed)
        scores = [[0.0] * len(c) for _, c in groups]
        for (g, i, j), p in zip(pairs, probs, strict=True):
            scores[g][i] += p
            scores[g][j] += 1.0 - p
        return scores

    # --- internals --------------------------------------------------------------------------------

    def _compare_many(self, ordered: Sequence[tuple[str, str, str]], seed: int | None) -> list[Verdict]:
        workers = min(self.config.max_concurrency, len(ordered))
        if workers <= 1:
            return [self.compare(p, a, b, seed=seed) for p, a, b in ordered]
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm-judge")
        try:
            futures = [pool.submit(self.compare, p, a, b, seed=seed) for p, a, b in ordered]
            return [f.result() for f in futures]
        finally:
            # On an error, drop the queued comparisons; the running ones end within their timeouts.
            pool.shutdown(wait=True, cancel_futures=True)

    def _cache_key(self, prompt: str, first: str, second: str, seed: int | None) -> str:
        fields = [self.config.model, PROMPT_VERSION, self.config.task, prompt, first, second, seed]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()

    def _count(self, name: str) -> None:
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env) if self.config.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before re-send ``attempt`` (0-based): Retry-After if given, else 2^attempt·backoff·U(½, 1)."""
        if retry_after is not None:
            return min(retry_after, self.config.max_backoff_s)
        base = min(self.config.backoff_s * 2**attempt, self.config.max_backoff_s)
        return base * self._rng.uniform(0.5, 1.0)

    def _request(self, messages: list[dict[str, str]], seed: int | None) -> str | None:
        """The reply text of one chat completion (None if the server sent no content), with retries."""
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self.config.max_tokens,
        }
        if seed is not None:
            body["seed"] = seed
        data = json.dumps(body).encode()
        last = ""
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                self._count("retries")
            self._count("calls")
            retry_after = None
            req = urllib.request.Request(self.url, data=data, headers=self._headers(), method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:
                    raw = resp.read()
            except urllib.error.HTTPError as e:
                message = _error_message(e.read())
                if e.code not in RETRYABLE_STATUS:
                    raise JudgeError(f"POST {self.url} failed with HTTP {e.code}: {message}") from e
                last = f"HTTP {e.code}: {message}"
                if e.code in _RETRY_AFTER_STATUS:
                    retry_after = _retry_after(e.headers.get("Retry-After"))
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            else:
                return self._content(raw)
            if attempt < self.config.max_retries:
                time.sleep(self._backoff(attempt, retry_after))
        raise JudgeError(
            f"POST {self.url} failed after {self.config.max_retries + 1} attempts; last error: {last}"
        )

    def _content(self, raw: bytes) -> str | None:
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise JudgeError(
                f"POST {self.url} returned no chat completion (is base_url the API root, e.g. '.../v1'?): "
                f"{raw[:300].decode('utf-8', 'replace')!r}"
            ) from e
        return content if isinstance(content, str) else None


def make_labeller(
    judge: LLMJudge, seed: int | None = None
) -> Callable[[Sequence[dict[str, Any]], Sequence[str]], list[float]]:
    """The judge as the study's labeller: ``score(examples, texts) -> scores`` (``study.data.ScoreFn``).

    A pairwise judge can only rank responses to the same prompt, so texts are grouped by
    ``example["prompt"]`` and each group is scored by ``score_candidates``: the scores compare texts
    within a prompt, never across prompts. All groups of one call share the thread pool, so scoring
    many prompts in one call keeps ``max_concurrency`` requests in flight.
    """

    def score(examples: Sequence[dict[str, Any]], texts: Sequence[str]) -> list[float]:
        if len(examples) != len(texts):
            raise ValueError(f"got {len(examples)} examples but {len(texts)} texts")
        groups: dict[str, list[int]] = {}
        for i, ex in enumerate(examples):
            groups.setdefault(ex["prompt"], []).append(i)
        results = judge.tournaments([(p, [texts[i] for i in idx]) for p, idx in groups.items()], seed)
        scores = [0.0] * len(texts)
        for idx, group_scores in zip(groups.values(), results, strict=True):
            for i, s in zip(idx, group_scores, strict=True):
                scores[i] = s
        return scores

    return score
