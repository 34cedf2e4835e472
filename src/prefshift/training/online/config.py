"""Hyperparameters of an online RL run, validated before any compute.

One pydantic model for GRPO, RLOO and PPO: a typo or an out-of-range value fails with the field name and
its allowed values, and a knob that does not apply to the chosen algorithm (GAE's λ for GRPO, say) is an
error instead of a silently ignored setting.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ONLINE_OBJECTIVES: tuple[str, ...] = ("grpo", "rloo", "ppo")

#: knobs that only PPO reads (value model and GAE)
PPO_ONLY = frozenset({"gamma", "lam", "value_clip", "value_learning_rate", "whiten_advantages"})
#: knobs that only GRPO reads
GRPO_ONLY = frozenset({"scale_rewards"})


class OnlineConfig(BaseModel):
    """One online RL run. Defaults follow the papers where they give one (ε=0.2, γ=1, λ=0.95)."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["grpo", "rloo", "ppo"]
    num_generations: int = Field(
        4, ge=1, description="G: responses sampled per prompt (GRPO/RLOO need >= 2 for their baseline)"
    )
    prompts_per_step: int = Field(8, ge=1, description="prompts per rollout batch (one batch per step)")
    steps: int = Field(20, ge=1, description="rollout batches; each is followed by epochs_per_batch of updates")
    minibatches: int = Field(1, ge=1, description="optimizer steps per epoch over a rollout batch")
    epochs_per_batch: int = Field(1, ge=1, description="μ: passes over each rollout batch")
    learning_rate: float = Field(1e-5, gt=0)
    max_grad_norm: float = Field(1.0, gt=0)
    clip_eps: float = Field(0.2, gt=0, lt=1, description="ε of the clipped ratio")
    kl_beta: float = Field(
        0.05, ge=0, description="β: KL to the reference (GRPO: k3 in the loss; RLOO/PPO: in the reward)"
    )
    loss_aggregation: Literal["token_mean", "sequence_mean", "constant"] = "token_mean"
    scale_rewards: bool = Field(True, description="GRPO: divide by the group std (False = Dr. GRPO)")
    gamma: float = Field(1.0, ge=0, le=1, description="PPO: discount")
    lam: float = Field(0.95, ge=0, le=1, description="PPO: GAE λ")
    value_clip: float = Field(0.2, gt=0, description="PPO: clip range of the value loss")
    value_learning_rate: float | None = Field(None, gt=0, description="PPO: value model lr (default: learning_rate)")
    whiten_advantages: bool = Field(True, description="PPO: whiten GAE advantages per batch")
    temperature: float = Field(1.0, gt=0, description="sampling temperature (the ratio is of the raw policy)")
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(40, ge=1)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    compile_sampling: bool = Field(
        False, description="torch.compile the sampling engine (one sampler serves the whole run)"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> OnlineConfig:
        if self.algorithm in ("grpo", "rloo") and self.num_generations < 2:
            raise ValueError(
                f"{self.algorithm}: num_generations must be >= 2 (its baseline compares the samples of a "
                f"prompt), got {self.num_generations}"
            )
        if self.minibatches > self.prompts_per_step:
            raise ValueError(
                f"minibatches ({self.minibatches}) cannot exceed prompts_per_step ({self.prompts_per_step}): "
                "a minibatch holds whole prompt groups"
            )
        wrong = set(self.model_fields_set) & (
            (PPO_ONLY if self.algorithm != "ppo" else frozenset())
            | (GRPO_ONLY if self.algorithm != "grpo" else frozenset())
        )
        if wrong:
            raise ValueError(f"{sorted(wrong)} do not apply to {self.algorithm!r} (PPO only: {sorted(PPO_ONLY)}; "
                             f"GRPO only: {sorted(GRPO_ONLY)})")
        return self

    @property
    def value_lr(self) -> float:
        return self.value_learning_rate or self.learning_rate


def hyperparameter_names() -> list[str]:
    """Settings a study config may set for an online objective (everything but the algorithm)."""
    return sorted(n for n in OnlineConfig.model_fields if n != "algorithm")
