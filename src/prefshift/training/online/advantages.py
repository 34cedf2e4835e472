"""Advantage estimators of the online objectives, as pure tensor functions.

Each estimator answers the same question — how much better than expected was this response (or this
token)? — with a different baseline: the group mean (GRPO), the mean of the *other* samples of the prompt
(RLOO), or a learned value function rolled forward with GAE (PPO). Keeping them apart from the loop lets
each be checked against hand-computed numbers.
"""

from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, scale_by_std: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """GRPO group-relative advantages (Shao et al. 2024, DeepSeekMath, arXiv:2402.03300, §4.1.2).

    For the G responses of one prompt with rewards r_1..r_G::

        A_i = (r_i − mean(r)) / (std(r) + eps)      (scale_by_std=True, GRPO)
        A_i =  r_i − mean(r)                        (scale_by_std=False, Dr. GRPO)

    ``std`` is the sample standard deviation (Bessel-corrected, as TRL computes it). Dr. GRPO (Liu et al.
    2025, "Understanding R1-Zero-Like Training", arXiv:2503.20783) drops the division because it
    up-weights prompts whose rewards barely vary (too easy or too hard), a difficulty bias.
    A group whose rewards are all equal gets zero advantages: it carries no learning signal.

    Args:
        rewards: [P, G] one row per prompt, one column per sampled response.
    Returns:
        [P, G] advantages.
    """
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"group advantages need rewards of shape [prompts, G >= 2], got {tuple(rewards.shape)}")
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if not scale_by_std:
        return centred
    return centred / (rewards.std(dim=1, keepdim=True) + eps)


def rloo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """REINFORCE leave-one-out advantages (Kool et al. 2019, "Buy 4 REINFORCE samples, get a baseline
    for free!"; Ahmadian et al. 2024, "Back to Basics", arXiv:2402.14740, eq. 6)::

        A_i = r_i − 1/(G−1) · Σ_{j≠i} r_j  =  G/(G−1) · (r_i − mean(r))

    The baseline of each sample is the mean reward of the other G−1 samples of the same prompt, so it is
    independent of the sample itself and the policy-gradient estimate stays unbiased (a baseline that
    includes r_i, like GRPO's mean, shrinks every advantage by (G−1)/G).

    Args:
        rewards: [P, G] with G >= 2.
    Returns:
        [P, G] advantages.
    """
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"RLOO needs rewards of shape [prompts, G >= 2], got {tuple(rewards.shape)}")
    g = rewards.shape[1]
    others = (rewards.sum(dim=1, keepdim=True) - rewards) / (g - 1)
    return rewards - others


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016, arXiv:1506.02438, eq. 16) per token::

        δ_t = r_t + γ · V(s_{t+1}) − V(s_t)
        A_t = δ_t + γλ · A_{t+1}          (A and V are 0 after a response's last token)
        R_t = A_t + V(s_t)                 (the value target, "returns")

    A response is an episode whose state s_t is the prompt plus the first t response tokens; the episode
    ends after its last token, so that token bootstraps from nothing. λ trades the bias of the value
    function (λ→0) against the variance of Monte-Carlo returns (λ→1).

    Args:
        rewards, values: [N, T] per-token rewards and value estimates V(s_t).
        mask: [N, T] 1 on response tokens, which must be a prefix of each row (right padding).
    Returns:
        (advantages, returns), both [N, T] and zero on padding.
    """
    mask = mask.to(rewards.dtype)
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    steps = rewards.shape[1]
    for t in reversed(range(steps)):
        next_value = values[:, t + 1] if t + 1 < steps else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """Normalise ``x`` to unit variance over the masked entries (and zero mean if ``shift_mean``).

    PPO for RLHF whitens the GAE advantages of every batch (Huang et al. 2024, "The N+ Implementation
    Details of RLHF with PPO", arXiv:2403.17031, detail 4), which makes the step size independent of the
    reward scale. The variance is the unbiased one over the valid tokens; padding stays zero.
    """
    mask = mask.to(x.dtype)
    n = mask.sum()
    if n < 2:
        return x * mask
    mean = (x * mask).sum() / n
    var = (((x - mean) * mask) ** 2).sum() / (n - 1)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask


def kl_penalised_rewards(
    scores: torch.Tensor, kl_tokens: torch.Tensor, mask: torch.Tensor, beta: float
) -> torch.Tensor:
    """PPO's per-token reward for RLHF (Ouyang et al. 2022, arXiv:2203.02155, eq. 2; Huang et al. 2024,
    arXiv:2403.17031, detail 6)::

        r_t = −β · KL_t                 for every response token t
        r_T = −β · KL_T + score(x, y)   at the response's last token

    where KL_t = log π_old(y_t) − log π_ref(y_t) (the k1 estimate). The reward model scores whole
    responses, so its score arrives at the last token and GAE carries it back; the KL penalty, being
    per token, keeps every step close to the reference.

    Args:
        scores: [N] reward-model scores; kl_tokens, mask: [N, T].
    Returns:
        [N, T] rewards, zero on padding.
    """
    mask = mask.to(kl_tokens.dtype)
    rewards = -beta * kl_tokens * mask
    last = (mask.sum(-1).long() - 1).clamp(min=0)
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    return rewards.index_put((rows, last), rewards[rows, last] + scores.to(rewards.dtype))
