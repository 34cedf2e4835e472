"""Adapters from real hub datasets to prefshift's row formats (preference pairs, SFT rows, target prompts).

One module per source (``tldr``, ``cnn_dailymail``, ``hh_rlhf``, ``ultrafeedback``, ``shp``), each
parsing its hub schema into ``base.Example``; ``views`` turns examples into the rows the study trains
and evaluates on, rendered by ``templates`` for the model's tokenizer. The same adapter reads the hub
id or a local file/directory with the same columns (``DataSourceSpec.path``).

Example:
    >>> spec = DataSourceSpec(adapter="tldr_preference", n=20000, seed=0)
    >>> pairs = load_pairs(spec, tokenizer)            # prompt / chosen / rejected
    >>> targets = load_prompts(DataSourceSpec(adapter="cnn_dailymail", split="test", n=500), tokenizer)
"""

from prefshift.data.adapters.base import Adapter, AdapterError, Example
from prefshift.data.adapters.registry import ADAPTERS, get_adapter
from prefshift.data.adapters.spec import DataSourceSpec
from prefshift.data.adapters.templates import render_completion, render_prompt
from prefshift.data.adapters.views import load_pairs, load_prompts, load_sft, load_view, read_source

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AdapterError",
    "DataSourceSpec",
    "Example",
    "get_adapter",
    "load_pairs",
    "load_prompts",
    "load_sft",
    "load_view",
    "read_source",
    "render_completion",
    "render_prompt",
]
