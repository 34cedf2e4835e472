"""Sampling parameters shared by every generation backend."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SamplingParams:
    """How to sample continuations; the same object drives every backend.

    Attributes:
        n: samples drawn per prompt. The transformers engine prefills each prompt once and
            copies its KV cache to the ``n`` rows (prefix sharing), so large ``n`` is cheap.
        temperature: softmax temperature; ``0`` means greedy decoding (argmax).
        top_p: nucleus sampling mass in ``(0, 1]``; ``1.0`` disables it.
        top_k: keep only the ``top_k`` most likely tokens; ``0`` disables it.
        max_new_tokens: maximum number of generated tokens per sample (EOS included).
        seed: seed of the per-call random generator; the same seed with the same prompts and
            parameters gives the same samples. ``None`` draws a fresh seed.
        return_logprobs: also return, for every generated token, its log-probability under the
            *unprocessed* policy (log-softmax of the raw logits, before temperature / top-k / top-p).
            That is the quantity KL estimates and PPO/GRPO ratios need; the processed
            distribution is an artefact of the sampler, not the policy being trained.
        stop_token_ids: extra token ids that end a sample, in addition to the model's EOS ids
            (which always stop generation). The stop token is kept in ``token_ids``.
    """

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 128
    seed: int | None = None
    return_logprobs: bool = False
    stop_token_ids: tuple[int, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # Fail at construction: a bad value deep inside a long sampling run wastes the whole run.
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        # Accept any iterable (e.g. a list from a YAML config) but store a hashable tuple.
        object.__setattr__(self, "stop_token_ids", tuple(int(t) for t in self.stop_token_ids))

    @property
    def greedy(self) -> bool:
        """Whether decoding is deterministic argmax (temperature 0)."""
        return self.temperature == 0
