"""Prompt-shared packing: one row holds a prompt followed by all of its completions.

A preference pair is usually fed to a model as two padded rows, ``prompt+chosen`` and
``prompt+rejected``, so the prompt is computed twice. Here a row is ``prompt | completion_1 | ... |
completion_K | pad`` with

* position ids that restart at ``len(prompt)`` for every completion, and
* a 4-D boolean attention mask in which each completion sees the whole prompt and its own past, never
  another completion,

so every token gets exactly the hidden state it would get in its own padded row (same positions, same
visible keys), while the prompt is encoded once. Transformers accepts such a prepared 4-D mask and uses
it as is, so the model's own forward does the work (no hand-written attention). A completion's first
token is predicted from the *last prompt token*, which is why ``source`` indices are kept per target
token: the log-prob engine only runs the LM head on those positions.

No library provides this layout for SDPA/eager attention on CPU (TRL's padding-free mode needs
FlashAttention and does not share prompts), hence this small module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class PackedBatch:
    """Tensors for one packed batch. ``B`` rows, ``L`` max row length, ``T`` scored tokens in total."""

    input_ids: torch.Tensor  # [B, L]
    position_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor  # [B, 1, L, L] bool, True = may attend
    row: torch.Tensor  # [T] row of each scored token
    source: torch.Tensor  # [T] position whose hidden state predicts the token
    target: torch.Tensor  # [T] position of the token in input_ids
    segment: torch.Tensor  # [T] completion index k in [0, K)
    last: torch.Tensor  # [B, K] position of each completion's last token (-1 if empty)
    num_completions: int

    def to(self, device: torch.device | str) -> PackedBatch:
        return PackedBatch(
            **{k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        )


def packed_length(prompt: Sequence[int], completions: Sequence[Sequence[int]]) -> int:
    """Row length of one example once packed (used for length-grouped batching)."""
    return len(prompt) + sum(len(c) for c in completions)


def pack(
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[Sequence[int]]],
    pad_token_id: int,
    pad_to_multiple_of: int = 1,
) -> PackedBatch:
    """Pack each ``prompts[b]`` with its ``completions[b]`` (the same K for every row) into one row."""
    if len(prompts) != len(completions) or not prompts:
        raise ValueError("pack() needs one list of completions per prompt and at least one prompt")
    k = len(completions[0])
    if any(len(c) != k for c in completions):
        raise ValueError("every row must have the same number of completions")
    lengths = [packed_length(p, c) for p, c in zip(prompts, completions, strict=True)]
    width = max(lengths)
    width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    bsz = len(prompts)

    input_ids = torch.full((bsz, width), pad_token_id, dtype=torch.long)
    position_ids = torch.zeros((bsz, width), dtype=torch.long)
    # segment id per position: -1 prompt, k for completion k, -2 padding
    seg = torch.full((bsz, width), -2, dtype=torch.long)
    last = torch.full((bsz, k), -1, dtype=torch.long)
    rows: list[int] = []
    sources: list[int] = []
    targets: list[int] = []
    segments: list[int] = []
    for b, (prompt, comps) in enumerate(zip(prompts, completions, strict=True)):
        p = len(prompt)
        if p == 0:
            raise ValueError(
                "every prompt needs at least one token (e.g. BOS) to predict the first completion token"
            )
        input_ids[b, :p] = torch.as_tensor(prompt, dtype=torch.long)
        position_ids[b, :p] = torch.arange(p)
        seg[b, :p] = -1
        start = p
        for j, comp in enumerate(comps):
            n = len(comp)
            if n == 0:
                continue
            input_ids[b, start : start + n] = torch.as_tensor(comp, dtype=torch.long)
            position_ids[b, start : start + n] = torch.arange(p, p + n)
            seg[b, start : start + n] = j
            rows.extend([b] * n)
            sources.extend([p - 1, *range(start, start + n - 1)])
            targets.extend(range(start, start + n))
            segments.extend([j] * n)
            last[b, j] = start + n - 1
            start += n
        # padding keeps increasing positions so no position id is out of range
        position_ids[b, start:] = torch.arange(width - start) + p

    q = torch.arange(width)
    causal = q[:, None] >= q[None, :]  # [L, L]
    seg_q = seg[:, :, None]
    seg_k = seg[:, None, :]
    same_segment = (seg_q == seg_k) & (seg_q >= -1)
    sees_prompt = (seg_k == -1) & (seg_q >= 0)
    is_self = torch.eye(width, dtype=torch.bool)[
        None
    ]  # padding attends to itself only (no empty softmax rows)
    mask = ((same_segment | sees_prompt) & causal[None]) | is_self
    return PackedBatch(
        input_ids=input_ids,
        position_ids=position_ids,
        attention_mask=mask[:, None],
        row=torch.as_tensor(rows, dtype=torch.long),
        source=torch.as_tensor(sources, dtype=torch.long),
        target=torch.as_tensor(targets, dtype=torch.long),
        segment=torch.as_tensor(segments, dtype=torch.long),
        last=last,
        num_completions=k,
    )
