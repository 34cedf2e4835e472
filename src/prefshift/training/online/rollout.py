"""Rollouts: sample G responses per prompt through the generation engine, then score them per token.

A rollout batch is P prompts × G responses, indexed n = p·G + g everywhere. Per-token quantities are
[N, T] tensors right-padded to the longest response, with a 0/1 mask. Forward passes use the training
stack's prompt-shared packing: a prompt and its G responses are one packed row, so each prompt is
encoded once per forward, and the LM head runs only on response positions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import nn

from prefshift.generation import SamplingParams
from prefshift.generation.api import Sampler
from prefshift.training.logprobs import decoder_hidden_states, sequence_logps
from prefshift.training.packing import PackedBatch, pack

Autocast = Callable[[], AbstractContextManager[object]]


@dataclass
class Rollout:
    """One batch of sampled responses with the behaviour policy's per-token log-probs."""

    prompt_ids: list[list[int]]  # [P]
    completion_ids: list[list[list[int]]]  # [P][G], EOS included when the response finished
    texts: list[str]  # [N] decoded responses (stop token stripped)
    old_logps: torch.Tensor  # [N, T] log π_old(y_t) from the sampler (raw logits, no temperature)
    mask: torch.Tensor  # [N, T] float, 1 on response tokens
    finished: torch.Tensor  # [N] bool: ended on EOS rather than on max_new_tokens

    @property
    def group_size(self) -> int:
        return len(self.completion_ids[0])

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(-1)

    def sequences(self, prompts: Sequence[int]) -> list[int]:
        """Flat response indices n of the given prompt indices (their whole groups)."""
        g = self.group_size
        return [p * g + j for p in prompts for j in range(g)]


def pad_rows(rows: Sequence[Sequence[float]], width: int) -> torch.Tensor:
    """[N, width] float tensor from ragged rows, zero-padded on the right."""
    out = torch.zeros(len(rows), width)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.as_tensor(r, dtype=torch.float32)
    return out


def sample_rollout(
    sampler: Sampler, prompt_ids: list[list[int]], params: SamplingParams
) -> Rollout:
    """Sample ``params.n`` responses per prompt with their log-probs under the current (old) policy."""
    if not params.return_logprobs:
        raise ValueError("a rollout needs return_logprobs=True: the sampler's log-probs are π_old")
    samples = sampler.generate(prompt_ids, params)
    groups = samples.by_prompt()
    flat = [s for g in groups for s in g]
    width = max(len(s.token_ids) for s in flat)
    logps = pad_rows([s.logprobs or [] for s in flat], width)
    mask = pad_rows([[1.0] * len(s.token_ids) for s in flat], width)
    return Rollout(
        prompt_ids=prompt_ids,
        completion_ids=[[list(s.token_ids) for s in g] for g in groups],
        texts=[s.text or "" for s in flat],
        old_logps=logps,
        mask=mask,
        finished=torch.tensor([s.finished for s in flat]),
    )


def _packed(rollout: Rollout, prompts: Sequence[int], pad_id: int, device: torch.device) -> PackedBatch:
    return pack(
        [rollout.prompt_ids[p] for p in prompts], [rollout.completion_ids[p] for p in prompts], pad_id
    ).to(device)


def _unflatten(flat: torch.Tensor, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Per-token values in packed order (row, completion, position) → [N, width], zero-padded."""
    counts = [int(n) for n in lengths.tolist()]
    if sum(counts) != flat.numel():
        raise RuntimeError(f"packed batch scored {flat.numel()} tokens, the rollout has {sum(counts)}")
    out = flat.new_zeros(len(counts), width)
    index = torch.repeat_interleave(torch.arange(len(counts), device=flat.device), torch.as_tensor(counts, device=flat.device))
    starts = torch.cumsum(torch.as_tensor([0, *counts[:-1]], device=flat.device), 0)
    position = torch.arange(flat.numel(), device=flat.device) - starts[index]
    return out.index_put((index, position), flat)


def policy_token_logps(
    model: nn.Module,
    rollout: Rollout,
    prompts: Sequence[int],
    pad_id: int,
    autocast: Autocast,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log π(y_t | x, y_<t) [n, T] for the responses of ``prompts`` (and their mean entropy [n]).

    Differentiable unless called under ``torch.no_grad``; the reference and the old policy use the same
    function, so policy, old and reference log-probs see identical tokens, positions and masks.
    """
    device = next(model.parameters()).device
    batch = _packed(rollout, prompts, pad_id, device)
    with autocast():
        out = sequence_logps(model, batch, with_entropy=with_entropy)
    idx = rollout.sequences(prompts)
    logps = _unflatten(out.token_logps.float(), rollout.lengths[idx], rollout.mask.shape[1])
    entropy = out.entropy.reshape(-1) if out.entropy is not None else None
    return logps, entropy


def token_values(
    value_model: nn.Module, rollout: Rollout, prompts: Sequence[int], pad_id: int, autocast: Autocast
) -> torch.Tensor:
    """V(s_t) [n, T]: the value head read at the position that predicts each response token.

    ``value_model`` is an ``AutoModelForTokenClassification`` with one label; the state s_t is the prompt
    plus the first t response tokens, whose last hidden state is the one that predicts token t.
    """
    device = next(value_model.parameters()).device
    batch = _packed(rollout, prompts, pad_id, device)
    with autocast():
        hidden = decoder_hidden_states(value_model, batch)
        flat = value_model.score(hidden[batch.row, batch.source]).float().squeeze(-1)
    idx = rollout.sequences(prompts)
    return _unflatten(flat, rollout.lengths[idx], rollout.mask.shape[1])
