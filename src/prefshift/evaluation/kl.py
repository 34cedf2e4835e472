r"""Sample-based estimate of KL(π ‖ π_ref), the drift of a tuned policy from its reference (SFT) model.

For a prompt x the sequence-level KL is an expectation under the policy itself::

    KL(π(·|x) ‖ π_ref(·|x)) = Σ_y π(y|x) · log(π(y|x) / π_ref(y|x)) = E_{y ~ π(·|x)}[ d(y) ],
    d(y) = log π(y|x) − log π_ref(y|x) = Σ_t [log π(y_t | x, y_<t) − log π_ref(y_t | x, y_<t)].

So with y_1..y_n sampled from π (each d_i summed over the sequence's tokens), the sample mean of d_i
is an unbiased estimator of the KL (averaged over the evaluation prompts), and its standard error is
s_d / √n by the central limit theorem. This is the "k1" estimator of Schulman (2020): individual d_i
can be negative, only their expectation is the (non-negative) KL.

"k3" (Schulman 2020) applies, per token, k3(r) = exp(−r) − 1 + r with r = log π − log π_ref. Given the
prefix, E_{y_t ~ π}[exp(−r_t)] = Σ_v π_ref(v | ·) = 1, so E[k3(r_t) | prefix] = E[r_t | prefix] = the
per-step KL, and by the tower rule Σ_t k3(r_t) is again unbiased for the sequence KL, but every term is
≥ 0 and its variance is usually much lower. It needs per-token log-probs.

Both estimators assume y ~ π exactly: responses sampled at temperature 1 with no top-k / top-p, and
log π computed from the raw logits (what ``Sample.logprobs`` holds). Samples from a modified sampler
give a biased estimate.

Per-token numbers: ``kl_per_token`` = Σ_i d_i / Σ_i len_i (the ratio estimator of KL / E[len];
consistent, not unbiased) and ``kl_per_token_mean`` = mean_i(d_i / len_i) (each response weighted
equally). They separate "drifted further per token" from "writes longer responses".

Citation: J. Schulman, "Approximating KL Divergence", blog post, 2020,
http://joschu.net/blog/kl-approx.html.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class KLEstimate:
    """A sample-based estimate of KL(π ‖ π_ref), in nats.

    Attributes:
        kl_per_sequence: mean over responses of the per-sequence estimate d_i.
        kl_per_sequence_se: its standard error (see ``groups`` in ``kl_estimate``); NaN if it cannot
            be estimated (a single response, or a single group).
        kl_per_token: Σ d_i / Σ len_i.
        kl_per_token_mean: mean over responses of d_i / len_i.
        n: number of responses.
        estimator: ``"k1"`` (summed log-ratio) or ``"k3"``.
    """

    kl_per_sequence: float
    kl_per_sequence_se: float
    kl_per_token: float
    kl_per_token_mean: float
    n: int
    estimator: str


def _standard_error(d: np.ndarray, groups: ArrayLike | None) -> float:
    """s_d / √n for independent responses; cluster-robust over ``groups`` otherwise.

    With K samples per prompt the responses to one prompt are correlated (they share x), and the
    i.i.d. formula understates the error. The cluster-robust form treats prompts as the independent
    units: SE² = G/(G − 1) · Σ_g (Σ_{i∈g} (d_i − d̄))² / n², which for equal group sizes equals the
    standard error of the mean of the per-prompt means.
    """
    n = d.size
    if groups is None:
        return float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    g = np.asarray(groups)
    if g.shape != d.shape:
        raise ValueError(f"groups has shape {g.shape}, expected {d.shape}")
    _, group_index = np.unique(g, return_inverse=True)
    n_groups = int(group_index.max()) + 1
    if n_groups < 2:
        return float("nan")
    group_sums = np.bincount(group_index, weights=d - d.mean(), minlength=n_groups)
    return float(np.sqrt(n_groups / (n_groups - 1) * (group_sums**2).sum()) / n)


def _summarise(d: np.ndarray, lengths: np.ndarray, groups: ArrayLike | None, estimator: str) -> KLEstimate:
    if d.ndim != 1 or d.size == 0:
        raise ValueError(f"need a non-empty 1-D array of per-sequence values, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("log-probabilities must be finite")
    if lengths.shape != d.shape:
        raise ValueError(f"num_tokens has shape {lengths.shape}, expected {d.shape}")
    if (lengths < 1).any():
        raise ValueError("every response must have at least one token")
    return KLEstimate(
        kl_per_sequence=float(d.mean()),
        kl_per_sequence_se=_standard_error(d, groups),
        kl_per_token=float(d.sum() / lengths.sum()),
        kl_per_token_mean=float((d / lengths).mean()),
        n=int(d.size),
        estimator=estimator,
    )


def kl_estimate(
    policy_logps: ArrayLike,
    ref_logps: ArrayLike,
    num_tokens: ArrayLike,
    *,
    groups: ArrayLike | None = None,
) -> KLEstimate:
    """k1 estimate of KL(π ‖ π_ref) from per-sequence summed log-probs of responses sampled from π.

    Args:
        policy_logps: log π(y_i | x_i), summed over the response tokens, one per response.
        ref_logps: log π_ref(y_i | x_i), same responses, same tokens.
        num_tokens: response lengths in tokens (≥ 1).
        groups: optional prompt id per response; when given, the standard error is cluster-robust
            over prompts (use it when there are several samples per prompt).
    """
    policy, reference = np.asarray(policy_logps, dtype=float), np.asarray(ref_logps, dtype=float)
    if policy.shape != reference.shape:
        raise ValueError(f"policy_logps has shape {policy.shape} but ref_logps {reference.shape}")
    return _summarise(policy - reference, np.asarray(num_tokens, dtype=float), groups, "k1")


def kl_estimate_from_tokens(
    policy_token_logps: Sequence[ArrayLike],
    ref_token_logps: Sequence[ArrayLike],
    *,
    estimator: Literal["k1", "k3"] = "k1",
    groups: ArrayLike | None = None,
) -> KLEstimate:
    """Estimate KL(π ‖ π_ref) from per-token log-probs (one array per response), with k1 or k3.

    Per response, with r_t = log π(y_t | ·) − log π_ref(y_t | ·): k1 gives d = Σ_t r_t (the same as
    ``kl_estimate``); k3 gives d = Σ_t (exp(−r_t) − 1 + r_t), computed as expm1(−r_t) + r_t so it stays
    accurate for small r_t. ``groups`` as in ``kl_estimate``.
    """
    if estimator not in ("k1", "k3"):
        raise ValueError(f"estimator must be 'k1' or 'k3', got {estimator!r}")
    if len(policy_token_logps) != len(ref_token_logps):
        raise ValueError(
            f"{len(policy_token_logps)} policy responses but {len(ref_token_logps)} reference ones"
        )
    d = np.empty(len(policy_token_logps))
    lengths = np.empty(len(policy_token_logps))
    for i, (pol_logps, ref_logps) in enumerate(zip(policy_token_logps, ref_token_logps, strict=True)):
        pol, ref = np.asarray(pol_logps, dtype=float), np.asarray(ref_logps, dtype=float)
        if pol.ndim != 1 or pol.shape != ref.shape:
            raise ValueError(
                f"response {i}: per-token log-probs must be 1-D and of equal length, "
                f"got {pol.shape} and {ref.shape}"
            )
        r = pol - ref
        d[i] = (np.expm1(-r) + r).sum() if estimator == "k3" else r.sum()
        lengths[i] = r.size
    return _summarise(d, lengths, groups, estimator)
