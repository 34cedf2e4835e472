"""``DataSourceSpec``: one real data source as a study config names it (validated with pydantic)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefshift.data.adapters.registry import ADAPTERS


class DataSourceSpec(BaseModel):
    """Which adapter reads which copy of a dataset, and how much of it.

    ``path`` defaults to the adapter's hub id; a local file or directory with the same schema works
    the same way (that is how the tests and offline machines use it). ``split``/``config_name`` default
    to the adapter's (e.g. ``train_prefs`` and ``3.0.0``). ``data_dir`` picks a subset folder of a hub
    repository (SHP's subreddits, HH's ``helpful-base``). ``n`` keeps the first n rows after an
    optional shuffle with ``seed`` — shuffle when the source is sorted (TL;DR comparisons are in
    annotation-batch order).

    Example (YAML)::

        source_pairs: {adapter: tldr_preference, n: 20000, seed: 0}
        target_prompts: {adapter: cnn_dailymail, split: test, n: 500}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    adapter: str
    path: str | None = None
    split: str | None = None
    config_name: str | None = None
    data_dir: str | None = None
    n: int | None = Field(default=None, ge=1)
    seed: int | None = None

    @field_validator("adapter")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ADAPTERS:
            raise ValueError(f"unknown dataset adapter {value!r}; valid: {sorted(ADAPTERS)}")
        return value
