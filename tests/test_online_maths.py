"""The online objectives' maths against hand-computed numbers: advantages, GAE, clipping, KL, aggregation."""

from __future__ import annotations

import math

import pytest
import torch

from prefshift.training.online.advantages import (
    gae,
    group_advantages,
    kl_penalised_rewards,
    rloo_advantages,
    whiten,
)
from prefshift.training.online.losses import (
    aggregate,
    clipped_policy_loss,
    clipped_value_loss,
    kl_k1,
    kl_k3,
)


def test_grpo_group_advantages_by_hand() -> None:
    rewards = torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    adv = group_advantages(rewards)
    # group 1: mean 2, sample std 1; group 2: no variance, no signal
    torch.testing.assert_close(adv[0], torch.tensor([-1.0, 0.0, 1.0]) / (1.0 + 1e-4))
    torch.testing.assert_close(adv[1], torch.zeros(3))
    # Dr. GRPO: centred only
    torch.testing.assert_close(group_advantages(rewards * 4, scale_by_std=False)[0], torch.tensor([-4.0, 0.0, 4.0]))
    with pytest.raises(ValueError, match="G >= 2"):
        group_advantages(torch.ones(3, 1))


def test_grpo_loss_by_hand_and_the_aggregations() -> None:
    # one group of G=2, rewards (1, 0): A = ±0.5 / (std 0.7071 + 1e-4); responses of 2 and 1 tokens; ratio 1
    adv_seq = group_advantages(torch.tensor([[1.0, 0.0]]))[0]
    a = 0.5 / (math.sqrt(0.5) + 1e-4)
    torch.testing.assert_close(adv_seq, torch.tensor([a, -a]))
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    adv = adv_seq[:, None] * mask
    logps = torch.log(torch.tensor([[0.5, 0.25], [0.125, 1.0]]))
    per_token, clipped = clipped_policy_loss(logps, logps.clone(), adv, clip_eps=0.2)
    assert not clipped.any()
    torch.testing.assert_close(aggregate(per_token, mask, "token_mean"), torch.tensor(-(2 * a - a) / 3))
    torch.testing.assert_close(aggregate(per_token, mask, "sequence_mean"), torch.tensor(0.0))  # (−a + a) / 2
    torch.testing.assert_close(aggregate(per_token, mask, "constant", max_tokens=4), torch.tensor(-a / 8))
    # + β·k3 to the reference, as GRPO adds it per token
    ref = logps - 0.1
    k3 = math.exp(-0.1) + 0.1 - 1
    total = per_token + 0.04 * kl_k3(logps, ref)
    torch.testing.assert_close(aggregate(total, mask, "token_mean"), torch.tensor((-a + 0.04 * k3 * 3) / 3))


def test_rloo_leave_one_out_baseline_by_hand() -> None:
    adv = rloo_advantages(torch.tensor([[1.0, 2.0, 3.0], [0.0, 4.0, 2.0]]))
    # 1 − (2+3)/2, 2 − (1+3)/2, 3 − (1+2)/2 ; 0 − 3, 4 − 1, 2 − 2
    torch.testing.assert_close(adv, torch.tensor([[-1.5, 0.0, 1.5], [-3.0, 3.0, 0.0]]))


def test_gae_against_a_hand_computed_trajectory() -> None:
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.2, 1.0, 5.0]])
    values = torch.tensor([[0.5, 0.6, 0.7], [0.1, 0.3, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # row 2 has 2 tokens; its 3rd column is padding
    adv, ret = gae(rewards, values, mask, gamma=0.9, lam=0.8)
    # row 1: δ2 = 1 − .7 = .3; δ1 = .9·.7 − .6 = .03; δ0 = .9·.6 − .5 = .04; A_t = δ_t + .72·A_{t+1}
    a2 = 0.3
    a1 = 0.03 + 0.72 * a2
    a0 = 0.04 + 0.72 * a1
    # row 2: the last token bootstraps from nothing: δ1 = 1 − .3 = .7; δ0 = .2 + .9·.3 − .1 = .37
    b1 = 0.7
    b0 = 0.37 + 0.72 * b1
    torch.testing.assert_close(adv, torch.tensor([[a0, a1, a2], [b0, b1, 0.0]]))
    torch.testing.assert_close(ret, torch.tensor([[a0 + 0.5, a1 + 0.6, a2 + 0.7], [b0 + 0.1, b1 + 0.3, 0.0]]))


def test_ppo_token_rewards_put_the_score_on_the_last_token() -> None:
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.4, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    r = kl_penalised_rewards(torch.tensor([1.0, -2.0]), kl, mask, beta=0.5)
    torch.testing.assert_close(r, torch.tensor([[-0.05, -0.1, -0.15 + 1.0], [-0.2 - 2.0, 0.0, 0.0]]))


def test_whiten_over_valid_tokens_only() -> None:
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, 5.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    w = whiten(x, mask)
    valid = w[mask.bool()]
    assert abs(valid.mean().item()) < 1e-6 and abs(valid.std().item() - 1) < 1e-4
    assert w[0, 2] == 0
    w2 = whiten(x, mask, shift_mean=False)
    torch.testing.assert_close(w2[mask.bool()].mean(), torch.tensor(3.0))


def test_ppo_clipping_zero_gradient_on_the_clipped_side() -> None:
    eps = 0.2
    ratios = torch.tensor([1.5, 0.5, 1.5, 0.5, 1.1])
    adv = torch.tensor([2.0, -1.0, -1.0, 1.0, 1.0])
    logps = torch.log(ratios).requires_grad_(True)
    loss, clipped = clipped_policy_loss(logps, torch.zeros(5), adv, eps)
    loss.sum().backward()
    # ratio above 1+ε with A > 0 and below 1−ε with A < 0: clipped, no gradient
    assert clipped.tolist() == [True, True, False, False, False]
    assert logps.grad[0] == 0 and logps.grad[1] == 0
    # the unclipped side keeps the gradient −A·ρ (d ρ / d log π = ρ)
    torch.testing.assert_close(logps.grad[2:], -adv[2:] * ratios[2:])
    torch.testing.assert_close(loss[:2].detach(), torch.tensor([-(1 + eps) * 2.0, (1 - eps) * 1.0]))


def test_value_loss_clipping_by_hand() -> None:
    values = torch.tensor([1.5, 1.1], requires_grad=True)
    loss = clipped_value_loss(values, torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0]), clip=0.2)
    # token 1: V_clip = 1.2 → ½·max(.25, .64) = .32, the clipped branch (no gradient to V);
    # token 2: inside the clip range → ½·(1.1 − 2)² = .405
    torch.testing.assert_close(loss.detach(), torch.tensor([0.32, 0.405]))
    loss.sum().backward()
    torch.testing.assert_close(values.grad, torch.tensor([0.0, 1.1 - 2.0]))


def test_kl_estimators() -> None:
    logp, ref = torch.tensor([0.0, math.log(0.5)]), torch.tensor([math.log(0.5), 0.0])
    torch.testing.assert_close(kl_k1(logp, ref), torch.tensor([math.log(2), -math.log(2)]))
    # k3 = e^{ref−logp} − (ref − logp) − 1 >= 0
    torch.testing.assert_close(kl_k3(logp, ref), torch.tensor([0.5 + math.log(2) - 1, 2 - math.log(2) - 1]))
    assert (kl_k3(logp, ref) >= 0).all()


def test_unknown_aggregation_names_the_choices() -> None:
    with pytest.raises(ValueError, match="token_mean"):
        aggregate(torch.ones(1, 1), torch.ones(1, 1), "mean")  # type: ignore[arg-type]
