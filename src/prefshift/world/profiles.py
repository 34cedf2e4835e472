"""Size profiles of the synthetic world: ``quick`` for tests/CI, ``demo`` for clear effects."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from prefshift.models.build import ModelSize


class WorldProfile(BaseModel):
    """Data sizes, model size and training budget of one world build."""

    model_config = ConfigDict(extra="forbid")

    name: str
    n_train: int = Field(
        gt=0, description="train examples per domain (source: SFT/preferences; targets: prompts)"
    )
    n_dev: int = Field(gt=0)
    n_test: int = Field(gt=0)
    n_pretrain_per_domain: int = Field(gt=0, description="unlabelled documents per domain for pretraining")
    model: ModelSize
    pretrain_epochs: float = Field(gt=0)
    pretrain_lr: float = Field(gt=0)
    sft_epochs: float = Field(gt=0)
    sft_lr: float = Field(gt=0)
    sft_min_gold_fraction: float = Field(
        0.5,
        ge=0,
        le=1,
        description="the SFT model must reach this fraction of the references' gold reward on the source "
        "dev split (greedy); below it, SFT is extended",
    )
    sft_extension_epochs: float = Field(4, gt=0, description="epochs of each SFT extension")
    sft_max_extensions: int = Field(3, ge=0, description="SFT extensions at most; 0 = none")
    batch_size: int = Field(32, gt=0)
    max_new_tokens: int = Field(32, gt=0)


PROFILES: dict[str, WorldProfile] = {
    "quick": WorldProfile(
        name="quick",
        n_train=1500,
        n_dev=100,
        n_test=100,
        n_pretrain_per_domain=600,
        model=ModelSize(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4),
        pretrain_epochs=3,
        pretrain_lr=3e-3,
        # a 4-layer model learns to copy facts from the document in a sudden transition (≈ epoch 4–8 at
        # this learning rate); 10 epochs usually land past it (partly competent on the source, weak on
        # targets), and the build extends SFT when they do not (see sft_min_gold_fraction)
        sft_epochs=10,
        sft_lr=3e-3,
    ),
    "demo": WorldProfile(
        name="demo",
        n_train=3000,
        n_dev=200,
        n_test=300,
        n_pretrain_per_domain=2000,
        model=ModelSize(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4),
        pretrain_epochs=3,
        pretrain_lr=2e-3,
        sft_epochs=8,
        sft_lr=2e-3,
    ),
}


def get_profile(name: str) -> WorldProfile:
    if name not in PROFILES:
        raise ValueError(f"unknown world profile {name!r}; valid: {sorted(PROFILES)}")
    return PROFILES[name]
