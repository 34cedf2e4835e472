"""The shared engine that turns a packed batch into per-sequence log-probabilities.

Every objective, the reference-log-prob cache, SFT and the reward model go through this one function,
so they all see the same tokens, positions and masking. Two savings over the usual "full logits, then
log-softmax" path: the prompt is encoded once per pair (see `packing`), and the LM head and
log-softmax run only on the positions that predict completion tokens, which is where the vocabulary-
sized arithmetic is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from prefshift.training.packing import PackedBatch


@dataclass
class SequenceLogps:
    """Log-probs of the K completions of each of the B rows."""

    logps: torch.Tensor  # [B, K] summed over completion tokens
    lengths: torch.Tensor  # [B, K] completion token counts (float)
    token_logps: torch.Tensor  # [T] per scored token, in PackedBatch order
    entropy: torch.Tensor | None  # [B, K] mean per-token entropy of the policy (detached), if asked


def _attention_mask_for(model: nn.Module, mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    impl = getattr(model.config, "_attn_implementation", "sdpa") or "sdpa"
    if impl == "sdpa":
        return mask
    if impl == "eager":
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            ~mask, torch.finfo(dtype).min
        )
    raise ValueError(
        f"packed batches need attn_implementation 'sdpa' or 'eager', the model uses {impl!r}; "
        "load it with attn_implementation='sdpa'"
    )


def decoder_hidden_states(model: nn.Module, batch: PackedBatch) -> torch.Tensor:
    """Last hidden states [B, L, H] of the model's decoder stack on a packed batch."""
    decoder = model.get_decoder()
    dtype = next(model.parameters()).dtype
    out = decoder(
        input_ids=batch.input_ids,
        position_ids=batch.position_ids,
        attention_mask=_attention_mask_for(model, batch.attention_mask, dtype),
        use_cache=False,
    )
    return out.last_hidden_state


def sequence_logps(model: nn.Module, batch: PackedBatch, with_entropy: bool = False) -> SequenceLogps:
    """Summed log π(completion | prompt) for every completion of a packed batch.

    The LM head runs only on the T hidden states that predict a completion token.
    """
    hidden = decoder_hidden_states(model, batch)
    h = hidden[batch.row, batch.source]  # [T, H]
    logits = model.get_output_embeddings()(h).float()
    logp_all = torch.log_softmax(logits, dim=-1)
    tokens = batch.input_ids[batch.row, batch.target]
    token_logps = logp_all.gather(-1, tokens[:, None]).squeeze(-1)

    bsz, k = batch.last.shape
    flat = batch.row * k + batch.segment
    logps = torch.zeros(bsz * k, dtype=token_logps.dtype, device=token_logps.device)
    logps = logps.index_add(0, flat, token_logps).view(bsz, k)
    lengths = torch.zeros(bsz * k, dtype=torch.float32, device=token_logps.device)
    lengths = lengths.index_add(0, flat, torch.ones_like(token_logps, dtype=torch.float32)).view(bsz, k)

    entropy = None
    if with_entropy:
        with torch.no_grad():
            ent = -(logp_all.exp() * logp_all).sum(-1)
            entropy = torch.zeros(bsz * k, device=ent.device).index_add(0, flat, ent).view(bsz, k)
            entropy = entropy / lengths.clamp(min=1.0)
    return SequenceLogps(logps=logps, lengths=lengths, token_logps=token_logps, entropy=entropy)


def last_token_scores(model: nn.Module, batch: PackedBatch) -> torch.Tensor:
    """Scalar scores [B, K] of a sequence-classification model read at each completion's last token.

    This is how `AutoModelForSequenceClassification` scores a sequence (its head on the last
    non-padding token), computed on the prompt-shared layout.
    """
    hidden = decoder_hidden_states(model, batch)
    bsz, k = batch.last.shape
    idx = batch.last.clamp(min=0)
    h = hidden[torch.arange(bsz, device=hidden.device)[:, None], idx]  # [B, K, H]
    head = model.score if hasattr(model, "score") else model.get_output_embeddings()
    return head(h).float().squeeze(-1)
