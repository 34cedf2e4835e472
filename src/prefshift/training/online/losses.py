"""Per-token losses of the online objectives and how they are averaged, as pure tensor functions.

All tensors are [N, T]: N responses, right-padded to T tokens, with a 0/1 ``mask`` on response tokens.
"""

from __future__ import annotations

from typing import Literal

import torch

Aggregation = Literal["token_mean", "sequence_mean", "constant"]
AGGREGATIONS: tuple[str, ...] = ("token_mean", "sequence_mean", "constant")


def kl_k1(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token k1 estimate of KL(π‖π_ref) on samples y ~ π: log π(y_t) − log π_ref(y_t).

    Unbiased but can be negative per sample (Schulman 2020, "Approximating KL divergence",
    http://joschu.net/blog/kl-approx.html). Its sum over a response is the sequence log-ratio that PPO
    subtracts from the reward (Ouyang et al. 2022, arXiv:2203.02155, eq. 2).
    """
    return logps - ref_logps


def kl_k3(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(π‖π_ref): exp(log π_ref − log π) − (log π_ref − log π) − 1.

    Non-negative and unbiased, with lower variance than k1 (Schulman 2020); GRPO adds β times it to the
    per-token loss (Shao et al. 2024, arXiv:2402.03300, eq. 4). Its gradient on a fixed sample pulls
    log π towards log π_ref, which k1's gradient (∇ log π, zero in expectation) would not.
    """
    diff = ref_logps - logps
    return torch.exp(diff) - diff - 1.0


def clipped_policy_loss(
    logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, clip_eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate, per token (Schulman et al. 2017, arXiv:1707.06347, eq. 7)::

        ρ_t = π_θ(y_t) / π_old(y_t)
        loss_t = −min(ρ_t · A_t, clip(ρ_t, 1−ε, 1+ε) · A_t)

    Once the ratio has left [1−ε, 1+ε] in the direction the advantage pushes it, the clipped term is
    the minimum and is constant in θ, so that token gives no gradient: one batch of samples cannot move
    the policy far from the policy that drew them. GRPO and RLOO use the same surrogate with their own
    advantages (broadcast over the tokens of a response).

    Returns:
        (per-token loss [N, T], clipped [N, T] bool: tokens whose gradient the clip removed).
    """
    ratio = torch.exp(logps - old_logps)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    loss = -torch.minimum(unclipped, clipped)
    was_clipped = ((ratio < 1.0 - clip_eps) & (advantages < 0)) | ((ratio > 1.0 + clip_eps) & (advantages > 0))
    return loss, was_clipped


def clipped_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip: float
) -> torch.Tensor:
    """PPO's clipped value loss, per token (as in OpenAI's baselines; Huang et al. 2024, arXiv:2403.17031)::

        V_clip = V_old + clip(V − V_old, −c, c)
        loss_t = ½ · max((V − R)², (V_clip − R)²)

    The value function may not move more than ``c`` from the values the advantages were computed with,
    for the same reason the policy ratio is clipped.
    """
    v_clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    return 0.5 * torch.maximum((values - returns) ** 2, (v_clipped - returns) ** 2)


def aggregate(
    per_token: torch.Tensor, mask: torch.Tensor, how: Aggregation, max_tokens: int | None = None
) -> torch.Tensor:
    """Reduce a per-token loss [N, T] to a scalar; the choice sets how long responses are weighted.

    * ``token_mean``: Σ loss / Σ tokens — every token weighs the same (DAPO, Yu et al. 2025,
      arXiv:2503.14476; TRL's default);
    * ``sequence_mean``: mean over responses of each response's token mean — the original GRPO
      (Shao et al. 2024, eq. 3); a token of a short response weighs more, which favours short correct
      and long wrong answers;
    * ``constant``: Σ loss / (N · max_tokens) — Dr. GRPO (Liu et al. 2025, arXiv:2503.20783): a fixed
      normaliser, so no length bias at all.
    """
    mask = mask.to(per_token.dtype)
    masked = per_token * mask
    if how == "token_mean":
        return masked.sum() / mask.sum().clamp(min=1.0)
    if how == "sequence_mean":
        return (masked.sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if how == "constant":
        if not max_tokens or max_tokens < 1:
            raise ValueError("loss aggregation 'constant' needs max_tokens >= 1 (the generation budget)")
        return masked.sum() / (per_token.shape[0] * max_tokens)
    raise ValueError(f"unknown loss aggregation {how!r}; valid: {list(AGGREGATIONS)}")


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the entries where ``mask`` is 1 (a logging helper)."""
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp(min=1.0)
