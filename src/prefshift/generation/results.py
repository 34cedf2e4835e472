"""Result types returned by every sampler."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """One sampled continuation.

    Attributes:
        prompt_index: index of the prompt in the list passed to ``generate``.
        sample_index: index ``j`` in ``0..n-1`` among the samples of that prompt.
        token_ids: generated tokens only (no prompt); the EOS / stop token is included if produced.
        text: decoded ``token_ids`` with the stop token stripped and special tokens skipped;
            ``None`` when the sampler has no tokenizer.
        logprobs: per-token log-probabilities of ``token_ids`` under the raw policy (log-softmax
            of the unprocessed logits), or ``None`` unless ``return_logprobs`` was set.
        finished: whether the sample ended on EOS / a stop token (rather than ``max_new_tokens``).
    """

    prompt_index: int
    sample_index: int
    token_ids: list[int]
    text: str | None
    logprobs: list[float] | None
    finished: bool


@dataclass(frozen=True)
class Samples:
    """All samples of one ``generate`` call, flat and ordered by (prompt_index, sample_index).

    Attributes:
        samples: the flat list; ``samples[i * n + j]`` is sample ``j`` of prompt ``i``.
        num_prompts: number of prompts passed to ``generate``.
        n: samples per prompt.
        precision: numeric precision actually used (``"fp32"``, ``"bf16"``, ...), recorded so
            that results computed under different precisions are never silently mixed.
        backend: which engine produced them (``"transformers"`` or ``"vllm"``).
    """

    samples: list[Sample]
    num_prompts: int
    n: int
    precision: str
    backend: str

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    def by_prompt(self) -> list[list[Sample]]:
        """Samples grouped per prompt: ``by_prompt()[i][j]`` is sample ``j`` of prompt ``i``."""
        return [self.samples[i * self.n : (i + 1) * self.n] for i in range(self.num_prompts)]

    def texts(self) -> list[str | None]:
        """Flat list of decoded texts, in ``samples`` order."""
        return [s.text for s in self.samples]

    def token_ids(self) -> list[list[int]]:
        """Flat list of generated token id lists, in ``samples`` order."""
        return [s.token_ids for s in self.samples]
